-- statement 0
SELECT CAST((toUnixTimestamp(toDateTime(toStartOfMonth("when", {p0:String}), {p0:String})) * 1000) AS Nullable(Int64)) AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits" FROM "docs" GROUP BY CAST((toUnixTimestamp(toDateTime(toStartOfMonth("when", {p0:String}), {p0:String})) * 1000) AS Nullable(Int64)) QUALIFY NOT (CAST((toUnixTimestamp(toDateTime(toStartOfMonth("when", {p0:String}), {p0:String})) * 1000) AS Nullable(Int64)) IS NULL) ORDER BY "k0" LIMIT 65536;
-- params: {"p0":"Europe/Berlin"}

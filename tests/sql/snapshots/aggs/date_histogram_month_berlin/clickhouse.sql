-- statement 0
SELECT CAST((toUnixTimestamp(toDateTime(toStartOfMonth("when", {p0:String}), {p0:String})) * 1000) AS Nullable(Int64)) AS "k0", COUNT(*) AS "doc_count" FROM "docs" WHERE NOT ("when" IS NULL) GROUP BY CAST((toUnixTimestamp(toDateTime(toStartOfMonth("when", {p0:String}), {p0:String})) * 1000) AS Nullable(Int64)) ORDER BY "k0" LIMIT 65536;
-- params: {"p0":"Europe/Berlin"}

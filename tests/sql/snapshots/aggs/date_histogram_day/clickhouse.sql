-- statement 0
SELECT CAST(FLOOR(toUnixTimestamp64Milli("when") / 86400000) * 86400000 AS Nullable(Int64)) AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits" FROM "docs" GROUP BY CAST(FLOOR(toUnixTimestamp64Milli("when") / 86400000) * 86400000 AS Nullable(Int64)) QUALIFY NOT (CAST(FLOOR(toUnixTimestamp64Milli("when") / 86400000) * 86400000 AS Nullable(Int64)) IS NULL) ORDER BY "k0" LIMIT 65536;
-- params: {}

-- statement 0
SELECT CAST(FLOOR(toUnixTimestamp64Milli("when") / 86400000) * 86400000 AS Nullable(Int64)) AS "k0", COUNT(*) AS "doc_count" FROM "docs" WHERE NOT ("when" IS NULL) GROUP BY CAST(FLOOR(toUnixTimestamp64Milli("when") / 86400000) * 86400000 AS Nullable(Int64)) ORDER BY "k0" LIMIT 65536;
-- params: {}

-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits", SUM(CASE WHEN NOT ("k" IS NULL) THEN COUNT(*) ELSE 0 END) OVER () AS "total" FROM "docs" GROUP BY "k" QUALIFY NOT ("k" IS NULL) ORDER BY COUNT(*) DESC, "k" ASC LIMIT 10;
-- statement 1
SELECT "k" AS "k0", CAST(FLOOR(intDiv(toUnixTimestamp64Micro("when") - 999 * (toUnixTimestamp64Micro("when") < 0), 1000) / 86400000) * 86400000 AS Nullable(Int64)) AS "k1", COUNT(*) AS "doc_count", AVG("x") AS "k1_m0_value" FROM "docs" WHERE NOT ("k" IS NULL) AND "k" IN ({s0_k0:String}) AND NOT ("when" IS NULL) GROUP BY "k", CAST(FLOOR(intDiv(toUnixTimestamp64Micro("when") - 999 * (toUnixTimestamp64Micro("when") < 0), 1000) / 86400000) * 86400000 AS Nullable(Int64)) ORDER BY "k0", "k1" LIMIT 65536;
-- params: {}

-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "total" FROM "docs" WHERE NOT "k" IS NULL GROUP BY "k" ORDER BY COUNT(*) DESC, "k" ASC LIMIT 10;
-- statement 1
WITH __s0 AS (SELECT "k" AS "k0" FROM "docs" WHERE NOT "k" IS NULL GROUP BY "k" ORDER BY COUNT(*) DESC, "k" ASC LIMIT 10) SELECT "k" AS "k0", CAST(FLOOR(EPOCH_MS("when") / 86400000) * 86400000 AS BIGINT) AS "k1", COUNT(*) AS "doc_count", AVG("x") AS "k1_m0_value" FROM "docs" WHERE NOT "k" IS NULL AND "k" IN (SELECT "k0" FROM __s0) AND NOT "when" IS NULL GROUP BY "k", CAST(FLOOR(EPOCH_MS("when") / 86400000) * 86400000 AS BIGINT) ORDER BY "k0", "k1" LIMIT 65536;
-- params: {}

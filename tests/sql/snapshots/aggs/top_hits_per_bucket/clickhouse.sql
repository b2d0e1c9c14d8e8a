-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "total" FROM "docs" WHERE NOT ("k" IS NULL) GROUP BY "k" ORDER BY COUNT(*) DESC, "k" ASC LIMIT 2;
-- statement 1
WITH __s0 AS (SELECT "k" AS "k0" FROM "docs" WHERE NOT ("k" IS NULL) GROUP BY "k" ORDER BY COUNT(*) DESC, "k" ASC LIMIT 2) SELECT "k" AS "k0", "_id", "k", "n" AS "s0", ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY "n" DESC, "_id" ASC) AS "rank" FROM "docs" WHERE NOT ("k" IS NULL) AND "k" IN (SELECT "k0" FROM __s0) QUALIFY ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY "n" DESC, "_id" ASC) > 0 AND ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY "n" DESC, "_id" ASC) <= 1 ORDER BY "k0", "rank" LIMIT 65536;
-- params: {}

-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits", SUM(CASE WHEN NOT ("k" IS NULL) THEN COUNT(*) ELSE 0 END) OVER () AS "total" FROM "docs" GROUP BY "k" QUALIFY NOT ("k" IS NULL) ORDER BY COUNT(*) DESC, "k" ASC LIMIT 2;
-- statement 1
SELECT "k" AS "k0", "_id", "k", "n" AS "s0", ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY "n" DESC, "_id" ASC) AS "rank" FROM "docs" WHERE NOT ("k" IS NULL) AND "k" IN ({s0_k0:String}) QUALIFY ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY "n" DESC, "_id" ASC) > 0 AND ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY "n" DESC, "_id" ASC) <= 1 ORDER BY "k0", "rank" LIMIT 65536;
-- params: {}

-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits", SUM(CASE WHEN NOT ("k" IS NULL) THEN COUNT(*) ELSE 0 END) OVER () AS "total" FROM "docs" GROUP BY "k" QUALIFY NOT ("k" IS NULL) ORDER BY COUNT(*) DESC, "k" ASC LIMIT 3;
-- statement 1
SELECT "k" AS "k0", "user:country" AS "k1", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER (PARTITION BY "k") AS "total", ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY COUNT(*) DESC, "user:country" ASC) AS "rank" FROM "docs" WHERE NOT ("k" IS NULL) AND "k" IN ({s0_k0:String}) AND NOT ("user:country" IS NULL) GROUP BY "k", "user:country" QUALIFY ROW_NUMBER() OVER (PARTITION BY "k" ORDER BY COUNT(*) DESC, "user:country" ASC) <= 2 ORDER BY "k0", "rank" LIMIT 65536;
-- params: {}

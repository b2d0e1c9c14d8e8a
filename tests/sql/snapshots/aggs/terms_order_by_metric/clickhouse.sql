-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", AVG("x") AS "k0_m0_value", SUM(COUNT(*)) OVER () AS "__hits", SUM(CASE WHEN NOT ("k" IS NULL) THEN COUNT(*) ELSE 0 END) OVER () AS "total" FROM "docs" GROUP BY "k" QUALIFY NOT ("k" IS NULL) ORDER BY AVG("x") DESC, "k" ASC LIMIT 5;
-- params: {}

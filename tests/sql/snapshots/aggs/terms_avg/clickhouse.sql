-- statement 0
SELECT "k" AS "k0", COUNT(*) AS "doc_count", AVG("x") AS "k0_m0_value", SUM(COUNT(*)) OVER () AS "total" FROM "docs" WHERE NOT ("k" IS NULL) GROUP BY "k" ORDER BY COUNT(*) DESC, "k" ASC LIMIT 10;
-- params: {}

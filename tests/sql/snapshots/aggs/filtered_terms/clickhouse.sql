-- statement 0
SELECT "user:country" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "total" FROM "docs" WHERE "flag" = {p0:Bool} AND NOT ("user:country" IS NULL) GROUP BY "user:country" ORDER BY COUNT(*) DESC, "user:country" ASC LIMIT 10;
-- params: {"p0":true}

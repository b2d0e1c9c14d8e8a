-- statement 0
SELECT "user.country" AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits", SUM(CASE WHEN NOT "user.country" IS NULL THEN COUNT(*) ELSE 0 END) OVER () AS "total" FROM "docs" WHERE "flag" = $p0 GROUP BY "user.country" QUALIFY NOT "user.country" IS NULL ORDER BY COUNT(*) DESC, "user.country" ASC LIMIT 10;
-- params: {"p0":true}

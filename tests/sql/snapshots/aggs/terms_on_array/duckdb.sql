-- statement 0
SELECT "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "total" FROM (SELECT *, UNNEST(LIST_DISTINCT(LIST_FILTER(CASE WHEN "tags" IS NULL OR ARRAY_LENGTH("tags") = 0 THEN [$p0] ELSE "tags" END, LAMBDA __x : REGEXP_MATCHES(__x, $p1)))) AS "k0" FROM "docs") AS __r0 GROUP BY "k0" ORDER BY COUNT(*) DESC, "k0" ASC LIMIT 10;
-- params: {"p0":"none","p1":"^(?:r.*)$"}

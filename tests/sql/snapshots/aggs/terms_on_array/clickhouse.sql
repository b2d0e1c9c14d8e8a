-- statement 0
SELECT "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "total" FROM (SELECT *, arrayJoin(arrayDistinct(arrayFilter(__x -> match(__x, {p1:String}), CASE WHEN "tags" IS NULL OR LENGTH("tags") = 0 THEN [{p0:String}] ELSE "tags" END))) AS "k0" FROM "docs") AS __r0 GROUP BY "k0" ORDER BY COUNT(*) DESC, "k0" ASC LIMIT 10;
-- params: {"p0":"none","p1":"^(?:r.*)$"}

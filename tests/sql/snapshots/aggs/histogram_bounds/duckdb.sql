-- statement 0
SELECT CAST(FLOOR(("x" - $p1) / $p0) AS BIGINT) AS "k0", COUNT(*) AS "doc_count" FROM "docs" WHERE NOT "x" IS NULL AND (CAST(FLOOR(("x" - $p1) / $p0) AS BIGINT) >= $p2 AND CAST(FLOOR(("x" - $p1) / $p0) AS BIGINT) <= $p3) GROUP BY CAST(FLOOR(("x" - $p1) / $p0) AS BIGINT) ORDER BY "k0" LIMIT 65536;
-- params: {"p0":10.0,"p1":0.0,"p2":0,"p3":10}

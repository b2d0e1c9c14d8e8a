-- statement 0
SELECT COUNT_IF("n" < $p0) AS "doc_count_0", COUNT_IF("n" >= $p1 AND "n" < $p2) AS "doc_count_1", COUNT_IF("n" >= $p3) AS "doc_count_2" FROM "docs";
-- statement 1
SELECT COUNT_IF("k" = $p4) AS "doc_count_0", COUNT_IF(ARRAY_CONTAINS("tags", $p5)) AS "doc_count_1", COUNT_IF(NOT COALESCE("k" = $p4 OR ARRAY_CONTAINS("tags", $p5), FALSE)) AS "doc_count_2" FROM "docs";
-- params: {"p0":0.0,"p1":0.0,"p2":10.0,"p3":10.0,"p4":"a","p5":"red"}

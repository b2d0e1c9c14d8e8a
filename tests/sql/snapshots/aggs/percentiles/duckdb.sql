-- statement 0
SELECT COUNT(*) AS "doc_count", QUANTILE_CONT("x", [$p0, $p1, $p2, $p3, $p4, $p5, $p6]) AS "m0_values" FROM "docs";
-- params: {"p0":0.01,"p1":0.05,"p2":0.25,"p3":0.5,"p4":0.75,"p5":0.95,"p6":0.99}

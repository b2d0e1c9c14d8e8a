-- statement 0
SELECT COUNT(*) AS "doc_count", COUNT(COALESCE("n", {p0:Int64})) AS "m0_count", CASE WHEN COUNT(*) > 0 THEN MIN(COALESCE("n", {p0:Int64})) END AS "m0_min", CASE WHEN COUNT(*) > 0 THEN MAX(COALESCE("n", {p0:Int64})) END AS "m0_max", AVG(COALESCE("n", {p0:Int64})) AS "m0_avg", COALESCE(SUM(COALESCE("n", {p0:Int64})), 0) AS "m0_sum", SUM(COALESCE("n", {p0:Int64}) * COALESCE("n", {p0:Int64})) AS "m0_sum_of_squares", varPop(COALESCE("n", {p0:Int64})) AS "m0_variance_population", varSamp(COALESCE("n", {p0:Int64})) AS "m0_variance_sampling" FROM "docs";
-- params: {"p0":0}

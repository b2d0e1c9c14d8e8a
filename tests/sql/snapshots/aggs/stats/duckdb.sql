-- statement 0
SELECT COUNT(*) AS "doc_count", COUNT("x") AS "m0_count", MIN("x") AS "m0_min", MAX("x") AS "m0_max", AVG("x") AS "m0_avg", COALESCE(SUM("x"), 0) AS "m0_sum" FROM "docs";
-- params: {}

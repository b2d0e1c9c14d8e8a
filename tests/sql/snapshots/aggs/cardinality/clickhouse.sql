-- statement 0
SELECT COUNT(*) AS "doc_count", uniqCombined("k") AS "m0_value" FROM "docs";
-- statement 0, exact cardinality
SELECT COUNT(*) AS "doc_count", uniqExact("k") AS "m0_value" FROM "docs";
-- params: {}

-- statement 0
SELECT COUNT(*) AS "doc_count", COUNT(DISTINCT "k") AS "m0_value" FROM "docs";
-- statement 0, exact cardinality
SELECT COUNT(*) AS "doc_count", COUNT(DISTINCT "k") AS "m0_value" FROM "docs";
-- params: {}

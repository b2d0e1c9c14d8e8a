-- hits
SELECT "_id", "k", "n", "x", "flag", "when", "tags", "user.country", "user.age" FROM "docs" WHERE NOT "user.country" IS NULL OR NOT "user.age" IS NULL ORDER BY "_id" ASC LIMIT 10;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE NOT "user.country" IS NULL OR NOT "user.age" IS NULL LIMIT 10001) AS capped;
-- params: {}

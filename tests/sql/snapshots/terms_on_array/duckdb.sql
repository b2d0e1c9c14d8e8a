-- hits
SELECT "_id", "k", "n", "x", "flag", "when", "tags", "user.country", "user.age" FROM "docs" WHERE "tags" && [$p0, $p1] ORDER BY "_id" ASC LIMIT 10;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE "tags" && [$p0, $p1] LIMIT 10001) AS capped;
-- params: {"p0":"red","p1":"blue"}

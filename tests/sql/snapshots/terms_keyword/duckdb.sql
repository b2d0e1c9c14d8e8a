-- hits
SELECT "_id", "k", "n", "x", "flag", "when", "tags", "user.country", "user.age" FROM "docs" WHERE "k" IN (SELECT UNNEST([$p0, $p1, $p2])) ORDER BY "_id" ASC LIMIT 10;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE "k" IN (SELECT UNNEST([$p0, $p1, $p2])) LIMIT 10001) AS capped;
-- params: {"p0":"a","p1":"b","p2":"c"}

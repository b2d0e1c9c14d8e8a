-- hits
SELECT "_id", "k", "n", "x", "flag", "when", "tags", "user:country", "user:age" FROM "docs" WHERE "k" IN ({p0:String}, {p1:String}, {p2:String}) ORDER BY "_id" ASC LIMIT 10;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE "k" IN ({p0:String}, {p1:String}, {p2:String}) LIMIT 10001) AS capped;
-- params: {"p0":"a","p1":"b","p2":"c"}

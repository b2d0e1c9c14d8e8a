-- hits
SELECT "_id", "k", "user:country", "user:age", "n", "when" FROM "docs" WHERE "user:country" = {p0:String} ORDER BY "n" DESC, "when" ASC NULLS FIRST, "_id" ASC LIMIT 7 OFFSET 5;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE "user:country" = {p0:String} LIMIT 101) AS capped;
-- params: {"p0":"DE"}

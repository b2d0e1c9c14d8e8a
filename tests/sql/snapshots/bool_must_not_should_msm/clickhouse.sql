-- hits
SELECT "_id", "k", "n", "x", "flag", "when", "tags", "user:country", "user:age" FROM "docs" WHERE "n" >= {p0:Int64} AND NOT COALESCE("flag" = {p1:Bool}, FALSE) AND (CASE WHEN COALESCE("k" = {p2:String}, FALSE) THEN 1 ELSE 0 END + CASE WHEN COALESCE(has("tags", {p3:String}), FALSE) THEN 1 ELSE 0 END + CASE WHEN COALESCE("x" > {p4:Float64}, FALSE) THEN 1 ELSE 0 END) >= 2 ORDER BY "_id" ASC LIMIT 10;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE "n" >= {p0:Int64} AND NOT COALESCE("flag" = {p1:Bool}, FALSE) AND (CASE WHEN COALESCE("k" = {p2:String}, FALSE) THEN 1 ELSE 0 END + CASE WHEN COALESCE(has("tags", {p3:String}), FALSE) THEN 1 ELSE 0 END + CASE WHEN COALESCE("x" > {p4:Float64}, FALSE) THEN 1 ELSE 0 END) >= 2 LIMIT 10001) AS capped;
-- params: {"p0":0,"p1":true,"p2":"a","p3":"red","p4":1.5}

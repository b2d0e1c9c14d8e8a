-- statement 0
SELECT countIf("n" < {p0:Float64}) AS "doc_count_0", countIf("n" >= {p1:Float64} AND "n" < {p2:Float64}) AS "doc_count_1", countIf("n" >= {p3:Float64}) AS "doc_count_2" FROM "docs";
-- statement 1
SELECT countIf("k" = {p4:String}) AS "doc_count_0", countIf(has("tags", {p5:String})) AS "doc_count_1", countIf(NOT COALESCE("k" = {p4:String} OR has("tags", {p5:String}), FALSE)) AS "doc_count_2" FROM "docs";
-- params: {"p0":0.0,"p1":0.0,"p2":10.0,"p3":10.0,"p4":"a","p5":"red"}

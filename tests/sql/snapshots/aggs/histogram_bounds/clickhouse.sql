-- statement 0
SELECT CAST(FLOOR(("x" - {p1:Float64}) / {p0:Float64}) AS Nullable(Int64)) AS "k0", COUNT(*) AS "doc_count" FROM "docs" WHERE NOT ("x" IS NULL) AND (CAST(FLOOR(("x" - {p1:Float64}) / {p0:Float64}) AS Nullable(Int64)) >= {p2:Int64} AND CAST(FLOOR(("x" - {p1:Float64}) / {p0:Float64}) AS Nullable(Int64)) <= {p3:Int64}) GROUP BY CAST(FLOOR(("x" - {p1:Float64}) / {p0:Float64}) AS Nullable(Int64)) ORDER BY "k0" LIMIT 65536;
-- params: {"p0":10.0,"p1":0.0,"p2":0,"p3":10}

-- statement 0
SELECT COUNT(*) AS "doc_count", quantilesExactInclusive({p0:Float64}, {p1:Float64}, {p2:Float64}, {p3:Float64}, {p4:Float64}, {p5:Float64}, {p6:Float64})("x") AS "m0_values" FROM "docs";
-- params: {"p0":0.01,"p1":0.05,"p2":0.25,"p3":0.5,"p4":0.75,"p5":0.95,"p6":0.99}

-- hits
SELECT "_id", "k", "n", "x", "flag", "when", "tags", "user:country", "user:age" FROM "docs" WHERE "when" >= {p0:DateTime64(6, 'UTC')} AND "when" < {p1:DateTime64(6, 'UTC')} ORDER BY "_id" ASC LIMIT 10;
-- total
SELECT COUNT(*) FROM (SELECT 1 FROM "docs" WHERE "when" >= {p0:DateTime64(6, 'UTC')} AND "when" < {p1:DateTime64(6, 'UTC')} LIMIT 10001) AS capped;
-- params: {"p0":"2026-10-25T00:00:00+00:00","p1":"2026-11-01T00:00:00+00:00"}

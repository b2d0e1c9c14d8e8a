-- statement 0
SELECT CAST(EPOCH_MS(TIMEZONE($p0, DATE_TRUNC('month', TIMEZONE($p0, "when")))) AS BIGINT) AS "k0", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "__hits" FROM "docs" GROUP BY CAST(EPOCH_MS(TIMEZONE($p0, DATE_TRUNC('month', TIMEZONE($p0, "when")))) AS BIGINT) QUALIFY NOT CAST(EPOCH_MS(TIMEZONE($p0, DATE_TRUNC('month', TIMEZONE($p0, "when")))) AS BIGINT) IS NULL ORDER BY "k0" LIMIT 65536;
-- params: {"p0":"Europe/Berlin"}

"""The SQL HyperLogLog: estimates within the stated bound, merges as unions, SQL = Python."""

from __future__ import annotations

import pytest
from sqlglot import exp

from aggregata.insights import hll
from aggregata.sql.query import col
from aggregata.storage.duckdb import DuckDBEngine


def _registers(engine: DuckDBEngine, source: str) -> dict[int, int]:
    actor = exp.cast(col("a"), "VARCHAR")
    tree = (
        exp.select(
            hll.register(hll.actor_hash(actor)).as_("reg"),
            exp.Max(this=hll.rank(hll.actor_hash(actor.copy()))).as_("rnk"),
        )
        .from_(exp.to_identifier(source))
        .group_by(col("reg"))
    )
    return {int(r["reg"]): int(r["rnk"]) for r in engine.query(tree).to_pylist()}


@pytest.mark.parametrize("n", [1, 10, 500, 5_000, 60_000, 300_000])
def test_estimates_are_within_the_bound(engine: DuckDBEngine, n: int) -> None:
    engine.query_sql(f"CREATE TABLE actors AS SELECT 'actor-' || i::VARCHAR AS a FROM range({n}) t(i)")
    ranks = _registers(engine, "actors")
    assert all(0 <= r < hll.M for r in ranks) and all(1 <= v <= 33 for v in ranks.values())
    estimate = engine.query_sql(
        f"SELECT {engine.render(hll.estimate_aggregate(col('rnk')))} AS e FROM "
        f"(SELECT UNNEST($regs) AS reg, UNNEST($ranks) AS rnk)",
        {"regs": list(ranks), "ranks": list(ranks.values())},
    ).to_pylist()[0]["e"]
    assert estimate == pytest.approx(hll.estimate_python(ranks), rel=1e-12)
    assert abs(estimate - n) <= max(1.0, hll.ERROR_BOUND * n)
    if n <= 5_000:  # linear counting: within 1% while registers rarely collide
        assert abs(estimate - n) <= max(1.0, 0.01 * n)


def test_merging_is_a_union(engine: DuckDBEngine) -> None:
    engine.query_sql("CREATE TABLE x AS SELECT 'u' || i::VARCHAR AS a FROM range(0, 30000) t(i)")
    engine.query_sql("CREATE TABLE y AS SELECT 'u' || i::VARCHAR AS a FROM range(20000, 50000) t(i)")
    engine.query_sql("CREATE TABLE xy AS SELECT * FROM x UNION ALL SELECT * FROM y")
    a, b = _registers(engine, "x"), _registers(engine, "y")
    merged = {r: max(a.get(r, 0), b.get(r, 0)) for r in a.keys() | b.keys()}
    assert merged == _registers(engine, "xy")
    assert abs(hll.estimate_python(merged) - 50_000) <= hll.ERROR_BOUND * 50_000


def test_error_bound_is_stated() -> None:
    assert hll.P == 14
    assert abs(hll.STANDARD_ERROR - 0.008125) < 1e-12
    assert abs(hll.ERROR_BOUND - 4 * 0.008125) < 1e-12

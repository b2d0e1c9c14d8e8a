"""A trends series as SQL: per-bucket values, totals, and the breakdown ranking.

Every query is built over a ``Relation`` (raw events or a rollup, ``insights/sources.py``),
so the same code answers from either; only how rows are counted or made unique differs.

Rolling maths (``dau``/``wau``/``mau``: distinct actors in the 1/7/30 days ending at each
bucket's end) fan out instead of joining on a range, which both engines do well: each
(unit, actor) pair — unit = local day, or hour for hourly charts — is repeated for the
N units whose windows contain it, and kept where that unit ends a bucket (or ends the
range). Windows reach back before ``date_from``, as PostHog's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlglot import exp

from aggregata.insights.plan import (
    PER_ACTOR_MATHS,
    PROPERTY_MATHS,
    ROLLING_MATHS,
    Period,
    SeriesPlan,
    TrendsPlan,
    rolling_window_start,
)
from aggregata.insights.sources import Relation, Top
from aggregata.sql.dialects import QuantileCont
from aggregata.sql.params import Params
from aggregata.sql.query import col

_QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class Query:
    tree: exp.Expr
    params: dict[str, Any]


def _keys(plan: TrendsPlan) -> list[str]:
    return [f"_k{i}" for i in range(len(plan.breakdowns))]


def _grouped(select: exp.Select, group: list[exp.Expr]) -> exp.Select:
    return select.group_by(*group) if group else select


def _aggregate(name: str, value: exp.Expr) -> exp.Expr:
    if name in _QUANTILES:
        return QuantileCont(this=value, quantile=exp.Literal.number(_QUANTILES[name]))
    node = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[name]
    return node(this=value)


def ranking(rel: Relation, series: SeriesPlan, period: Period, limit: int) -> Query:
    """Breakdown values by number of events, most first (ties by value), ``limit + 1`` of them."""
    params = Params()
    keys = [col(k) for k in _keys(rel.plan)]
    rows = rel.rows(series, params, period.start, period.end, None, sketch=False).subquery("r", copy=False)
    tree = (
        exp.select(*keys, rel.count().as_("c"))
        .from_(rows, copy=False)
        .group_by(*[k.copy() for k in keys])
        .order_by(exp.Ordered(this=col("c"), desc=True), *[k.copy() for k in keys])
        .limit(limit + 1)
    )
    return Query(tree, params.values)


def values(rel: Relation, series: SeriesPlan, period: Period, top: Top, *, per_bucket: bool) -> Query:
    """``b`` (bucket key, when ``per_bucket``), ``k0…`` and ``v``, the series' number."""
    params = Params()
    plan = rel.plan
    keys = _keys(plan)
    bucket = plan.bucketing.key_sql(col("_ts"), period.start)
    group: list[tuple[str, exp.Expr]] = ([("b", bucket)] if per_bucket else []) + [(k, col(k)) for k in keys]
    math = series.math
    if math in ROLLING_MATHS and per_bucket and _window_is_bucket(plan, math):
        # Each day's window is that day: the actors of each bucket, no fan-out needed.
        since = rolling_window_start(plan, period, ROLLING_MATHS[math])
        rows = rel.rows(series, params, since, period.end, top, sketch=True).subquery("r", copy=False)
        return Query(rel.unique(rows, group), params.values)
    if math in ROLLING_MATHS and per_bucket:
        return Query(_rolling(rel, series, period, top, params), params.values)
    if math in ROLLING_MATHS or math == "unique_actors":
        if math == "unique_actors" and plan.cumulative and per_bucket:
            return Query(_first_seen(rel, series, period, top, params, group), params.values)
        rows = rel.rows(series, params, period.start, period.end, top, sketch=True).subquery("r", copy=False)
        return Query(rel.unique(rows, group), params.values)
    rows = rel.rows(series, params, period.start, period.end, top, sketch=False).subquery("r", copy=False)
    named = [e.as_(n) for n, e in group]
    if math in PROPERTY_MATHS:
        tree = exp.select(*named, _aggregate(math, col("_x")).as_("v")).from_(rows, copy=False)
    elif math in PER_ACTOR_MATHS:
        per_actor = _grouped(
            exp.select(*named, col("_a"), exp.Count(this=exp.Star()).as_("c")).from_(rows, copy=False),
            [*(e.copy() for _, e in group), col("_a")],
        ).subquery("pa", copy=False)
        outer = exp.select(*[col(n) for n, _ in group], _aggregate(PER_ACTOR_MATHS[math], col("c")).as_("v"))
        return Query(_grouped(outer.from_(per_actor, copy=False), [col(n) for n, _ in group]), params.values)
    else:
        tree = exp.select(*named, rel.count().as_("v")).from_(rows, copy=False)
    return Query(_grouped(tree, [e.copy() for _, e in group]), params.values)


def _window_is_bucket(plan: TrendsPlan, math: str) -> bool:
    """A one-day window over day buckets: every bucket's window is the bucket itself (the
    first one reaching back to the start of its day)."""
    return ROLLING_MATHS[math] == 1 and plan.bucketing.interval == "day"


def _first_seen(
    rel: Relation,
    series: SeriesPlan,
    period: Period,
    top: Top,
    params: Params,
    group: list[tuple[str, exp.Expr]],
) -> exp.Select:
    """Actors by the bucket they were first seen in: cumulative uniques (raw only)."""
    keys = [(n, e) for n, e in group if n != "b"]
    bucket = next(e for n, e in group if n == "b")
    rows = rel.rows(series, params, period.start, period.end, top, sketch=True).subquery("r", copy=False)
    first = _grouped(
        exp.select(col("_a"), *[e.as_(n) for n, e in keys], exp.Min(this=bucket).as_("b")).from_(
            rows, copy=False
        ),
        [col("_a"), *[e.copy() for _, e in keys]],
    ).subquery("f", copy=False)
    names = [col("b"), *[col(n) for n, _ in keys]]
    return (
        exp.select(*names, exp.Count(this=exp.Star()).as_("v"))
        .from_(first, copy=False)
        .group_by(*[n.copy() for n in names])
    )


def _rolling(rel: Relation, series: SeriesPlan, period: Period, top: Top, params: Params) -> exp.Select:
    plan = rel.plan
    b = plan.bucketing
    days = ROLLING_MATHS[series.math]
    keys = _keys(plan)
    window_start = rolling_window_start(plan, period, days)
    rows = rel.rows(series, params, window_start, period.end, top, sketch=True).subquery("r", copy=False)
    units = rel.rolling_units(rows, b.unit_sql(col("_ts"), period.start), keys).subquery("u", copy=False)
    fan_out = days * 86_400_000 // b.step_ms if b.sub_day else days
    carried = [col(k) for k in keys] + [col(c) for c in rel.actor_columns()]
    step = exp.Explode(this=exp.Anonymous(this="range", expressions=[exp.Literal.number(fan_out)]))
    fanned = exp.select(col("u"), *carried, step.as_("j")).from_(units, copy=False).subquery("f", copy=False)
    moved = exp.select(b.unit_plus(col("u"), col("j")).as_("c"), *[c.copy() for c in carried]).from_(
        fanned, copy=False
    )
    first = b.unit_key(period.start)
    last = b.unit_key(period.end - timedelta(microseconds=1))
    c = col("c")
    conds: list[exp.Expr] = [
        exp.GTE(this=c.copy(), expression=b.unit_literal(first, params)),
        exp.LTE(this=c.copy(), expression=b.unit_literal(last, params)),
    ]
    if b.interval not in ("minute", "hour", "day"):  # a unit counts where it ends its bucket
        ends_bucket = exp.NEQ(
            this=b.bucket_of_unit_sql(b.unit_plus(c.copy(), exp.Literal.number(1))),
            expression=b.bucket_of_unit_sql(c.copy()),
        )
        is_last = exp.EQ(this=c.copy(), expression=b.unit_literal(last, params))
        conds.append(exp.Paren(this=exp.or_(ends_bucket, is_last)))
    kept = moved.subquery("m", copy=False)
    filtered = exp.select("*").from_(kept, copy=False).where(exp.and_(*conds)).subquery("w", copy=False)
    group = [("b", b.bucket_of_unit_sql(col("c"))), *[(k, col(k)) for k in keys]]
    return rel.unique(filtered, group)

"""The three funnel views over the per-actor relation: steps, time to convert, trends.

Each view is a final aggregation in SQL (the engine returns a handful of rows) and the
shaping of those rows into the response in Python. Times are computed in microseconds and
reported in seconds.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlglot import exp

from aggregata.insights.funnels.layers import ONE, ZERO, Compiled, Layers, case_when, zip_map
from aggregata.insights.funnels.plan import FunnelPlan
from aggregata.insights.funnels.sql import FunnelSQL
from aggregata.sql.dialects import QuantileCont
from aggregata.sql.lists import ListDistinct, ListUnnest, TupleGet, TupleOf
from aggregata.sql.query import col

Row = dict[str, Any]


def _count_over(level: int) -> exp.Expr:
    """Actors whose level is above ``level`` (who reached step ``level``)."""
    return exp.Sum(this=case_when(exp.GT(this=col("_L"), expression=exp.Literal.number(level)), ONE, ZERO))


def _seconds(us: Any) -> float | None:
    return None if us is None else float(us) / 1e6


# -- steps ----------------------------------------------------------------------------------


def steps_query(plan: FunnelPlan) -> Compiled:
    """Per breakdown value (and in total): actors per step, mean and median step times."""
    layers = FunnelSQL(plan).per_actor()
    cols: list[exp.Expr] = []
    for k in range(plan.n_steps):
        cols.append(exp.alias_(_count_over(k), f"c{k}", quoted=True))
        if k:
            cols.append(exp.alias_(exp.Avg(this=col(f"_d{k}")), f"avg{k}", quoted=True))
            median = QuantileCont(this=col(f"_d{k}"), quantile=exp.Literal.number(0.5))
            cols.append(exp.alias_(median, f"med{k}", quoted=True))
    select = exp.select(*cols).from_(layers.source, copy=False)
    if plan.breakdown is not None:
        grouping = exp.Anonymous(this="GROUPING", expressions=[col("_bd")])
        select = select.select(
            exp.alias_(col("_bd"), "bd", quoted=True), exp.alias_(grouping, "g", quoted=True), copy=False
        )
        sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[col("_bd")]), exp.Tuple(expressions=[])])
        select = select.group_by(sets, copy=False).order_by(
            exp.Ordered(this=col("g"), desc=True),
            exp.Ordered(this=col("c0"), desc=True),
            exp.Ordered(this=col("bd"), nulls_first=False),
            copy=False,
        )
        select = select.limit(plan.req.breakdown_limit + 2, copy=False)  # the total, the values, one more
    return Compiled(layers.finish(select), plan.params.values)


def _steps(plan: FunnelPlan, row: Row | None) -> list[dict[str, Any]]:
    n = plan.n_steps
    counts = [int((row or {}).get(f"c{k}") or 0) for k in range(n)]
    out = []
    for k, step in enumerate(plan.req.steps):
        prev = counts[k - 1] if k else counts[0]
        unordered = plan.order == "unordered"
        out.append(
            {
                "index": k,
                "name": f"Completed {k + 1} step{'s' if k else ''}" if unordered else step.label,
                "event": None if unordered else step.event,
                "count": counts[k],
                "conversion_from_previous": counts[k] / prev if prev else 0.0,
                "conversion_from_first": counts[k] / counts[0] if counts[0] else 0.0,
                "drop_off": counts[k - 1] - counts[k] if k else 0,
                "avg_time_from_previous_s": _seconds((row or {}).get(f"avg{k}")) if k else None,
                "median_time_from_previous_s": _seconds((row or {}).get(f"med{k}")) if k else None,
            }
        )
    return out


def steps_response(plan: FunnelPlan, rows: list[Row]) -> dict[str, Any]:
    if plan.breakdown is None:
        return {"steps": _steps(plan, rows[0] if rows else None)}
    total = next((r for r in rows if r["g"]), None)
    values = [r for r in rows if not r["g"]]
    truncated = len(values) > plan.req.breakdown_limit
    breakdowns = [
        {"breakdown_value": r["bd"], "steps": _steps(plan, r)} for r in values[: plan.req.breakdown_limit]
    ]
    return {"steps": _steps(plan, total), "breakdowns": breakdowns, "breakdowns_truncated": truncated}


# -- time to convert ------------------------------------------------------------------------


def _conversion_time(plan: FunnelPlan, layers: Layers) -> None:
    """``_dt``: µs from ``from_step`` to ``to_step`` on the chosen attempt, when it got there."""
    lo, hi = plan.req.from_index, plan.req.to_index
    total: exp.Expr = col(f"_d{lo + 1}")
    for k in range(lo + 2, hi + 1):
        total = exp.Add(this=total, expression=col(f"_d{k}"))
    layers.add({"_dt": total})


def time_to_convert_query(plan: FunnelPlan) -> Compiled:
    """A histogram of ``bins`` equal bins between the fastest and the slowest conversion."""
    layers = FunnelSQL(plan).per_actor()
    _conversion_time(plan, layers)
    dt = col("_dt")
    bounds = exp.select(
        dt,
        exp.alias_(exp.Window(this=exp.Min(this=dt.copy())), "_lo", quoted=True),
        exp.alias_(exp.Window(this=exp.Max(this=dt.copy())), "_hi", quoted=True),
    )
    bounds = bounds.from_(layers.source, copy=False).where(
        exp.Not(this=exp.Is(this=dt.copy(), expression=exp.Null()))
    )
    bins = exp.Literal.number(plan.req.bins)
    span = exp.Greatest(this=exp.Sub(this=col("_hi"), expression=col("_lo")), expressions=[ONE.copy()])
    offset = exp.Paren(this=exp.Sub(this=dt.copy(), expression=col("_lo")))
    scaled = exp.Div(this=exp.Mul(this=offset, expression=bins), expression=span)
    index = exp.Least(
        this=exp.cast(exp.Floor(this=scaled), "BIGINT"), expressions=[exp.Literal.number(plan.req.bins - 1)]
    )
    binned = exp.select(dt.copy(), col("_lo"), col("_hi"), exp.alias_(index, "_bin", quoted=True))
    binned = binned.from_(bounds.subquery("_bounds", copy=False), copy=False)
    final = exp.select(
        exp.alias_(col("_bin"), "bin", quoted=True),
        exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True),
        exp.alias_(exp.Sum(this=dt.copy()), "total", quoted=True),
        exp.alias_(exp.Min(this=col("_lo")), "lo", quoted=True),
        exp.alias_(exp.Max(this=col("_hi")), "hi", quoted=True),
    )
    final = (
        final.from_(binned.subquery("_binned", copy=False), copy=False)
        .group_by(col("_bin"), copy=False)
        .order_by(col("_bin"), copy=False)
    )
    return Compiled(layers.finish(final), plan.params.values)


def time_to_convert_response(plan: FunnelPlan, rows: list[Row]) -> dict[str, Any]:
    n_bins = plan.req.bins
    counts = [0] * n_bins
    for r in rows:
        counts[int(r["bin"])] = int(r["n"])
    actors = sum(counts)
    out: dict[str, Any] = {
        "from_step": plan.req.from_index,
        "to_step": plan.req.to_index,
        "actors": actors,
        "average_time_s": float(sum(int(r["total"]) for r in rows)) / actors / 1e6 if actors else None,
        "bins": [],
    }
    if rows:
        lo, hi = int(rows[0]["lo"]), int(rows[0]["hi"])
        width = max(hi - lo, 1) / n_bins
        out["bins"] = [
            {"from_s": (lo + i * width) / 1e6, "to_s": (lo + (i + 1) * width) / 1e6, "count": counts[i]}
            for i in range(n_bins)
        ]
    return out


# -- trends ---------------------------------------------------------------------------------


def trends_query(plan: FunnelPlan) -> Compiled:
    """Per entry bucket: actors with an attempt there reaching ``from_step``, and ``to_step``."""
    layers = FunnelSQL(plan).per_actor()
    pairs = zip_map(TupleOf(expressions=[exp.column("u"), exp.column("l")]), {"u": "_ub", "l": "_lf"})
    layers.add({"_pairs": ListDistinct(this=pairs)})
    rows = exp.select(col("_a"), exp.alias_(ListUnnest(this=col("_pairs")), "_p", quoted=True))
    rows = rows.from_(layers.source, copy=False)
    fields = exp.select(
        col("_a"),
        exp.alias_(TupleGet(this=col("_p"), index=ONE), "_bk", quoted=True),
        exp.alias_(TupleGet(this=col("_p"), index=exp.Literal.number(2)), "_lv", quoted=True),
    ).from_(rows.subquery("_pairs", copy=False), copy=False)
    best = exp.select(col("_a"), col("_bk"), exp.alias_(exp.Max(this=col("_lv")), "_lm", quoted=True))
    best = best.from_(fields.subquery("_fields", copy=False), copy=False).group_by(
        col("_a"), col("_bk"), copy=False
    )

    def reached(step: int) -> exp.Expr:
        return exp.Sum(
            this=case_when(exp.GT(this=col("_lm"), expression=exp.Literal.number(step)), ONE, ZERO)
        )

    final = exp.select(
        exp.alias_(col("_bk"), "bucket", quoted=True),
        exp.alias_(reached(plan.req.from_index), "entered", quoted=True),
        exp.alias_(reached(plan.req.to_index), "converted", quoted=True),
    )
    final = final.from_(best.subquery("_best", copy=False), copy=False).group_by(col("_bk"), copy=False)
    return Compiled(layers.finish(final), plan.params.values)


def trends_response(plan: FunnelPlan, rows: list[Row]) -> dict[str, Any]:
    found: dict[date | int, Row] = {r["bucket"]: r for r in rows}
    points = []
    for bucket in plan.buckets:
        r = found.get(bucket.key, {})
        entered, converted = int(r.get("entered") or 0), int(r.get("converted") or 0)
        points.append(
            {
                "date": bucket.label,
                "entered": entered,
                "converted": converted,
                "conversion_rate": 100.0 * converted / entered if entered else 0.0,
            }
        )
    return {"from_step": plan.req.from_index, "to_step": plan.req.to_index, "trends": points}

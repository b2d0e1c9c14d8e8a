"""Stickiness: how many actors did the event in exactly 1, 2, … N intervals of the range.

For each series (an event with filters), each actor's number of distinct buckets with at
least one such event in ``[date_from, date_to)`` is counted, and the answer is the
histogram over 1…N (N = number of buckets in the range), as PostHog's stickiness insight.
With a breakdown, per breakdown value (an actor counts under each value it had), the top
``breakdown_limit`` values by events and ``"$other"``, as trends do. Read from raw events
(a rollup's sketches cannot tell actors apart).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field
from sqlglot import exp

from aggregata.insights.common import event_schema
from aggregata.insights.models import InsightRequest
from aggregata.insights.plan import SeriesRequest, TrendsPlan, TrendsRequest, parse_trends, validate
from aggregata.insights.sources import RawRelation
from aggregata.insights.trends import breakdown_order, breakdown_value, number
from aggregata.insights.trends_sql import Query
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Engine


class StickinessRequest(InsightRequest):
    """``POST /v1/insights/stickiness`` body."""

    series: list[SeriesRequest] = Field(min_length=1, max_length=20)
    interval: str = "day"
    week_start: str = "monday"
    breakdown: list[str] | str | None = Field(None, examples=["country"])
    breakdown_limit: int = Field(25, ge=1, le=1000)


def plan_for(
    req: InsightRequest,
    series: list[SeriesRequest],
    interval: str,
    week_start: str,
    engine: Engine,
    now: Any,
    breakdown: list[str] | str | None = None,
    breakdown_limit: int = 25,
) -> TrendsPlan:
    """A trends plan over the same fields: stickiness and lifecycle reuse its buckets and rows."""
    trends = TrendsRequest(
        breakdown=breakdown,
        breakdown_limit=breakdown_limit,
        collection=req.collection,
        date_from=req.date_from,
        date_to=req.date_to,
        timezone=req.timezone,
        filters=req.filters,
        actor=req.actor,
        series=[s.model_copy(update={"math": "total", "math_property": None}) for s in series],
        interval=interval,
        week_start=week_start,
    )
    coll = engine.get_collection(req.collection)
    return parse_trends(trends, event_schema(coll, req.actor), now=now)


def stickiness(engine: Engine, body: Any, *, now: Any) -> dict[str, Any]:
    started = time.perf_counter()
    req: StickinessRequest = validate(StickinessRequest, body)
    plan = plan_for(
        req, req.series, req.interval, req.week_start, engine, now, req.breakdown, req.breakdown_limit
    )
    period = plan.periods[0]
    n = len(period.buckets)
    rel = RawRelation(plan)
    unit = plan.bucketing.interval
    labels = [f"{i} {unit}{'' if i == 1 else 's'}" for i in range(1, n + 1)]
    n_keys = len(plan.breakdowns)
    keys = [col(f"_k{i}") for i in range(n_keys)]

    def run(query: Query) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = engine.query(query.tree, query.params).to_pylist()
        return rows

    out = []
    for series in plan.series:
        order, top = breakdown_order(run, rel, series, period)
        params = Params()
        rows = rel.rows(series, params, period.start, period.end, top, sketch=False).subquery("r")
        bucket = plan.bucketing.key_sql(col("_ts"), period.start)
        per_actor = (
            exp.select(*keys, col("_a"), exp.Count(this=exp.Distinct(expressions=[bucket])).as_("n"))
            .from_(rows)
            .group_by(*[k.copy() for k in keys], col("_a"))
            .subquery("p")
        )
        tree = (
            exp.select(*[k.copy() for k in keys], col("n"), exp.Count(this=exp.Star()).as_("actors"))
            .from_(per_actor)
            .group_by(*[k.copy() for k in keys], col("n"))
        )
        counts: dict[tuple[Any, ...], dict[int, int | float]] = {key: {} for key in order}
        for r in run(Query(tree, params.values)):
            key = tuple(r[f"_k{i}"] for i in range(n_keys))
            if key in counts:
                counts[key][int(r["n"])] = number(r["actors"])
        for key in order:
            data = [counts[key].get(i, 0) for i in range(1, n + 1)]
            out.append(
                {
                    "name": series.name,
                    "breakdown_value": breakdown_value(key, n_keys),
                    "labels": labels,
                    "days": list(range(1, n + 1)),
                    "data": data,
                    "total": sum(data),
                }
            )
    return {"series": out, "source": "raw", "took": int((time.perf_counter() - started) * 1000)}

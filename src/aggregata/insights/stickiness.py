"""Stickiness: how many actors did the event in exactly 1, 2, … N intervals of the range.

For each series (an event with filters), each actor's number of distinct buckets with at
least one such event in ``[date_from, date_to)`` is counted, and the answer is the
histogram over 1…N (N = number of buckets in the range), as PostHog's stickiness insight.
Read from raw events (a rollup's sketches cannot tell actors apart).
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
from aggregata.insights.trends import number
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Engine


class StickinessRequest(InsightRequest):
    """``POST /v1/insights/stickiness`` body."""

    series: list[SeriesRequest] = Field(min_length=1, max_length=20)
    interval: str = "day"
    week_start: str = "monday"


def plan_for(
    req: InsightRequest, series: list[SeriesRequest], interval: str, week_start: str, engine: Engine, now: Any
) -> TrendsPlan:
    """A trends plan over the same fields: stickiness and lifecycle reuse its buckets and rows."""
    trends = TrendsRequest(
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
    plan = plan_for(req, req.series, req.interval, req.week_start, engine, now)
    period = plan.periods[0]
    n = len(period.buckets)
    rel = RawRelation(plan)
    unit = {"minute": "minute", "hour": "hour", "day": "day", "week": "week"}.get(
        plan.bucketing.interval, plan.bucketing.interval
    )
    labels = [f"{i} {unit}{'' if i == 1 else 's'}" for i in range(1, n + 1)]
    out = []
    for series in plan.series:
        params = Params()
        rows = rel.rows(series, params, period.start, period.end, None, sketch=False).subquery("r")
        key = plan.bucketing.key_sql(col("_ts"), period.start)
        per_actor = (
            exp.select(col("_a"), exp.Count(this=exp.Distinct(expressions=[key])).as_("n"))
            .from_(rows)
            .group_by(col("_a"))
            .subquery("p")
        )
        tree = (
            exp.select(col("n"), exp.Count(this=exp.Star()).as_("actors")).from_(per_actor).group_by(col("n"))
        )
        counts = {int(r["n"]): number(r["actors"]) for r in engine.query(tree, params.values).to_pylist()}
        data = [counts.get(i, 0) for i in range(1, n + 1)]
        out.append(
            {
                "name": series.name,
                "labels": labels,
                "days": list(range(1, n + 1)),
                "data": data,
                "total": sum(data),
            }
        )
    return {"series": out, "source": "raw", "took": int((time.perf_counter() - started) * 1000)}

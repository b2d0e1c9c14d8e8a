"""Retention: of the actors who did a start event in a period (a cohort), how many came back
with a return event n periods later.

Definitions (also in docs/insights.md, section "Retention"):

* Periods are calendar days, ISO weeks (Monday) or months on the wall clock of ``timezone``
  (DST-correct: ``insights/buckets.py``). The cohorts are the periods overlapping
  ``[date_from, date_to)``; ``date_from`` defaults to ``periods - 1`` periods ago.
* ``first_time``: an actor's cohort is the period of their first start event ever; actors
  whose first start event is before the first cohort are in no cohort. ``recurring``: an
  actor is in every cohort period in which they did the start event.
* ``retained[0]`` is the cohort size (period 0 is the cohort's own period); ``retained[n]``
  counts the cohort's actors with a return event in period ``cohort + n``. Only periods
  that have started before ``date_to`` are listed, so later cohorts have shorter rows.
  Events at or after ``date_to`` are not read.
* ``overall[n]``: the sum of ``retained[n]`` over the cohorts that have reached period n,
  divided by the sum of their sizes, in percent (a size-weighted mean).
* ``breakdown``: the property's value on the actor's first start event read (first ever
  for ``first_time``, first in the range for ``recurring``; at equal times the smallest).

SQL: one scan, ``GROUP BY actor`` collects the actor's cohort periods and return periods,
and per actor a list expression pairs each cohort with the return periods 1..periods-1
after it (as one integer ``cohort * 1024 + offset``); those are unnested and counted. No
self-join, and nothing per pair of periods outside an actor's own activity. (ClickHouse's
``retention()`` aggregate needs each actor's cohort before it reads the events — a second
pass — so both engines use the same list expression.)
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.insights.buckets import Bucket, Bucketing
from aggregata.insights.common import (
    EventSchema,
    compile_filters,
    event_condition,
    event_schema,
    resolve_date_range,
    resolve_field,
    timezone,
)
from aggregata.insights.funnels.layers import ONE, ZERO, Layers, case_when, number, var, zip_map
from aggregata.insights.models import Filter, InsightRequest
from aggregata.insights.plan import validate
from aggregata.sql.lists import (
    EpochMicros,
    ListAgg,
    ListConcat,
    ListDistinct,
    ListFlatten,
    ListSort,
    ListUnnest,
    PeriodIndex,
    TupleGet,
    TupleOf,
)
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Engine

CODE = 1024  # cohort * CODE + offset; offsets are below MAX_PERIODS
MAX_PERIODS = 100
_UNIT = {"day": "d", "week": "w", "month": "m"}


class RetentionEvent(BaseModel):
    """An event name (None: any event) and its filters."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(None, min_length=1, max_length=200, examples=["signup"])
    filters: list[Filter] = Field(default_factory=list)


class RetentionRequest(InsightRequest):
    """``POST /v1/insights/retention`` body."""

    start_event: RetentionEvent
    return_event: RetentionEvent
    period: Literal["day", "week", "month"] = "day"
    periods: int = Field(7, ge=1, le=MAX_PERIODS)
    retention_type: Literal["first_time", "recurring"] = "first_time"
    breakdown: str | None = Field(None, min_length=1, max_length=255)
    breakdown_limit: int = Field(25, ge=1, le=1000)


def period_index(day: date, period: str) -> int:
    """What ``PeriodIndex`` computes for the first day of a period, in Python."""
    if period == "month":
        return (day.year - 1970) * 12 + day.month - 1
    days = (day - date(1970, 1, 5 if period == "week" else 1)).days
    return days // 7 if period == "week" else days


@dataclass
class RetentionPlan:
    req: RetentionRequest
    schema: EventSchema
    cohorts: list[Bucket]
    first: int  # period index of the first cohort
    last: int  # period index of the last cohort (the last period that has started)
    end: datetime
    params: Params
    start_cond: exp.Expr
    return_cond: exp.Expr
    global_filter: exp.Expr
    bucketing: Bucketing
    breakdown: exp.Expr | None


def plan_retention(req: RetentionRequest, schema: EventSchema, *, now: datetime) -> RetentionPlan:
    tz = timezone(req.timezone)
    default_from = f"-{req.periods - 1}{_UNIT[req.period]}"
    start, end = resolve_date_range(req.date_from, req.date_to, now=now, tz=tz, default_from=default_from)
    bucketing = Bucketing(req.period, tz)
    cohorts = bucketing.buckets(start, end)
    if not cohorts:
        raise BadRequest("the date range is empty")
    params = Params()

    def condition(spec: RetentionEvent) -> exp.Expr:
        parts = [event_condition(schema, spec.event, params)]
        if spec.filters:
            parts.append(compile_filters(spec.filters, schema, params, now=now, tz=tz))
        return exp.Coalesce(this=exp.and_(*parts), expressions=[exp.false()])

    breakdown: exp.Expr | None = None
    if req.breakdown is not None:
        found = resolve_field(schema.mapping, req.breakdown)
        if found is not None and found.array:
            raise BadRequest(f"cannot break down by [{req.breakdown}]: it holds arrays")
        breakdown = schema.column(found.name) if found is not None else exp.Null()
    return RetentionPlan(
        req,
        schema,
        cohorts,
        period_index(_key(cohorts[0]), req.period),
        period_index(_key(cohorts[-1]), req.period),
        end,
        params,
        condition(req.start_event),
        condition(req.return_event),
        compile_filters(req.filters, schema, params, now=now, tz=tz),
        bucketing,
        breakdown,
    )


def _key(bucket: Bucket) -> date:
    assert isinstance(bucket.key, date)
    return bucket.key


def compile_retention(plan: RetentionPlan) -> exp.Select:
    """One row per (breakdown value, cohort * CODE + offset) with its number of actors."""
    req, schema, params = plan.req, plan.schema, plan.params
    ts, actor = schema.column(schema.timestamp), schema.column(schema.actor)
    first_start = params.bind(plan.cohorts[0].start)
    in_range = exp.GTE(this=ts.copy(), expression=first_start)
    where = [
        exp.LT(this=ts.copy(), expression=params.bind(plan.end)),
        exp.Not(this=exp.Is(this=actor.copy(), expression=exp.Null())),
        plan.global_filter,
        exp.or_(plan.start_cond.copy(), plan.return_cond.copy()),
        # first_time needs every earlier start event, to know whose first one is in range
        exp.or_(plan.start_cond.copy(), in_range) if req.retention_type == "first_time" else in_range,
    ]
    period = PeriodIndex(
        this=plan.bucketing.key_sql(ts.copy(), plan.cohorts[0].start), unit=exp.var(req.period)
    )
    cols = [
        exp.alias_(actor, "_a", quoted=True),
        exp.alias_(period, "_p", quoted=True),
        exp.alias_(plan.start_cond, "_st", quoted=True),
        exp.alias_(plan.return_cond, "_rt", quoted=True),
    ]
    if plan.breakdown is not None:
        cols += [
            exp.alias_(EpochMicros(this=ts.copy()), "_t", quoted=True),
            exp.alias_(plan.breakdown, "_b", quoted=True),
        ]
    rows = (
        exp.select(*cols)
        .from_(exp.table_(schema.collection, quoted=True))
        .where(exp.and_(*where), copy=False)
    )
    p, first = col("_p"), number(plan.first)
    after_first = exp.GTE(this=p.copy(), expression=first.copy())
    aggs: dict[str, exp.Expr] = {
        "_rs": ListDistinct(this=ListAgg(this=case_when(exp.and_(col("_rt"), after_first.copy()), p.copy())))
    }
    if req.retention_type == "first_time":
        aggs["_c"] = exp.Min(this=case_when(col("_st"), p.copy()))
    else:
        aggs["_cs"] = ListDistinct(
            this=ListAgg(this=case_when(exp.and_(col("_st"), after_first.copy()), p.copy()))
        )
    if plan.breakdown is not None:
        starts = ListAgg(this=TupleOf(expressions=[col("_t"), col("_b")]), where=col("_st"))
        aggs["_bd"] = TupleGet(
            this=exp.Bracket(this=ListSort(this=starts), expressions=[ONE], offset=1), index=number(2)
        )
    select = exp.select(col("_a"), *[exp.alias_(e, n, quoted=True) for n, e in aggs.items()])
    layers = Layers(
        select.from_(rows.subquery("_rows", copy=False), copy=False).group_by(col("_a"), copy=False),
        ["_a", *aggs],
    )
    if req.retention_type == "first_time":
        layers.add(
            {"_cs": exp.Array(expressions=[col("_c")])},
            drop=["_c"],
            where=exp.GTE(this=col("_c"), expression=first),
        )
    # Per cohort c: [c * CODE] (period 0) and c * CODE + (r - c) for each return period r
    # 1..periods-1 later (-1 for the others, dropped after the unnest).
    offset = exp.Paren(this=exp.Sub(this=var("r"), expression=var("c")))
    within = exp.Between(this=offset.copy(), low=ONE.copy(), high=number(req.periods - 1))
    base = exp.Mul(this=var("c"), expression=number(CODE))
    later = zip_map(case_when(within, exp.Add(this=base.copy(), expression=offset), number(-1)), {"r": "_rs"})
    per_cohort = zip_map(ListConcat(expressions=[exp.Array(expressions=[base]), later]), {"c": "_cs"})
    layers.add({"_codes": ListDistinct(this=ListFlatten(this=per_cohort))}, drop=["_cs", "_rs"])
    layers.add({"_code": ListUnnest(this=col("_codes"))}, drop=["_codes", "_a"])
    group: list[exp.Expr] = [col("_code")]
    out: list[exp.Expr] = [col("_code"), exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)]
    final = (
        exp.select(*out)
        .from_(layers.source, copy=False)
        .where(exp.GTE(this=col("_code"), expression=ZERO), copy=False)
    )
    if plan.breakdown is not None:
        grouping = exp.Anonymous(this="GROUPING", expressions=[col("_bd")])
        final = final.select(col("_bd"), exp.alias_(grouping, "g", quoted=True), copy=False)
        sets = exp.GroupingSets(
            expressions=[exp.Tuple(expressions=[col("_bd"), col("_code")]), exp.Tuple(expressions=group)]
        )
        return layers.finish(final.group_by(sets, copy=False))
    return layers.finish(final.group_by(*group, copy=False))


def _table(plan: RetentionPlan, counts: dict[int, int]) -> dict[str, Any]:
    """Cohort rows and the overall curve from ``{cohort * CODE + offset: actors}``."""
    req = plan.req
    cohorts = []
    sums = [0] * req.periods
    sizes = [0] * req.periods
    for bucket in plan.cohorts:
        c = period_index(_key(bucket), req.period)
        reached = min(req.periods, plan.last - c + 1)
        retained = [counts.get(c * CODE + i, 0) for i in range(reached)]
        size = retained[0]
        for i, n in enumerate(retained):
            sums[i] += n
            sizes[i] += size
        cohorts.append(
            {
                "cohort": _key(bucket).isoformat(),
                "size": size,
                "retained": retained,
                "percentages": [round(100.0 * n / size, 2) if size else 0.0 for n in retained],
            }
        )
    reached = min(req.periods, plan.last - plan.first + 1)  # by the first cohort, the oldest
    overall = [
        round(100.0 * s / z, 2) if z else 0.0 for s, z in list(zip(sums, sizes, strict=True))[:reached]
    ]
    return {"cohorts": cohorts, "overall": overall}


class RetentionService:
    """Runs retention requests on an engine; the clock is injected so tests can pin ``now``."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.clock = clock

    def plan(self, body: Any) -> RetentionPlan:
        req: RetentionRequest = validate(RetentionRequest, body)
        coll = self.engine.get_collection(req.collection)
        return plan_retention(req, event_schema(coll, req.actor), now=self.clock())

    def retention(self, body: Any) -> dict[str, Any]:
        started = time.perf_counter()
        plan = self.plan(body)
        rows = self.engine.query(compile_retention(plan), plan.params.values).to_pylist()
        if plan.breakdown is None:
            out = _table(plan, {int(r["_code"]): int(r["n"]) for r in rows})
        else:
            by_value: dict[Any, dict[int, int]] = defaultdict(dict)
            total: dict[int, int] = {}
            for r in rows:
                target = total if r["g"] else by_value[r["_bd"]]
                target[int(r["_code"])] = int(r["n"])
            out = _table(plan, total)
            ranked = sorted(by_value.items(), key=lambda kv: (-_size(kv[1]), kv[0] is None, str(kv[0])))
            out["breakdowns"] = [
                {"breakdown_value": value, **_table(plan, counts)}
                for value, counts in ranked[: plan.req.breakdown_limit]
            ]
            out["breakdowns_truncated"] = len(ranked) > plan.req.breakdown_limit
        out["took"] = int((time.perf_counter() - started) * 1000)
        return out


def _size(counts: dict[int, int]) -> int:
    """Actors in any cohort (each cohort's period-0 count), to rank breakdown values."""
    return sum(n for code, n in counts.items() if code % CODE == 0)


__all__ = ["RetentionRequest", "RetentionService"]

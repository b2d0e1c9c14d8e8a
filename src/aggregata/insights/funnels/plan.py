"""A funnel request resolved against its collection: conditions, time range, buckets.

Pure: ``now`` is an argument. Step and exclusion conditions become sqlglot conditions over
the event columns (values bound in ``params``); identical conditions share one index so
each distinct condition is collected once per actor, however many steps repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.insights.buckets import Bucket, Bucketing
from aggregata.insights.common import (
    EventSchema,
    compile_filters,
    event_condition,
    resolve_date_range,
    resolve_field,
    timezone,
)
from aggregata.insights.funnels.models import FunnelRequest
from aggregata.insights.models import Filter
from aggregata.sql.params import Params

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


@dataclass
class FunnelPlan:
    """Everything the SQL needs, resolved: condition ``k`` of step ``i`` is ``conditions[step_cond[i]]``."""

    req: FunnelRequest
    schema: EventSchema
    tz: ZoneInfo
    start: datetime
    end: datetime
    window_us: int
    params: Params
    conditions: list[exp.Expr] = field(default_factory=list)
    step_cond: list[int] = field(default_factory=list)
    exclusion_cond: list[int] = field(default_factory=list)
    global_filter: exp.Expr = field(default_factory=exp.true)
    events: list[str] | None = None
    breakdown: exp.Expr | None = None
    bucketing: Bucketing | None = None
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return len(self.req.steps)

    @property
    def order(self) -> str:
        return self.req.order


def plan_funnel(req: FunnelRequest, schema: EventSchema, *, now: datetime) -> FunnelPlan:
    """Resolve dates (``date_from`` default ``-7d``), conditions, breakdown and trend buckets."""
    tz = timezone(req.timezone)
    start, end = resolve_date_range(req.date_from, req.date_to, now=now, tz=tz, default_from="-7d")
    params = Params()
    plan = FunnelPlan(req, schema, tz, start, end, req.window.seconds * 1_000_000, params)
    keys: dict[tuple[str | None, str], int] = {}

    def condition(event: str | None, filters: list[Filter]) -> int:
        key = (event, repr(filters))
        if key not in keys:
            keys[key] = len(plan.conditions)
            parts = [event_condition(schema, event, params)]
            if filters:
                parts.append(compile_filters(filters, schema, params, now=now, tz=tz))
            # May be NULL (a missing property): conditions are only read by CASE WHEN, where
            # NULL is false, so no COALESCE is spent on every event.
            plan.conditions.append(exp.and_(*parts))
        return keys[key]

    plan.step_cond = [condition(s.event, s.filters) for s in req.steps]
    plan.exclusion_cond = [condition(x.event, x.filters) for x in req.exclusions]
    plan.global_filter = compile_filters(req.filters, schema, params, now=now, tz=tz)
    names = [s.event for s in req.steps] + [x.event for x in req.exclusions]
    if req.order != "strict" and all(n is not None for n in names):
        plan.events = sorted({n for n in names if n is not None})
    if req.breakdown is not None:
        found = resolve_field(schema.mapping, req.breakdown)
        if found is not None and found.array:
            raise BadRequest(f"cannot break down by [{req.breakdown}]: it holds arrays")
        plan.breakdown = schema.column(found.name) if found is not None else exp.Null()
    if req.funnel_viz == "trends":
        plan.bucketing = Bucketing(req.interval, tz)
        plan.bucketing.check_offsets(start, end)
        plan.buckets = plan.bucketing.buckets(start, end)
    return plan

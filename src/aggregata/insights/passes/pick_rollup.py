"""Planner pass: answer a trends plan from a rollup when one covers it, else from raw events.

A pure rewrite (plan in, plan out; no IO): the caller passes what the collection's
rollups were built with (``RollupSpec`` or None). A rollup covers a plan when all of:

* it was built for the plan's timestamp, event and actor fields (no ``actor`` override);
* every series' math is ``total``, ``unique_actors`` (not cumulative), ``dau``, ``wau`` or
  ``mau`` — what counts and unique-actor sketches can answer;
* every breakdown and every filtered property is one of the rollup's breakdown
  properties, holding single text values, and every filter is ``eq``, ``neq``, ``in``,
  ``not_in``, ``is_set`` or ``is_not_set`` (comparisons on the stored text are exact);
* its grain fits the buckets: the **day** rollup (UTC days) serves day-or-coarser
  intervals in UTC when every period starts and ends at UTC midnight; the **hour**
  rollup serves hour-or-coarser intervals in any time zone whose offset is a whole number
  of hours throughout the periods, when they start and end on whole hours.

The coarsest covering grain wins (fewer rows to read).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from aggregata.insights.common import resolve_field
from aggregata.insights.models import Filter, FilterGroup
from aggregata.insights.plan import ROLLING_MATHS, Source, TrendsPlan
from aggregata.insights.rollups import GRAINS, RollupSpec
from aggregata.model.mapping import FieldType

ROLLUP_MATHS = frozenset({"total", "unique_actors", *ROLLING_MATHS})
ROLLUP_OPERATORS = frozenset({"eq", "neq", "in", "not_in", "is_set", "is_not_set"})
UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0"}
    | {"GMT+0", "GMT-0", "Etc/Greenwich", "Greenwich", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"}
)


def pick_rollup(plan: TrendsPlan, built: RollupSpec | None) -> TrendsPlan:
    """``plan`` with ``source`` set to the coarsest covering rollup grain, or raw."""
    if built is None or not _covers(plan, built):
        return replace(plan, source=Source())
    for grain in ("day", "hour"):
        if _grain_fits(plan, grain):
            return replace(plan, source=Source("rollup", grain, built))
    return replace(plan, source=Source())


def _covers(plan: TrendsPlan, spec: RollupSpec) -> bool:
    schema = plan.schema
    if (spec.timestamp, spec.event, spec.actor) != (schema.timestamp, schema.event, schema.actor):
        return False
    if plan.actor_override:
        return False
    for s in plan.series:
        if s.math not in ROLLUP_MATHS or (s.math == "unique_actors" and plan.cumulative):
            return False
        if not all(covers_filter(f, plan, spec) for f in s.filters):
            return False
    if not all(covers_filter(f, plan, spec) for f in plan.filters):
        return False
    return all(_holds(name, plan, spec) for name in plan.breakdowns)


def _holds(name: str, plan: TrendsPlan, spec: RollupSpec) -> bool:
    """The rollup has property ``name`` as a breakdown, and it holds single text values."""
    field = resolve_field(plan.schema.mapping, name)
    return (
        field is not None
        and spec.key_of(field.name) is not None
        and not field.array
        and field.type in (FieldType.KEYWORD, FieldType.TEXT)
    )


def covers_filter(f: Filter, plan: TrendsPlan, spec: RollupSpec) -> bool:
    """Whether the rollup's key columns can evaluate ``f`` exactly as raw events would."""
    if isinstance(f, FilterGroup):
        return all(covers_filter(x, plan, spec) for x in (*(f.and_ or []), *(f.or_ or [])))
    if f.operator not in ROLLUP_OPERATORS or not _holds(f.property, plan, spec):
        return False
    values = f.value if isinstance(f.value, list) else [f.value]
    return f.operator in ("is_set", "is_not_set") or all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values
    )


def _grain_fits(plan: TrendsPlan, grain: str) -> bool:
    b = plan.bucketing
    step = timedelta(milliseconds=GRAINS[grain])
    if grain == "day" and (b.sub_day or b.tz.key not in UTC_NAMES):
        return False
    if grain == "hour" and b.interval == "minute":
        return False
    for period in plan.periods:
        if not (_aligned(period.start, step) and _aligned(period.end, step)):
            return False
        if grain == "hour" and not _whole_hour_offsets(plan, period.start, period.end):
            return False
    return True


def _aligned(instant: datetime, step: timedelta) -> bool:
    return (instant - datetime(1970, 1, 1, tzinfo=instant.tzinfo)) % step == timedelta(0)


def _whole_hour_offsets(plan: TrendsPlan, start: datetime, end: datetime) -> bool:
    """The zone's offset is whole hours at both ends and weekly in between (zones change it
    at most a few times a year, never for less than weeks)."""
    tz = plan.bucketing.tz
    probe = start
    while True:
        offset = probe.astimezone(tz).utcoffset() or timedelta(0)
        if offset % timedelta(hours=1):
            return False
        if probe >= end:
            return True
        probe = min(probe + timedelta(days=7), end)

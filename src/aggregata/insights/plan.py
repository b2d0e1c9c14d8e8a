"""Trends requests and their logical plan: what to count, over which buckets, from where.

``parse_trends`` validates a request and resolves everything that needs no IO (math names,
dates, time zone, buckets) into a frozen ``TrendsPlan``. Rewrite passes
(``insights/passes``) then decide *where* to read it from (``source``), and the compilers
turn it into SQL. Nothing here reads a clock or a setting: ``now`` is an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregata.errors import BadRequest, ParsingError
from aggregata.insights.buckets import Bucket, Bucketing, week_start
from aggregata.insights.common import EventSchema, add_local_days, resolve_date_range, timezone
from aggregata.insights.models import Filter, InsightRequest
from aggregata.insights.rollups import RollupSpec

COUNT_MATHS = frozenset({"total"})
UNIQUE_MATHS = frozenset({"unique_actors"})
ROLLING_MATHS: dict[str, int] = {"dau": 1, "wau": 7, "mau": 30}
PROPERTY_MATHS: dict[str, float | None] = {
    "sum": None,
    "avg": None,
    "min": None,
    "max": None,
    "median": 0.5,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
}
PER_ACTOR_MATHS: dict[str, str] = {
    f"{agg}_count_per_actor": agg for agg in ("avg", "min", "max", "median", "p90", "p95", "p99")
}
MATH_ALIASES = {"avg_per_actor": "avg_count_per_actor", "unique": "unique_actors", "count": "total"}
MATHS = frozenset({*COUNT_MATHS, *UNIQUE_MATHS, *ROLLING_MATHS, *PROPERTY_MATHS, *PER_ACTOR_MATHS})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SeriesRequest(BaseModel):
    """One series: an event (None: all events), what to compute, its own filters, a name."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(None, examples=["pageview"])
    math: str = Field("total", examples=["total"])
    math_property: str | None = None
    filters: list[Filter] = Field(default_factory=list)
    name: str | None = Field(None, max_length=100, examples=["A"])


class TrendsRequest(InsightRequest):
    """``POST /v1/insights/trends`` body."""

    series: list[SeriesRequest] = Field(min_length=1, max_length=20)
    interval: str = "day"
    week_start: str = "monday"
    breakdown: list[str] | str | None = None
    breakdown_limit: int = Field(25, ge=1, le=1000)
    compare_to_previous: bool = False
    formula: str | None = Field(None, max_length=1000)
    display: str | None = None
    cumulative: bool = False
    use_rollups: bool = Field(True, description="false: always read raw events (to compare paths).")


@dataclass(frozen=True)
class SeriesPlan:
    """One series resolved: its math is a known name, its label set."""

    index: int
    name: str
    event: str | None
    math: str
    math_property: str | None
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Period:
    """One date range with its buckets (``compare`` is "current" or "previous")."""

    start: datetime
    end: datetime
    buckets: tuple[Bucket, ...]
    compare: str = "current"


@dataclass(frozen=True)
class Source:
    """Where a plan reads: raw events, or a rollup of ``grain`` built with ``spec``."""

    kind: str = "raw"
    grain: str | None = None
    spec: RollupSpec | None = None

    @property
    def label(self) -> str:
        return "raw" if self.kind == "raw" else f"rollup:{self.grain}"


@dataclass(frozen=True)
class TrendsPlan:
    schema: EventSchema
    series: tuple[SeriesPlan, ...]
    bucketing: Bucketing
    periods: tuple[Period, ...]
    filters: tuple[Filter, ...] = ()
    breakdowns: tuple[str, ...] = ()
    breakdown_limit: int = 25
    formula: str | None = None
    cumulative: bool = False
    actor_override: bool = False
    now: datetime | None = None
    source: Source = field(default_factory=Source)


def validate(model: type[BaseModel], body: Any) -> Any:
    """Pydantic validation as a 400 that names the first problem."""
    if not isinstance(body, dict):
        raise ParsingError("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ParsingError(f"invalid [{where}]: {first['msg']}") from None


def resolve_math(math: str) -> str:
    name = MATH_ALIASES.get(math, math)
    if name not in MATHS:
        raise BadRequest(f"unknown math [{math}]; use one of {sorted(MATHS)}")
    return name


def series_plans(series: list[SeriesRequest]) -> tuple[SeriesPlan, ...]:
    out = []
    for i, s in enumerate(series):
        math = resolve_math(s.math)
        if (math in PROPERTY_MATHS) and not s.math_property:
            raise BadRequest(f"series [{i}]: math [{math}] needs [math_property]")
        out.append(SeriesPlan(i, s.name or _letter(i), s.event, math, s.math_property, tuple(s.filters)))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise BadRequest(f"series names must be unique, got {names}")
    return tuple(out)


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"S{i}"


def formula_names(plan: TrendsPlan) -> dict[str, int]:
    """Names a formula may use: each series' letter (A, B, …) and its name if an identifier."""
    names: dict[str, int] = {}
    for s in plan.series:
        names[_letter(s.index)] = s.index
        if _NAME.fullmatch(s.name):
            names[s.name] = s.index
    return names


def parse_trends(req: TrendsRequest, schema: EventSchema, *, now: datetime) -> TrendsPlan:
    """The plan of a trends request (``now``: the request's instant)."""
    tz = timezone(req.timezone)
    bucketing = Bucketing(req.interval, tz, week_start(req.week_start))
    start, end = resolve_date_range(req.date_from, req.date_to, now=now, tz=tz, default_from="-7d")
    if req.date_to is None:
        end = bucketing.end_of(end)  # the bucket holding `now` is shown whole, as PostHog does
    series = series_plans(req.series)
    if bucketing.interval == "minute" and any(s.math in ROLLING_MATHS for s in series):
        raise BadRequest("dau/wau/mau need an interval of hour or coarser")
    bucketing.check_offsets(start, end)
    periods = [Period(start, end, tuple(bucketing.buckets(start, end)))]
    if req.compare_to_previous:
        p_start, p_end = previous_range(start, end, tz)
        periods.append(Period(p_start, p_end, tuple(bucketing.buckets(p_start, p_end)), "previous"))
    breakdowns = [req.breakdown] if isinstance(req.breakdown, str) else list(req.breakdown or [])
    if len(breakdowns) > 3:
        raise BadRequest("at most 3 breakdown properties")
    cumulative = req.cumulative or (req.display or "").lower() in ("cumulative", "actionslinegraphcumulative")
    return TrendsPlan(
        schema=schema,
        series=series,
        bucketing=bucketing,
        periods=tuple(periods),
        filters=tuple(req.filters),
        breakdowns=tuple(breakdowns),
        breakdown_limit=req.breakdown_limit,
        formula=req.formula,
        cumulative=cumulative,
        actor_override=req.actor is not None,
        now=now,
    )


def previous_range(start: datetime, end: datetime, tz: Any) -> tuple[datetime, datetime]:
    """The period just before ``[start, end)``: as many local days when both ends are local
    midnights (so days stay days across DST), else the same duration."""
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    midnights = all(t.time() == datetime.min.time() for t in (local_start, local_end))
    if midnights:
        days = (local_end.date() - local_start.date()).days
        return add_local_days(start, -days, tz), start
    return start - (end - start), start


def rolling_window_start(plan: TrendsPlan, period: Period, days: int) -> datetime:
    """Earliest instant a rolling window of ``days`` ending in ``period`` reaches back to."""
    b = plan.bucketing
    first_unit = b.unit_key(period.start)
    if b.sub_day:
        assert isinstance(first_unit, int)
        return b.unit_start(first_unit) - timedelta(days=days) + timedelta(milliseconds=b.step_ms)
    return add_local_days(b.unit_start(first_unit), -(days - 1), b.tz)

"""``range``, ``date_range`` and ``filters``: buckets defined by conditions, not by a value.

A document can fall into several of these buckets (overlapping ranges, filters that both
match, values of an array in two ranges), so as a *level* the bucket is the unnested list
of the conditions that hold (``_indexes``). When such an aggregation is the one a
statement computes, the planner instead counts each condition in one pass
(``COUNT_IF``, metrics over ``CASE WHEN``): ``conditions`` gives it the same conditions.
Non-overlapping ranges over a single-valued field need neither: a ``CASE`` is the key.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.datemath import DateMathError, resolve
from aggregata.errors import BadRequest
from aggregata.sql.aggs.buckets import (
    DATES,
    NUMBERS,
    BucketContext,
    condition,
    explode,
    missing_fill,
    or_null,
    with_missing,
)
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.aggs.functions import EpochMillis
from aggregata.sql.aggs.scope import lambda_over
from aggregata.sql.query import col, time_zone


@dataclass(frozen=True)
class RangeBucket:
    """One resolved range: bounds as numbers (epoch ms for dates), in response order."""

    key: str | None
    start: float | None
    end: float | None
    index: int


@dataclass(frozen=True)
class RangeInfo:
    buckets: tuple[RangeBucket, ...]
    date: bool
    exclusive: bool = False
    """Each document is in at most one range (single-valued field, ranges do not overlap)."""


@dataclass(frozen=True)
class FiltersInfo:
    keys: tuple[str, ...]
    other: str | None


def _resolve_ranges(agg: Agg, spec: b.Range, date: bool, now: datetime) -> list[RangeBucket]:
    zone = time_zone(spec.time_zone) if isinstance(spec, b.DateRange) else None
    resolved = []
    for i, r in enumerate(spec.ranges):
        bounds: list[float | None] = []
        for value in (r.start, r.end):
            if value is None:
                bounds.append(None)
            elif date:
                try:
                    moment = resolve(value, now=now, tz=zone) if zone else resolve(value, now=now)
                except (DateMathError, ValueError, OverflowError) as exc:
                    raise BadRequest(
                        f"failed to parse range [{value}] of aggregation [{agg.name}]: {exc}"
                    ) from None
                bounds.append(float(int(moment.timestamp() * 1000)))
            else:
                bounds.append(float(value))
        resolved.append(RangeBucket(r.key, bounds[0], bounds[1], i))
    # Elasticsearch reports ranges ordered by (from, to), open ends first/last.
    return sorted(
        resolved,
        key=lambda r: (-math.inf if r.start is None else r.start, math.inf if r.end is None else r.end),
    )


def range_conditions(frame: Frame, agg: Agg, ctx: BucketContext) -> tuple[list[exp.Expr], RangeInfo]:
    """One condition per range (in response order): some value of the document is inside it."""
    spec = agg.spec
    assert isinstance(spec, b.Range)
    date = isinstance(spec, b.DateRange)
    f = frame.scope.field(spec.field, agg.type_name, agg.name, DATES if date else NUMBERS)
    ranges = _resolve_ranges(agg, spec, date, ctx.now)
    value = with_missing(f, col(f.name), missing_fill(f, spec, agg, ctx), array=f.array)

    def inside(r: RangeBucket) -> Callable[[exp.Expr], exp.Expr]:
        lo = None if r.start is None else ctx.params.bind(int(r.start) if date else r.start)
        hi = None if r.end is None else ctx.params.bind(int(r.end) if date else r.end)

        def test(x: exp.Expr) -> exp.Expr:
            number: exp.Expr = EpochMillis(this=x.copy()) if date else x.copy()
            parts: list[exp.Expr] = []
            if lo is not None:
                parts.append(exp.GTE(this=number, expression=lo.copy()))
            if hi is not None:
                parts.append(exp.LT(this=number.copy(), expression=hi.copy()))
            return exp.and_(*parts) if parts else exp.Not(this=exp.Is(this=x.copy(), expression=exp.Null()))

        return test

    def matches(r: RangeBucket) -> exp.Expr:
        if not f.array:
            return inside(r)(value)
        hits = exp.ArrayFilter(this=value.copy(), expression=lambda_over(f, inside(r)))
        return exp.GT(this=exp.ArraySize(this=hits), expression=exp.Literal.number(0))

    info = RangeInfo(tuple(ranges), date, not f.array and not _overlap(ranges))
    return [matches(r) for r in ranges], info


def _overlap(ranges: list[RangeBucket]) -> bool:
    return any(
        prev.end is None or cur.start is None or cur.start < prev.end
        for prev, cur in itertools.pairwise(ranges)
    )


def range_level(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, RangeInfo]:
    conditions, info = range_conditions(frame, agg, ctx)
    if info.exclusive:  # at most one range per document: a CASE is the key
        key = exp.Case(ifs=[exp.If(this=c, true=exp.Literal.number(pos)) for pos, c in enumerate(conditions)])
        frame.where.append(or_null(key))
        frame.keys.append((alias, key.copy()))
        return frame, info
    return explode(frame, alias, _indexes(conditions)), info


def _indexes(conditions: list[exp.Expr]) -> exp.Expr:
    """The positions whose condition holds, as an array (``-1`` marks the others, then dropped)."""
    marks = [
        exp.Case(
            ifs=[exp.If(this=exp.Coalesce(this=c, expressions=[exp.false()]), true=exp.Literal.number(i))],
            default=exp.Literal.number(-1),
        )
        for i, c in enumerate(conditions)
    ]
    x = exp.to_identifier("__x")
    keep = exp.Lambda(
        this=exp.GTE(this=exp.column(x), expression=exp.Literal.number(0)), expressions=[x.copy()]
    )
    return exp.ArrayFilter(this=exp.Array(expressions=marks), expression=keep)


def filters_conditions(frame: Frame, agg: Agg, ctx: BucketContext) -> tuple[list[exp.Expr], FiltersInfo]:
    """One condition per filter (by name), then the ``other`` bucket's: none of them holds."""
    spec = agg.spec
    assert isinstance(spec, b.Filters)
    conditions = [condition(frame, q, ctx) for _, q in spec.filters]
    if spec.other_bucket_key is not None:
        anything = exp.Coalesce(this=exp.or_(*[c.copy() for c in conditions]), expressions=[exp.false()])
        conditions.append(exp.Not(this=anything))
    return conditions, FiltersInfo(tuple(k for k, _ in spec.filters), spec.other_bucket_key)


def filters_level(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, FiltersInfo]:
    conditions, info = filters_conditions(frame, agg, ctx)
    if len(conditions) == 1:
        frame.where.append(conditions[0])
        frame.keys.append((alias, exp.Literal.number(0)))
        return frame, info
    return explode(frame, alias, _indexes(conditions)), info

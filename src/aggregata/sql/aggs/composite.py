"""``composite``: multi-source keys, their sort order, and ``after`` paging as a SQL condition.

Paging is a lexicographic comparison of the key tuple with ``after`` that respects each
source's direction and puts missing values (``missing_bucket``) first in ascending and last
in descending order, as Elasticsearch does. It goes in ``WHERE`` so the engine skips the
pages before it without grouping them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.datemath import DateMathError, parse_date
from aggregata.errors import BadRequest
from aggregata.model.mapping import Field, FieldType
from aggregata.sql.aggs.buckets import NUMBERS, BucketContext, CompositeInfo, numeric_key, terms_key
from aggregata.sql.aggs.dates import DateBuckets, bucket_key
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.aggs.scope import coerce_missing
from aggregata.sql.query import time_zone


@dataclass(frozen=True)
class CompositeKeys:
    info: CompositeInfo
    order: list[exp.Ordered]


def _histogram_key(x: exp.Expr, interval: exp.Expr, offset: exp.Expr) -> exp.Expr:
    shifted = exp.Paren(this=exp.Sub(this=x, expression=offset.copy()))
    div = exp.Div(this=shifted, expression=interval.copy(), typed=False, safe=False)
    return exp.Add(
        this=exp.Mul(this=exp.Floor(this=div), expression=interval.copy()), expression=offset.copy()
    )


def _histogram(interval: exp.Expr, offset: exp.Expr) -> Callable[[exp.Expr], exp.Expr]:
    def key(x: exp.Expr) -> exp.Expr:
        return _histogram_key(x, interval, offset)

    return key


def _dates(rule: DateBuckets, ctx: BucketContext) -> Callable[[exp.Expr], exp.Expr]:
    def key(x: exp.Expr) -> exp.Expr:
        return bucket_key(x, rule, ctx.params)

    return key


def apply_composite(frame: Frame, agg: Agg, prefix: str, ctx: BucketContext) -> tuple[Frame, CompositeKeys]:
    """Add one key column per source (``<prefix>_<i>``), the ``after`` condition and the order."""
    spec = agg.spec
    assert isinstance(spec, b.Composite)
    fields: list[Field] = []
    rules: list[DateBuckets | None] = []
    for i, src in enumerate(spec.sources):
        alias = f"{prefix}_{i}"
        rule = None
        if src.kind == "terms":
            frame, f = terms_key(frame, agg, src, alias, ctx)
        elif src.kind == "histogram":
            assert src.interval is not None
            interval, offset = ctx.params.bind(src.interval), ctx.params.bind(src.offset)
            frame, f = numeric_key(
                frame,
                agg,
                src.field,
                NUMBERS,
                alias,
                ctx,
                _histogram(interval, offset),
                None,
                keep_missing=src.missing_bucket,
            )
        else:
            assert src.date_interval is not None
            rule = DateBuckets(src.date_interval, time_zone(src.time_zone), int(src.offset))
            frame, f = numeric_key(
                frame,
                agg,
                src.field,
                frozenset({FieldType.DATE}),
                alias,
                ctx,
                _dates(rule, ctx),
                None,
                keep_missing=src.missing_bucket,
            )
        fields.append(f)
        rules.append(rule)
    keys = frame.keys[-len(spec.sources) :]
    if spec.after is not None:
        frame.where.append(_after(spec, agg, [e for _, e in keys], fields, rules, ctx))
    order = [
        exp.Ordered(this=e.copy(), desc=src.desc, nulls_first=not src.desc)
        for src, (_, e) in zip(spec.sources, keys, strict=True)
    ]
    return frame, CompositeKeys(CompositeInfo(tuple(fields), tuple(rules)), order)


def _after_value(
    src: b.CompositeSource, f: Field, rule: DateBuckets | None, value: Any, agg: Agg, ctx: BucketContext
) -> Any:
    if value is None:
        return None
    if src.kind == "date_histogram":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        try:
            return int(parse_date(str(value)).timestamp() * 1000)
        except (DateMathError, ValueError) as exc:
            raise BadRequest(f"[after] of aggregation [{agg.name}]: cannot parse [{value}]: {exc}") from None
    if src.kind == "histogram":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequest(f"[after] of aggregation [{agg.name}]: [{src.name}] must be a number")
        return float(value)
    converted = coerce_missing(f, value, agg.name, ctx.now)
    if f.type is FieldType.DATE:
        return int(converted.timestamp() * 1000)
    return converted


def _after(
    spec: b.Composite,
    agg: Agg,
    keys: list[exp.Expr],
    fields: list[Field],
    rules: list[DateBuckets | None],
    ctx: BucketContext,
) -> exp.Expr:
    assert spec.after is not None
    equal: list[exp.Expr] = []
    alternatives: list[exp.Expr] = []
    for src, key, f, rule, (_, raw) in zip(spec.sources, keys, fields, rules, spec.after, strict=True):
        value = _after_value(src, f, rule, raw, agg, ctx)
        is_null = exp.Is(this=key.copy(), expression=exp.Null())
        if value is None:
            greater: exp.Expr = exp.false() if src.desc else exp.Not(this=is_null)
            same: exp.Expr = is_null
        else:
            bound = ctx.params.bind(value)
            node = exp.LT if src.desc else exp.GT
            greater = node(this=key.copy(), expression=bound)
            if src.desc and src.missing_bucket:
                greater = exp.or_(greater, is_null.copy())
            same = exp.EQ(this=key.copy(), expression=bound.copy())
        alternatives.append(exp.and_(*[e.copy() for e in equal], greater) if equal else greater)
        equal.append(same)
    return exp.Paren(this=exp.or_(*alternatives))

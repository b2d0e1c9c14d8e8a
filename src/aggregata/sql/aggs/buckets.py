"""Bucket aggregations → how each narrows the frame and which key column it adds.

``apply_bucket`` takes the frame of the parent bucket and returns the frame of this one
plus what the response shaper needs to know (``*Info``): resolved ranges and their keys,
the date-bucket rule, the field type behind a terms key. Keys are SQL expressions, and
array-valued keys (multi-valued fields, overlapping ranges, filters) are unnested in a
subquery, each value once per document (``LIST_DISTINCT``), which is Elasticsearch's
"a document counts once per bucket".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.aggs.buckets import IncludeExclude
from aggregata.dsl.datemath import DateMathError, resolve
from aggregata.errors import BadRequest
from aggregata.model.mapping import Field, FieldType, Mapping
from aggregata.sql.aggs.dates import DateBuckets, bucket_key
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.aggs.functions import EpochMillis
from aggregata.sql.aggs.scope import VALUE_TYPES, Scope, coerce_missing, is_empty, lambda_over
from aggregata.sql.params import Params
from aggregata.sql.query import QueryContext, col, compile_query, time_zone

NUMBERS = frozenset({FieldType.LONG, FieldType.DOUBLE})
DATES = frozenset({FieldType.DATE})


@dataclass(frozen=True)
class BucketContext:
    """What applying a bucket level needs besides the frame."""

    table: exp.Expr
    mapping: Mapping
    params: Params
    now: datetime


@dataclass(frozen=True)
class TermsInfo:
    field: Field


@dataclass(frozen=True)
class HistogramInfo:
    interval: float
    offset: float
    hard_bounds: tuple[int | None, int | None]


@dataclass(frozen=True)
class DateHistogramInfo:
    rule: DateBuckets
    extended_bounds: tuple[int | None, int | None] | None
    hard_bounds: tuple[int | None, int | None] | None


@dataclass(frozen=True)
class CompositeInfo:
    fields: tuple[Field, ...]
    rules: tuple[DateBuckets | None, ...]


BucketInfo = TermsInfo | HistogramInfo | DateHistogramInfo | CompositeInfo | None
Level = Callable[[Frame, Agg, str, BucketContext], tuple[Frame, Any]]


def or_null(value: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=value, expression=exp.Null()))


def explode(frame: Frame, alias: str, array: exp.Expr) -> Frame:
    """Unnest ``array`` into key column ``alias``: one row per (document, distinct value)."""
    out = frame.materialize([(alias, exp.Explode(this=exp.ArrayDistinct(this=array)))])
    out.keys.append((alias, col(alias)))
    return out


def with_missing(f: Field, value: exp.Expr, fill: exp.Expr | None, *, array: bool) -> exp.Expr:
    if fill is None:
        return value
    if array:
        return exp.Case(ifs=[exp.If(this=is_empty(f), true=exp.Array(expressions=[fill]))], default=value)
    return exp.Coalesce(this=value, expressions=[fill])


def missing_fill(f: Field, spec: Any, agg: Agg, ctx: BucketContext) -> exp.Expr | None:
    missing = getattr(spec, "missing", None)
    if missing is None:
        return None
    return ctx.params.bind(coerce_missing(f, missing, agg.name, ctx.now))


def _filter_values(
    f: Field, include: IncludeExclude | None, exclude: IncludeExclude | None, agg: Agg, ctx: BucketContext
) -> Callable[[exp.Expr], exp.Expr] | None:
    """The include/exclude test of a terms value, or ``None`` when there is none."""
    tests: list[Callable[[exp.Expr], exp.Expr]] = []
    for which, spec in (("include", include), ("exclude", exclude)):
        if spec is None:
            continue
        if spec.pattern is not None:
            if f.type is not FieldType.KEYWORD:
                raise BadRequest(
                    f"[{which}] of aggregation [{agg.name}]: a regular expression needs a keyword field"
                )
            test = _regex_test(ctx.params.bind(f"^(?:{spec.pattern})$"))
        else:
            allowed = [coerce_missing(f, v, agg.name, ctx.now) for v in spec.values or ()]
            test = _in_test([ctx.params.bind(v) for v in dict.fromkeys(allowed)])
        tests.append(test if which == "include" else _negate(test))
    if not tests:
        return None
    return lambda x: exp.and_(*[t(x) for t in tests])


def _regex_test(pattern: exp.Expr) -> Callable[[exp.Expr], exp.Expr]:
    def test(x: exp.Expr) -> exp.Expr:
        return exp.RegexpLike(this=x, expression=pattern.copy())

    return test


def _in_test(values: list[exp.Placeholder]) -> Callable[[exp.Expr], exp.Expr]:
    def test(x: exp.Expr) -> exp.Expr:
        return exp.In(this=x, expressions=[v.copy() for v in values]) if values else exp.false()

    return test


def _negate(test: Callable[[exp.Expr], exp.Expr]) -> Callable[[exp.Expr], exp.Expr]:
    def negated(x: exp.Expr) -> exp.Expr:
        return exp.Not(this=test(x))

    return negated


def terms_key(frame: Frame, agg: Agg, spec: Any, alias: str, ctx: BucketContext) -> tuple[Frame, Field]:
    """Add a terms-like key (``terms`` and composite ``terms`` sources) for ``spec.field``."""
    keep_missing = bool(getattr(spec, "missing_bucket", False))
    f = frame.scope.field(spec.field, "terms", agg.name, VALUE_TYPES)
    convert = (lambda x: EpochMillis(this=x)) if f.type is FieldType.DATE else (lambda x: x)
    fill = missing_fill(f, spec, agg, ctx)
    test = _filter_values(f, getattr(spec, "include", None), getattr(spec, "exclude", None), agg, ctx)
    if test is not None and f.type is FieldType.DATE:
        raise BadRequest(f"include/exclude of aggregation [{agg.name}] is not supported on date fields")
    if not f.array:
        value = with_missing(f, col(f.name), fill, array=False)
        if fill is None and not keep_missing:
            frame.where.append(or_null(col(f.name)))
        if test is not None:
            frame.where.append(test(value))
        frame.keys.append((alias, convert(value)))
        return frame, f
    arr = with_missing(f, col(f.name), fill, array=True)
    if test is not None:
        arr = exp.ArrayFilter(this=arr, expression=lambda_over(f, test))
    if f.type is FieldType.DATE:
        arr = exp.Transform(this=arr, expression=lambda_over(f, convert))
    return explode(frame, alias, arr), f


def _terms(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    frame, f = terms_key(frame, agg, agg.spec, alias, ctx)
    return frame, TermsInfo(f)


def numeric_key(
    frame: Frame,
    agg: Agg,
    field: str,
    allowed: frozenset[FieldType],
    alias: str,
    ctx: BucketContext,
    key: Callable[[exp.Expr], exp.Expr],
    keep: Callable[[exp.Expr], exp.Expr] | None,
    *,
    keep_missing: bool = False,
) -> tuple[Frame, Field]:
    """Add the key ``key(value)`` of a numeric or date field, keeping keys that pass ``keep``."""
    f = frame.scope.field(field, agg.type_name, agg.name, allowed)
    fill = missing_fill(f, agg.spec, agg, ctx)
    if not f.array:
        value = key(with_missing(f, col(f.name), fill, array=False))
        if fill is None and not keep_missing:
            frame.where.append(or_null(col(f.name)))
        if keep is not None:
            frame.where.append(keep(value))
        frame.keys.append((alias, value))
        return frame, f
    arr: exp.Expr = exp.Transform(
        this=with_missing(f, col(f.name), fill, array=True), expression=lambda_over(f, key)
    )
    if keep is not None:
        arr = exp.ArrayFilter(this=arr, expression=lambda_over(f, keep))
    return explode(frame, alias, arr), f


def _between(lo: Any, hi: Any, params: Params) -> Callable[[exp.Expr], exp.Expr] | None:
    parts: list[Callable[[exp.Expr], exp.Expr]] = []
    if lo is not None:
        low = params.bind(lo)
        parts.append(lambda x: exp.GTE(this=x, expression=low.copy()))
    if hi is not None:
        high = params.bind(hi)
        parts.append(lambda x: exp.LTE(this=x, expression=high.copy()))
    return (lambda x: exp.and_(*[p(x) for p in parts])) if parts else None


def histogram_index(value: exp.Expr, interval: exp.Expr, offset: exp.Expr) -> exp.Expr:
    """``FLOOR((value - offset) / interval)`` as an integer bucket index."""
    shifted = exp.Paren(this=exp.Sub(this=value, expression=offset.copy()))
    div = exp.Div(this=shifted, expression=interval.copy(), typed=False, safe=False)
    return exp.Cast(this=exp.Floor(this=div), to=exp.DataType.build("BIGINT"))


def _histogram(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    spec = agg.spec
    assert isinstance(spec, b.Histogram)
    interval, offset = ctx.params.bind(spec.interval), ctx.params.bind(spec.offset)
    lo_idx = hi_idx = None
    if spec.hard_bounds is not None:
        lo, hi = spec.hard_bounds
        lo_idx = None if lo is None else math.ceil(lo / spec.interval)
        hi_idx = None if hi is None else math.floor(hi / spec.interval)
    keep = _between(lo_idx, hi_idx, ctx.params)
    frame, _ = numeric_key(
        frame, agg, spec.field, NUMBERS, alias, ctx, lambda x: histogram_index(x, interval, offset), keep
    )
    return frame, HistogramInfo(spec.interval, spec.offset, (lo_idx, hi_idx))


def date_bounds(
    raw: tuple[Any, Any] | None, agg: Agg, now: datetime, rule: DateBuckets
) -> tuple[int | None, int | None] | None:
    """``extended_bounds``/``hard_bounds`` of a date histogram as epoch ms (date math resolved)."""
    if raw is None:
        return None
    out: list[int | None] = []
    for value in raw:
        if value is None:
            out.append(None)
            continue
        try:
            moment = resolve(value, now=now, tz=rule.zone)
        except (DateMathError, ValueError, OverflowError) as exc:
            raise BadRequest(f"failed to parse bound [{value}] of aggregation [{agg.name}]: {exc}") from None
        out.append(int(moment.timestamp() * 1000))
    return (out[0], out[1])


def _date_histogram(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    spec = agg.spec
    assert isinstance(spec, b.DateHistogram)
    rule = DateBuckets(spec.interval, time_zone(spec.time_zone), spec.offset_ms)
    hard = date_bounds(spec.hard_bounds, agg, ctx.now, rule)
    keep = _between(*hard, ctx.params) if hard else None
    frame, _ = numeric_key(
        frame, agg, spec.field, DATES, alias, ctx, lambda x: bucket_key(x, rule, ctx.params), keep
    )
    return frame, DateHistogramInfo(rule, date_bounds(spec.extended_bounds, agg, ctx.now, rule), hard)


def condition(frame: Frame, query: Any, ctx: BucketContext) -> exp.Expr:
    return compile_query(query, QueryContext(frame.scope.mapping, ctx.params, ctx.now))


def _filter(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    assert isinstance(agg.spec, b.Filter)
    frame.where.append(condition(frame, agg.spec.query, ctx))
    return frame, None


def _missing(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    assert isinstance(agg.spec, b.Missing)
    f = frame.scope.field(
        agg.spec.field, "missing", agg.name, VALUE_TYPES | {FieldType.TEXT, FieldType.GEO_POINT}
    )
    frame.where.append(is_empty(f))
    return frame, None


def _global(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    return Frame(ctx.table.copy(), [], [], frame.scope, frame.counter), None


def _nested(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    spec = agg.spec
    assert isinstance(spec, b.Nested)
    if frame.scope.nested_path is not None:
        raise BadRequest(f"[nested] aggregation [{agg.name}] cannot be inside another nested aggregation")
    f = frame.scope.mapping.get(spec.path)
    if f is None or f.type is not FieldType.NESTED:
        raise BadRequest(f"[nested] nested path [{spec.path}] of aggregation [{agg.name}] is not nested")
    obj = f"__n{next(frame.counter)}"
    unnested = frame.materialize([(obj, exp.Explode(this=col(f.name)))])
    members = list(f.properties or Mapping())
    projected: list[tuple[str, exp.Expr]] = [
        (f"{f.name}.{m.name}", exp.Dot(this=col(obj), expression=exp.to_identifier(m.name, quoted=True)))
        for m in members
    ]
    inner = Mapping(
        {f"{f.name}.{m.name}": Field(f"{f.name}.{m.name}", m.type, m.array, m.dims) for m in members}
    )
    out = unnested.materialize(projected)
    out.scope = Scope(inner, nested_path=f.name)
    return out, None


def _reverse_nested(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, BucketInfo]:
    if frame.scope.nested_path is None:
        raise BadRequest(
            f"Reverse nested aggregation [{agg.name}] can only be used inside a [nested] aggregation"
        )
    assert isinstance(agg.spec, b.ReverseNested)
    if agg.spec.path is not None:
        raise BadRequest(
            f"[reverse_nested] aggregation [{agg.name}]: only the root ([path] unset) is supported"
        )
    keyed = frame.materialize([])
    ids = exp.select(*[col(a) for a, _ in keyed.keys], col("_id")).distinct().from_(keyed.source)
    name = f"__d{next(frame.counter)}"
    joined = exp.select(exp.Star()).from_(ids.subquery(name)).join(ctx.table.copy(), using=["_id"])
    root = Scope(ctx.mapping)
    return Frame(joined.subquery(f"__r{next(frame.counter)}"), [], keyed.keys, root, frame.counter), None


LEVELS: dict[type[Any], Level] = {
    b.Terms: _terms,
    b.Histogram: _histogram,
    b.DateHistogram: _date_histogram,
    b.Filter: _filter,
    b.Missing: _missing,
    b.Global: _global,
    b.Nested: _nested,
    b.ReverseNested: _reverse_nested,
}

"""Bucket aggregations: one frozen spec per type, parsed strictly from the request.

Buckets group documents (by value, interval, range, filter, nested object, ...) and carry
sub-aggregations. Values that need the mapping or the clock (date math in ranges and
bounds, time zones) are kept as written here and resolved by the SQL compiler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from aggregata.dsl.aggs.tree import AggSpec, Reader, Scalar, number_value, register
from aggregata.dsl.query import Query, parse_query


@dataclass(frozen=True)
class OrderKey:
    """One criterion of a bucket order: ``_count``, ``_key`` or a sub-aggregation path."""

    path: str
    desc: bool


DEFAULT_TERMS_ORDER = (OrderKey("_count", True), OrderKey("_key", False))


class BucketSpec(AggSpec):
    is_bucket: ClassVar[bool] = True


@dataclass(frozen=True)
class IncludeExclude:
    """``include``/``exclude`` of ``terms``: a regular expression or exact values."""

    pattern: str | None = None
    values: tuple[Scalar, ...] | None = None


@dataclass(frozen=True)
class Terms(BucketSpec):
    field: str
    size: int = 10
    order: tuple[OrderKey, ...] = DEFAULT_TERMS_ORDER
    min_doc_count: int = 1
    missing: Scalar | None = None
    include: IncludeExclude | None = None
    exclude: IncludeExclude | None = None
    format: str | None = None
    show_term_doc_count_error: bool = False
    type_name: ClassVar[str] = "terms"


@dataclass(frozen=True)
class Histogram(BucketSpec):
    field: str
    interval: float
    offset: float = 0.0
    min_doc_count: int = 0
    extended_bounds: tuple[float | None, float | None] | None = None
    hard_bounds: tuple[float | None, float | None] | None = None
    keyed: bool = False
    missing: Scalar | None = None
    format: str | None = None
    order: tuple[OrderKey, ...] = (OrderKey("_key", False),)
    type_name: ClassVar[str] = "histogram"


CALENDAR_UNITS = {
    "minute": "minute",
    "1m": "minute",
    "hour": "hour",
    "1h": "hour",
    "day": "day",
    "1d": "day",
    "week": "week",
    "1w": "week",
    "month": "month",
    "1M": "month",
    "quarter": "quarter",
    "1q": "quarter",
    "year": "year",
    "1y": "year",
}
FIXED_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"([+-]?)(\d+)(ms|s|m|h|d)")


@dataclass(frozen=True)
class DateInterval:
    """A calendar unit (``month``: lengths vary, time-zone aware) or a fixed length in ms."""

    text: str
    unit: str | None = None
    fixed_ms: int | None = None


@dataclass(frozen=True)
class DateHistogram(BucketSpec):
    field: str
    interval: DateInterval
    time_zone: str | None = None
    offset_ms: int = 0
    format: str | None = None
    min_doc_count: int = 0
    extended_bounds: tuple[Any, Any] | None = None
    hard_bounds: tuple[Any, Any] | None = None
    keyed: bool = False
    missing: Scalar | None = None
    order: tuple[OrderKey, ...] = (OrderKey("_key", False),)
    type_name: ClassVar[str] = "date_histogram"


@dataclass(frozen=True)
class RangeSpec:
    """One range: ``from`` inclusive, ``to`` exclusive, either open."""

    key: str | None
    start: Scalar | None
    end: Scalar | None


@dataclass(frozen=True)
class Range(BucketSpec):
    field: str
    ranges: tuple[RangeSpec, ...]
    keyed: bool = False
    missing: Scalar | None = None
    format: str | None = None
    type_name: ClassVar[str] = "range"


@dataclass(frozen=True)
class DateRange(Range):
    time_zone: str | None = None
    type_name: ClassVar[str] = "date_range"


@dataclass(frozen=True)
class Filter(BucketSpec):
    query: Query
    type_name: ClassVar[str] = "filter"


@dataclass(frozen=True)
class Filters(BucketSpec):
    filters: tuple[tuple[str, Query], ...]
    named: bool
    keyed: bool
    other_bucket_key: str | None = None
    type_name: ClassVar[str] = "filters"


@dataclass(frozen=True)
class Missing(BucketSpec):
    field: str
    type_name: ClassVar[str] = "missing"


@dataclass(frozen=True)
class Global(BucketSpec):
    type_name: ClassVar[str] = "global"


@dataclass(frozen=True)
class Nested(BucketSpec):
    path: str
    type_name: ClassVar[str] = "nested"


@dataclass(frozen=True)
class ReverseNested(BucketSpec):
    path: str | None = None
    type_name: ClassVar[str] = "reverse_nested"


@dataclass(frozen=True)
class CompositeSource:
    """One value source of a ``composite`` key."""

    name: str
    kind: str
    field: str
    desc: bool = False
    missing_bucket: bool = False
    interval: float | None = None
    date_interval: DateInterval | None = None
    time_zone: str | None = None
    offset: float = 0.0
    format: str | None = None


@dataclass(frozen=True)
class Composite(BucketSpec):
    sources: tuple[CompositeSource, ...]
    size: int = 10
    after: tuple[tuple[str, Any], ...] | None = None
    type_name: ClassVar[str] = "composite"


def parse_order(r: Reader, default: tuple[OrderKey, ...]) -> tuple[OrderKey, ...]:
    raw = r.raw("order")
    if raw is None:
        return default
    items = raw if isinstance(raw, list) else [raw]
    keys = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise r.fail('[order] must be an object like {"_count": "desc"} or an array of them')
        for path, direction in item.items():
            if direction not in ("asc", "desc"):
                raise r.fail(f"Unknown order direction [{direction}] for [{path}]: use asc or desc")
            keys.append(OrderKey("_key" if path == "_term" else str(path), direction == "desc"))
    return tuple(keys)


def _include_exclude(r: Reader, key: str) -> IncludeExclude | None:
    raw = r.raw(key)
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            re.compile(raw)
        except re.error as exc:
            raise r.fail(f"[{key}] is not a valid regular expression: {exc}") from None
        return IncludeExclude(pattern=raw)
    if isinstance(raw, list):
        if not all(isinstance(v, (str, int, float, bool)) for v in raw):
            raise r.fail(f"[{key}] must be an array of values")
        return IncludeExclude(values=tuple(raw))
    if isinstance(raw, dict) and "partition" in raw:
        raise r.fail(f"partitioned [{key}] is not supported; use size and composite paging instead")
    raise r.fail(f"[{key}] must be a regular expression string or an array of values")


@register("terms")
def _terms(r: Reader) -> AggSpec:
    r.ignore("shard_size", "shard_min_doc_count", "execution_hint", "collect_mode", "value_type")
    size = r.integer("size", 10, minimum=1)
    return Terms(
        field=r.field(),
        size=size,
        order=parse_order(r, DEFAULT_TERMS_ORDER),
        min_doc_count=r.integer("min_doc_count", 1),
        missing=r.scalar("missing"),
        include=_include_exclude(r, "include"),
        exclude=_include_exclude(r, "exclude"),
        format=r.string("format"),
        show_term_doc_count_error=r.flag("show_term_doc_count_error", False),
    )


def _bounds(r: Reader, key: str, *, numeric: bool) -> tuple[Any, Any] | None:
    raw = r.raw(key)
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"min", "max"}:
        raise r.fail(f"[{key}] must be an object with [min] and/or [max]")
    lo, hi = raw.get("min"), raw.get("max")
    if numeric:
        for bound in (lo, hi):
            if bound is not None and number_value(bound) is None:
                raise r.fail(f"[{key}] bounds must be numbers")
        lo = None if lo is None else number_value(lo)
        hi = None if hi is None else number_value(hi)
        if lo is not None and hi is not None and lo > hi:
            raise r.fail(f"[{key}.min][{lo}] cannot be greater than [{key}.max][{hi}]")
    return (lo, hi)


@register("histogram")
def _histogram(r: Reader) -> AggSpec:
    interval = r.number("interval", positive=True)
    if interval is None:
        raise r.fail("[interval] must be provided")
    offset = r.number("offset", 0.0)
    assert offset is not None
    return Histogram(
        field=r.field(),
        interval=interval,
        offset=offset,
        min_doc_count=r.integer("min_doc_count", 0),
        extended_bounds=_bounds(r, "extended_bounds", numeric=True),
        hard_bounds=_bounds(r, "hard_bounds", numeric=True),
        keyed=r.flag("keyed", False),
        missing=r.scalar("missing"),
        format=r.string("format"),
        order=_bucket_order(r),
    )


def _bucket_order(r: Reader) -> tuple[OrderKey, ...]:
    order = parse_order(r, (OrderKey("_key", False),))
    for key in order:
        if key.path not in ("_key", "_count"):
            raise r.fail(f"ordering by [{key.path}] is not supported here; use _key or _count")
    return order


def parse_date_interval(r: Reader) -> DateInterval:
    calendar = r.string("calendar_interval")
    fixed = r.string("fixed_interval")
    if r.has("interval"):
        raise r.fail(
            "[interval] was removed from date_histogram: use [calendar_interval] or [fixed_interval]"
        )
    if (calendar is None) == (fixed is None):
        raise r.fail("exactly one of [calendar_interval] or [fixed_interval] must be provided")
    if calendar is not None:
        unit = CALENDAR_UNITS.get(calendar)
        if unit is None:
            raise r.fail(f"The supplied interval [{calendar}] could not be parsed as a calendar interval.")
        return DateInterval(calendar, unit=unit)
    assert fixed is not None
    match = _DURATION.fullmatch(fixed)
    if match is None or match.group(1) or int(match.group(2)) == 0:
        raise r.fail(f"The supplied interval [{fixed}] could not be parsed as a fixed interval.")
    return DateInterval(fixed, fixed_ms=int(match.group(2)) * FIXED_UNITS_MS[match.group(3)])


def parse_date_offset(r: Reader) -> int:
    raw = r.raw("offset")
    if raw is None:
        return 0
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        match = _DURATION.fullmatch(raw.strip())
        if match is not None:
            sign = -1 if match.group(1) == "-" else 1
            return sign * int(match.group(2)) * FIXED_UNITS_MS[match.group(3)]
    raise r.fail(f"failed to parse [offset] [{raw}]: use a duration like +6h or -1d")


@register("date_histogram")
def _date_histogram(r: Reader) -> AggSpec:
    return DateHistogram(
        field=r.field(),
        interval=parse_date_interval(r),
        time_zone=r.string("time_zone"),
        offset_ms=parse_date_offset(r),
        format=r.string("format"),
        min_doc_count=r.integer("min_doc_count", 0),
        extended_bounds=_bounds(r, "extended_bounds", numeric=False),
        hard_bounds=_bounds(r, "hard_bounds", numeric=False),
        keyed=r.flag("keyed", False),
        missing=r.scalar("missing"),
        order=_bucket_order(r),
    )


def _ranges(r: Reader, *, numeric: bool) -> tuple[RangeSpec, ...]:
    raw = r.raw("ranges")
    if not isinstance(raw, list) or not raw:
        raise r.fail("[ranges] must be a non-empty array")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"key", "from", "to"}:
            raise r.fail("each range must be an object with [from], [to] and an optional [key]")
        bounds = []
        for name in ("from", "to"):
            value = item.get(name)
            if (value is not None and not isinstance(value, (str, int, float))) or isinstance(value, bool):
                raise r.fail(f"[{name}] of a range must be a number or a string")
            if numeric and value is not None and number_value(value) is None:
                raise r.fail(f"[{name}] of a range must be a number, got [{value}]")
            bounds.append(number_value(value) if numeric and value is not None else value)
        key = item.get("key")
        out.append(RangeSpec(None if key is None else str(key), bounds[0], bounds[1]))
    return tuple(out)


@register("range")
def _range(r: Reader) -> AggSpec:
    return Range(
        field=r.field(),
        ranges=_ranges(r, numeric=True),
        keyed=r.flag("keyed", False),
        missing=r.scalar("missing"),
        format=r.string("format"),
    )


@register("date_range")
def _date_range(r: Reader) -> AggSpec:
    return DateRange(
        field=r.field(),
        ranges=_ranges(r, numeric=False),
        keyed=r.flag("keyed", False),
        missing=r.scalar("missing"),
        format=r.string("format"),
        time_zone=r.string("time_zone"),
    )


@register("filter")
def _filter(r: Reader) -> AggSpec:
    query = parse_query(r.body)
    r.seen.update(r.body)
    return Filter(query)


@register("filters")
def _filters(r: Reader) -> AggSpec:
    raw = r.raw("filters")
    named = isinstance(raw, dict)
    if named:
        assert isinstance(raw, dict)
        # Elasticsearch orders named filters by name.
        filters = tuple((str(k), parse_query(v)) for k, v in sorted(raw.items()))
    elif isinstance(raw, list):
        filters = tuple((str(i), parse_query(v)) for i, v in enumerate(raw))
    else:
        raise r.fail("[filters] must be an object of named queries or an array of queries")
    other_key = r.string("other_bucket_key")
    other = r.flag("other_bucket", other_key is not None)
    return Filters(
        filters=filters,
        named=named,
        keyed=r.flag("keyed", named),
        other_bucket_key=(other_key or "_other_") if other else None,
    )


@register("missing")
def _missing(r: Reader) -> AggSpec:
    return Missing(r.field())


@register("global")
def _global(r: Reader) -> AggSpec:
    return Global()


@register("nested")
def _nested(r: Reader) -> AggSpec:
    path = r.string("path", required=True)
    assert path is not None
    return Nested(path)


@register("reverse_nested")
def _reverse_nested(r: Reader) -> AggSpec:
    return ReverseNested(r.string("path"))


_SOURCE_KINDS = ("terms", "histogram", "date_histogram")


def _composite_source(r: Reader, item: Any) -> CompositeSource:
    if not isinstance(item, dict) or len(item) != 1:
        raise r.fail("each of [sources] must be an object with one named source")
    ((name, body),) = item.items()
    if not isinstance(body, dict) or len(body) != 1:
        raise r.fail(f"source [{name}] must name one of {list(_SOURCE_KINDS)}")
    ((kind, spec),) = body.items()
    if kind not in _SOURCE_KINDS:
        raise r.fail(f"invalid source type [{kind}] for source [{name}]: use one of {list(_SOURCE_KINDS)}")
    s = Reader(kind, f"{r.name}.{name}", spec)
    s.ignore("missing_order", "value_type")
    order = s.string("order", "asc")
    if order not in ("asc", "desc"):
        raise s.fail(f"Unknown order direction [{order}]")
    common: dict[str, Any] = {
        "name": str(name),
        "kind": kind,
        "field": s.field(),
        "desc": order == "desc",
        "missing_bucket": s.flag("missing_bucket", False),
        "format": s.string("format"),
    }
    if kind == "histogram":
        common["interval"] = s.number("interval", positive=True)
        if common["interval"] is None:
            raise s.fail("[interval] must be provided")
        common["offset"] = s.number("offset", 0.0)
    elif kind == "date_histogram":
        common["date_interval"] = parse_date_interval(s)
        common["time_zone"] = s.string("time_zone")
        common["offset"] = float(parse_date_offset(s))
    s.done()
    return CompositeSource(**common)


@register("composite")
def _composite(r: Reader) -> AggSpec:
    raw = r.raw("sources")
    if not isinstance(raw, list) or not raw:
        raise r.fail("[sources] must be a non-empty array")
    sources = tuple(_composite_source(r, item) for item in raw)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise r.fail("source names must be unique")
    after = r.raw("after")
    if after is not None:
        if not isinstance(after, dict) or set(after) != set(names):
            raise r.fail(f"[after] must be an object with exactly the source names {names}")
        after = tuple((n, after[n]) for n in names)
    return Composite(sources=sources, size=r.integer("size", 10, minimum=1), after=after)

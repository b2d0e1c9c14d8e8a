"""Bucket aggregations: one frozen spec per type, parsed strictly from the request.

Buckets group documents (by value, interval, range, filter, nested object, ...) and carry
sub-aggregations. Values that need the mapping or the clock (date math in ranges and
bounds, time zones) are kept as written here and resolved by the SQL compiler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Self

from aggregata.dsl.aggs import params as p
from aggregata.dsl.aggs.params import AggSpec, Reader, Scalar, number_value
from aggregata.dsl.query import Query, parse_query


@dataclass(frozen=True)
class OrderKey:
    """One criterion of a bucket order: ``_count``, ``_key`` or a sub-aggregation path."""

    path: str
    desc: bool


DEFAULT_TERMS_ORDER = (OrderKey("_count", True), OrderKey("_key", False))
KEY_ORDER = (OrderKey("_key", False),)


class BucketSpec(AggSpec):
    is_bucket: ClassVar[bool] = True


@dataclass(frozen=True)
class IncludeExclude:
    """``include``/``exclude`` of ``terms``: a regular expression or exact values."""

    pattern: str | None = None
    values: tuple[Scalar, ...] | None = None


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
class RangeSpec:
    """One range: ``from`` inclusive, ``to`` exclusive, either open."""

    key: str | None
    start: Scalar | None
    end: Scalar | None


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


# -- readers of the parameters that need more than a type check --------------------------------


def parse_order(r: Reader, key: str) -> tuple[OrderKey, ...] | None:
    raw = r.raw(key)
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    keys = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise r.fail(f'[{key}] must be an object like {{"_count": "desc"}} or an array of them')
        for path, direction in item.items():
            if direction not in ("asc", "desc"):
                raise r.fail(f"Unknown order direction [{direction}] for [{path}]: use asc or desc")
            keys.append(OrderKey("_key" if path == "_term" else str(path), direction == "desc"))
    return tuple(keys)


def _bucket_order(r: Reader, key: str) -> tuple[OrderKey, ...] | None:
    order = parse_order(r, key)
    for criterion in order or ():
        if criterion.path not in ("_key", "_count"):
            raise r.fail(f"ordering by [{criterion.path}] is not supported here; use _key or _count")
    return order


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


_numeric_bounds = partial(_bounds, numeric=True)
_date_bounds = partial(_bounds, numeric=False)


def parse_date_interval(r: Reader, key: str) -> DateInterval:
    """``calendar_interval`` or ``fixed_interval``; ``key`` (``interval``) is the removed form."""
    calendar = r.string("calendar_interval")
    fixed = r.string("fixed_interval")
    if r.has(key):
        raise r.fail(f"[{key}] was removed from date_histogram: use [calendar_interval] or [fixed_interval]")
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


def parse_date_offset(r: Reader, key: str) -> int:
    raw = r.raw(key)
    if raw is None:
        return 0
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        match = _DURATION.fullmatch(raw.strip())
        if match is not None:
            sign = -1 if match.group(1) == "-" else 1
            return sign * int(match.group(2)) * FIXED_UNITS_MS[match.group(3)]
    raise r.fail(f"failed to parse [{key}] [{raw}]: use a duration like +6h or -1d")


def _ranges(r: Reader, key: str, *, numeric: bool) -> tuple[RangeSpec, ...]:
    raw = r.raw(key)
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"[{key}] must be a non-empty array")
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
        range_key = item.get("key")
        out.append(RangeSpec(None if range_key is None else str(range_key), bounds[0], bounds[1]))
    return tuple(out)


_numeric_ranges = partial(_ranges, numeric=True)
_date_ranges = partial(_ranges, numeric=False)  # bounds are date math, resolved by the compiler


def _body_query(r: Reader, key: str) -> Query:
    """The whole body is the query (``filter``)."""
    query = parse_query(r.body)
    r.seen.update(r.body)
    return query


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
        common["interval"] = s.number("interval", positive=True, required=True)
        common["offset"] = s.number("offset", 0.0)
    elif kind == "date_histogram":
        common["date_interval"] = parse_date_interval(s, "interval")
        common["time_zone"] = s.string("time_zone")
        common["offset"] = float(parse_date_offset(s, "offset"))
    s.done()
    return CompositeSource(**common)


def _sources(r: Reader, key: str) -> tuple[CompositeSource, ...]:
    raw = r.raw(key)
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"[{key}] must be a non-empty array")
    sources = tuple(_composite_source(r, item) for item in raw)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise r.fail("source names must be unique")
    return sources


def _after(r: Reader, key: str) -> tuple[tuple[str, Any], ...] | None:
    after = r.raw(key)
    if after is None:
        return None
    names = [s.name for s in r.parsed["sources"]]
    if not isinstance(after, dict) or set(after) != set(names):
        raise r.fail(f"[{key}] must be an object with exactly the source names {names}")
    return tuple((n, after[n]) for n in names)


# -- the bucket aggregations -------------------------------------------------------------------


class Terms(
    BucketSpec,
    type_name="terms",
    ignore=("shard_size", "shard_min_doc_count", "execution_hint", "collect_mode", "value_type"),
):
    field: str = p.field_name()
    size: int = p.integer(default=10, minimum=1, first=True)
    order: tuple[OrderKey, ...] = p.param(parse_order, default=DEFAULT_TERMS_ORDER)
    min_doc_count: int = p.integer(default=1)
    missing: Scalar | None = p.scalar(default=None)
    include: IncludeExclude | None = p.param(_include_exclude, default=None)
    exclude: IncludeExclude | None = p.param(_include_exclude, default=None)
    format: str | None = p.string(default=None)
    show_term_doc_count_error: bool = p.flag(default=False)


class Histogram(BucketSpec, type_name="histogram"):
    field: str = p.field_name()
    interval: float = p.number(positive=True, first=True)
    offset: float = p.number(default=0.0, first=True)
    min_doc_count: int = p.integer(default=0)
    extended_bounds: tuple[float | None, float | None] | None = p.param(_numeric_bounds, default=None)
    hard_bounds: tuple[float | None, float | None] | None = p.param(_numeric_bounds, default=None)
    keyed: bool = p.flag(default=False)
    missing: Scalar | None = p.scalar(default=None)
    format: str | None = p.string(default=None)
    order: tuple[OrderKey, ...] = p.param(_bucket_order, default=KEY_ORDER)


class DateHistogram(BucketSpec, type_name="date_histogram"):
    field: str = p.field_name()
    interval: DateInterval = p.param(parse_date_interval)
    time_zone: str | None = p.string(default=None)
    offset_ms: int = p.param(parse_date_offset, key="offset", default=0)
    format: str | None = p.string(default=None)
    min_doc_count: int = p.integer(default=0)
    extended_bounds: tuple[Any, Any] | None = p.param(_date_bounds, default=None)
    hard_bounds: tuple[Any, Any] | None = p.param(_date_bounds, default=None)
    keyed: bool = p.flag(default=False)
    missing: Scalar | None = p.scalar(default=None)
    order: tuple[OrderKey, ...] = p.param(_bucket_order, default=KEY_ORDER)


class Range(BucketSpec, type_name="range"):
    field: str = p.field_name()
    ranges: tuple[RangeSpec, ...] = p.param(_numeric_ranges)
    keyed: bool = p.flag(default=False)
    missing: Scalar | None = p.scalar(default=None)
    format: str | None = p.string(default=None)


class DateRange(Range, type_name="date_range"):
    ranges: tuple[RangeSpec, ...] = p.param(_date_ranges)
    time_zone: str | None = p.string(default=None)


class Filter(BucketSpec, type_name="filter"):
    query: Query = p.param(_body_query)


class Filters(BucketSpec, type_name="filters"):
    filters: tuple[tuple[str, Query], ...]
    named: bool
    keyed: bool
    other_bucket_key: str | None = None

    @classmethod
    def parse(cls, r: Reader) -> Self:
        """``keyed`` defaults to whether the filters are named, ``other_bucket`` to whether it has a key."""
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
        return cls(
            filters=filters,
            named=named,
            keyed=r.flag("keyed", named),
            other_bucket_key=(other_key or "_other_") if other else None,
        )


class Missing(BucketSpec, type_name="missing"):
    field: str = p.field_name()


class Global(BucketSpec, type_name="global"): ...


class Nested(BucketSpec, type_name="nested"):
    path: str = p.string()


class ReverseNested(BucketSpec, type_name="reverse_nested"):
    path: str | None = p.string(default=None)


class Composite(BucketSpec, type_name="composite"):
    sources: tuple[CompositeSource, ...] = p.param(_sources, first=True)
    size: int = p.integer(default=10, minimum=1)
    after: tuple[tuple[str, Any], ...] | None = p.param(_after, default=None, first=True)

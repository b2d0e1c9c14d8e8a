"""Metric aggregations: one frozen spec per type, parsed strictly from the request.

Metrics compute numbers over a bucket's documents; they take no sub-aggregations. Every
field-based metric accepts ``missing`` (the value a document without the field counts as)
and ``format`` (how ``value_as_string`` renders), as in Elasticsearch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aggregata.dsl.aggs.tree import AggSpec, Reader, Scalar, number_value, register
from aggregata.dsl.search import SortKey, SourceFilter, _parse_sort, _parse_source

DEFAULT_PERCENTS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
DEFAULT_PRECISION_THRESHOLD = 3000
MAX_PRECISION_THRESHOLD = 40_000
"""Elasticsearch caps ``precision_threshold`` here; larger values behave like it."""
MAX_TOP_HITS = 100
"""Elasticsearch's default ``index.max_inner_result_window``."""


@dataclass(frozen=True)
class FieldMetric(AggSpec):
    """Fields every value-source metric shares."""

    field: str
    missing: Scalar | None = None
    format: str | None = None


@dataclass(frozen=True)
class SimpleMetric(FieldMetric):
    """``avg``, ``sum``, ``min``, ``max`` and ``value_count``: one ``value``."""


@dataclass(frozen=True)
class Avg(SimpleMetric):
    type_name: ClassVar[str] = "avg"


@dataclass(frozen=True)
class Sum(SimpleMetric):
    type_name: ClassVar[str] = "sum"


@dataclass(frozen=True)
class Min(SimpleMetric):
    type_name: ClassVar[str] = "min"


@dataclass(frozen=True)
class Max(SimpleMetric):
    type_name: ClassVar[str] = "max"


@dataclass(frozen=True)
class ValueCount(SimpleMetric):
    type_name: ClassVar[str] = "value_count"


@dataclass(frozen=True)
class Stats(FieldMetric):
    type_name: ClassVar[str] = "stats"


@dataclass(frozen=True)
class ExtendedStats(FieldMetric):
    sigma: float = 2.0
    type_name: ClassVar[str] = "extended_stats"


@dataclass(frozen=True)
class Cardinality(FieldMetric):
    precision_threshold: int = DEFAULT_PRECISION_THRESHOLD
    type_name: ClassVar[str] = "cardinality"


@dataclass(frozen=True)
class Percentiles(FieldMetric):
    percents: tuple[float, ...] = DEFAULT_PERCENTS
    keyed: bool = True
    type_name: ClassVar[str] = "percentiles"


@dataclass(frozen=True)
class PercentileRanks(FieldMetric):
    values: tuple[float, ...] = ()
    keyed: bool = True
    type_name: ClassVar[str] = "percentile_ranks"


@dataclass(frozen=True)
class MedianAbsoluteDeviation(FieldMetric):
    type_name: ClassVar[str] = "median_absolute_deviation"


@dataclass(frozen=True)
class TopHits(AggSpec):
    size: int = 3
    offset: int = 0
    sort: tuple[SortKey, ...] = ()
    source: SourceFilter = field(default_factory=SourceFilter)
    type_name: ClassVar[str] = "top_hits"


def _field_args(r: Reader) -> dict[str, Any]:
    r.ignore("value_type")
    return {"field": r.field(), "missing": r.scalar("missing"), "format": r.string("format")}


def _simple(cls: type[SimpleMetric]) -> None:
    @register(cls.type_name)
    def parse(r: Reader) -> AggSpec:
        return cls(**_field_args(r))


for _cls in (Avg, Sum, Min, Max, ValueCount):
    _simple(_cls)


@register("stats")
def _stats(r: Reader) -> AggSpec:
    return Stats(**_field_args(r))


@register("extended_stats")
def _extended_stats(r: Reader) -> AggSpec:
    sigma = r.number("sigma", 2.0)
    assert sigma is not None
    if sigma < 0:
        raise r.fail(f"[sigma] must be greater than or equal to 0. Found [{sigma}]")
    return ExtendedStats(**_field_args(r), sigma=sigma)


@register("cardinality")
def _cardinality(r: Reader) -> AggSpec:
    r.ignore("rehash", "execution_hint")
    threshold = r.integer("precision_threshold", DEFAULT_PRECISION_THRESHOLD)
    return Cardinality(**_field_args(r), precision_threshold=min(threshold, MAX_PRECISION_THRESHOLD))


def _method(r: Reader) -> None:
    """``tdigest``/``hdr`` tune Elasticsearch's estimators; values here are exact."""
    for key in ("tdigest", "hdr"):
        value = r.raw(key)
        if value is not None and not isinstance(value, dict):
            raise r.fail(f"[{key}] must be an object")


def _numbers(r: Reader, key: str, default: tuple[float, ...] | None) -> tuple[float, ...]:
    raw = r.raw(key)
    if raw is None:
        if default is None:
            raise r.fail(f"[{key}] must be provided")
        return default
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"[{key}] must be a non-empty array of numbers")
    out = []
    for item in raw:
        number = number_value(item)
        if number is None:
            raise r.fail(f"[{key}] must contain only numbers, got {item!r}")
        out.append(number)
    return tuple(out)


@register("percentiles")
def _percentiles(r: Reader) -> AggSpec:
    _method(r)
    percents = _numbers(r, "percents", DEFAULT_PERCENTS)
    for p in percents:
        if not 0 <= p <= 100:
            raise r.fail(f"percent must be in [0,100], got [{p}]")
    return Percentiles(**_field_args(r), percents=percents, keyed=r.flag("keyed", True))


@register("percentile_ranks")
def _percentile_ranks(r: Reader) -> AggSpec:
    _method(r)
    values = _numbers(r, "values", None)
    return PercentileRanks(**_field_args(r), values=values, keyed=r.flag("keyed", True))


@register("median_absolute_deviation")
def _mad(r: Reader) -> AggSpec:
    r.ignore("compression", "execution_hint")
    return MedianAbsoluteDeviation(**_field_args(r))


@register("top_hits")
def _top_hits(r: Reader) -> AggSpec:
    size = r.integer("size", 3)
    offset = r.integer("from", 0)
    if size + offset > MAX_TOP_HITS:
        raise r.fail(
            f"Top hits result window is too large, the top hits aggregator [{r.name}]'s from + size must be"
            f" less than or equal to: [{MAX_TOP_HITS}] but was [{size + offset}]"
        )
    sort = r.raw("sort")
    if isinstance(sort, (str, dict)):
        sort = [sort]
    if sort is not None and not isinstance(sort, list):
        raise r.fail("[sort] must be a string, an object or an array")
    r.ignore("version", "seq_no_primary_term", "explain", "track_scores")
    return TopHits(size=size, offset=offset, sort=_parse_sort(sort), source=_parse_source(r.raw("_source")))

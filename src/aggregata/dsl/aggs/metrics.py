"""Metric aggregations: one frozen spec per type, parsed strictly from the request.

Metrics compute numbers over a bucket's documents; they take no sub-aggregations. Every
field-based metric accepts ``missing`` (the value a document without the field counts as)
and ``format`` (how ``value_as_string`` renders), as in Elasticsearch.
"""

from __future__ import annotations

from typing import Self

from aggregata.dsl.aggs import params as p
from aggregata.dsl.aggs.params import AggSpec, Reader, Scalar, number_value
from aggregata.dsl.search import SortKey, SourceFilter, _parse_sort, _parse_source

DEFAULT_PERCENTS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
DEFAULT_PRECISION_THRESHOLD = 3000
MAX_PRECISION_THRESHOLD = 40_000
"""Elasticsearch caps ``precision_threshold`` here; larger values behave like it."""
MAX_TOP_HITS = 100
"""Elasticsearch's default ``index.max_inner_result_window``."""


# -- readers of the parameters that need more than a type check --------------------------------


def _sigma(r: Reader, key: str) -> float | None:
    sigma = r.number(key)
    if sigma is not None and sigma < 0:
        raise r.fail(f"[{key}] must be greater than or equal to 0. Found [{sigma}]")
    return sigma


def _precision_threshold(r: Reader, key: str) -> int:
    return min(r.integer(key, DEFAULT_PRECISION_THRESHOLD), MAX_PRECISION_THRESHOLD)


def _numbers(r: Reader, key: str) -> tuple[float, ...]:
    raw = r.raw(key)
    if raw is None:
        raise r.fail(f"[{key}] must be provided")
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"[{key}] must be a non-empty array of numbers")
    out = []
    for item in raw:
        number = number_value(item)
        if number is None:
            raise r.fail(f"[{key}] must contain only numbers, got {item!r}")
        out.append(number)
    return tuple(out)


def _percents(r: Reader, key: str) -> tuple[float, ...] | None:
    if r.raw(key) is None:
        return None
    percents = _numbers(r, key)
    for percent in percents:
        if not 0 <= percent <= 100:
            raise r.fail(f"percent must be in [0,100], got [{percent}]")
    return percents


def _top_hits_from(r: Reader, key: str) -> int:
    offset = r.integer(key, 0)
    size: int = r.parsed["size"]
    if size + offset > MAX_TOP_HITS:
        raise r.fail(
            f"Top hits result window is too large, the top hits aggregator [{r.name}]'s from + size must be"
            f" less than or equal to: [{MAX_TOP_HITS}] but was [{size + offset}]"
        )
    return offset


def _top_hits_sort(r: Reader, key: str) -> tuple[SortKey, ...]:
    sort = r.raw(key)
    if isinstance(sort, (str, dict)):
        sort = [sort]
    if sort is not None and not isinstance(sort, list):
        raise r.fail(f"[{key}] must be a string, an object or an array")
    return _parse_sort(sort)


# -- the metrics -------------------------------------------------------------------------------


class FieldMetric(AggSpec, ignore=("value_type",)):
    """Fields every value-source metric shares."""

    field: str = p.field_name()
    missing: Scalar | None = p.scalar(default=None)
    format: str | None = p.string(default=None)


class SimpleMetric(FieldMetric):
    """``avg``, ``sum``, ``min``, ``max`` and ``value_count``: one ``value``."""


class Avg(SimpleMetric, type_name="avg"): ...


class Sum(SimpleMetric, type_name="sum"): ...


class Min(SimpleMetric, type_name="min"): ...


class Max(SimpleMetric, type_name="max"): ...


class ValueCount(SimpleMetric, type_name="value_count"): ...


class Stats(FieldMetric, type_name="stats"): ...


class ExtendedStats(FieldMetric, type_name="extended_stats"):
    sigma: float = p.param(_sigma, default=2.0, first=True)


class Cardinality(FieldMetric, type_name="cardinality", ignore=("rehash", "execution_hint")):
    precision_threshold: int = p.param(_precision_threshold, default=DEFAULT_PRECISION_THRESHOLD, first=True)


class PercentileMetric(FieldMetric):
    """``percentiles`` and ``percentile_ranks``."""

    @classmethod
    def parse(cls, r: Reader) -> Self:
        """``tdigest``/``hdr`` tune Elasticsearch's estimators; values here are exact."""
        for key in ("tdigest", "hdr"):
            value = r.raw(key)
            if value is not None and not isinstance(value, dict):
                raise r.fail(f"[{key}] must be an object")
        return super().parse(r)


class Percentiles(PercentileMetric, type_name="percentiles"):
    percents: tuple[float, ...] = p.param(_percents, default=DEFAULT_PERCENTS, first=True)
    keyed: bool = p.flag(default=True)


class PercentileRanks(PercentileMetric, type_name="percentile_ranks"):
    # Required in a request (the reader says so); the default only lets it follow ``format``.
    values: tuple[float, ...] = p.param(_numbers, default=(), first=True)
    keyed: bool = p.flag(default=True)


class MedianAbsoluteDeviation(
    FieldMetric, type_name="median_absolute_deviation", ignore=("compression", "execution_hint")
): ...


class TopHits(
    AggSpec,
    type_name="top_hits",
    ignore=("version", "seq_no_primary_term", "explain", "track_scores"),
):
    size: int = p.integer(default=3)
    offset: int = p.param(_top_hits_from, key="from", default=0)
    sort: tuple[SortKey, ...] = p.param(_top_hits_sort, default=())
    source: SourceFilter = p.param(
        lambda r, key: _parse_source(r.raw(key)), key="_source", default_factory=SourceFilter
    )

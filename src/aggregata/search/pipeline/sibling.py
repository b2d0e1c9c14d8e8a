"""Sibling pipelines: one metric over the buckets of a multi-bucket aggregation next to them.

They port Elasticsearch's ``BucketMetricsPipelineAggregator`` family: the path leads
(possibly through single-bucket aggregations or one bucket picked by ``agg['key']``) to a
multi-bucket aggregation, every bucket's value is resolved under the gap policy, and
gaps/missing values are left out. Output shapes are ES's, including its empty cases:
``min_bucket`` over nothing is ``{"value": null, "keys": []}``, ``sum_bucket`` is 0.0,
``stats_bucket`` has ``count: 0`` and ``sum: 0.0``.

``percentiles_bucket`` is ES's nearest-rank: the values are sorted and percentile ``p`` is
``sorted[round_half_up(p / 100 * (n - 1))]`` — no interpolation, always an input value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aggregata.errors import BadRequest
from aggregata.search.pipeline.base import Body, SiblingPipeline
from aggregata.search.pipeline.paths import (
    JSON,
    BucketsPath,
    GapPolicy,
    buckets_of,
    finite,
    is_multi_bucket,
    is_single_bucket,
    java_double,
    key_as_string,
    resolve_bucket_value,
)

SIBLING_TYPES = frozenset(
    {
        "avg_bucket",
        "sum_bucket",
        "min_bucket",
        "max_bucket",
        "stats_bucket",
        "extended_stats_bucket",
        "percentiles_bucket",
    }
)
DEFAULT_PERCENTS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)


def collect(container: JSON, path: BucketsPath, gap: GapPolicy) -> list[tuple[str, float]]:
    """The ``(key_as_string, value)`` of every bucket with a value, in bucket order."""
    elements = path.elements
    i = 0
    agg = container.get(elements[0].name)
    while isinstance(agg, dict) and i + 1 < len(elements):
        element = elements[i]
        if is_multi_bucket(agg):
            wanted = element.bucket_key
            if wanted is None:
                break
            match = [b for k, b in buckets_of(agg) if key_as_string(k, b) == wanted]
            if not match:
                return []
            agg = match[0]
        elif not is_single_bucket(agg):
            break
        i += 1
        agg = agg.get(elements[i].name)
    if not isinstance(agg, dict) or not is_multi_bucket(agg):
        if agg is None:
            return []
        raise BadRequest(
            f"buckets_path [{path.text}] must lead to a multi-bucket aggregation, "
            f"but [{elements[i].name}] is not one"
        )
    head = elements[i]
    rest = [x for x in (head.key, head.metric) if x is not None]
    rest += BucketsPath(path.text, elements[i + 1 :]).strings
    out: list[tuple[str, float]] = []
    for dict_key, bucket in buckets_of(agg):
        value = resolve_bucket_value(bucket, rest, gap, head.name, dict_key)
        if value is not None and not math.isnan(value):
            out.append((key_as_string(dict_key, bucket), value))
    return out


def _sum(values: list[float]) -> float:
    total = 0.0
    for v in values:  # left to right, like Java's loop (Python 3.12's sum() compensates)
        total += v
    return total


def stats(values: list[float]) -> JSON:
    """``InternalStats`` rendering: nulls and ``sum: 0.0`` when nothing was collected."""
    if not values:
        return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
    total = _sum(values)
    return {
        "count": len(values),
        "min": finite(min(values)),
        "max": finite(max(values)),
        "avg": finite(total / len(values)),
        "sum": finite(total),
    }


def _nonneg(x: float) -> float:
    return 0.0 if x < 0 else x


def extended_stats(values: list[float], sigma: float) -> JSON:
    """``InternalExtendedStats`` rendering (population and sampling variants, bounds)."""
    out = stats(values)
    names = ("upper", "lower", "upper_population", "lower_population", "upper_sampling", "lower_sampling")
    if not values:
        out.update(
            dict.fromkeys(("sum_of_squares", "variance", "variance_population", "variance_sampling"), None)
        )
        out.update(
            dict.fromkeys(("std_deviation", "std_deviation_population", "std_deviation_sampling"), None)
        )
        out["std_deviation_bounds"] = dict.fromkeys(names, None)
        return out
    n = len(values)
    total = _sum(values)
    sum_sq = _sum([v * v for v in values])
    avg = total / n
    var_pop = _nonneg((sum_sq - total * total / n) / n)
    var_samp = _nonneg((sum_sq - total * total / n) / (n - 1)) if n > 1 else math.nan
    sd_pop, sd_samp = math.sqrt(var_pop), math.sqrt(var_samp) if n > 1 else math.nan
    out.update(
        sum_of_squares=finite(sum_sq),
        variance=finite(var_pop),
        variance_population=finite(var_pop),
        variance_sampling=finite(var_samp),
        std_deviation=finite(sd_pop),
        std_deviation_population=finite(sd_pop),
        std_deviation_sampling=finite(sd_samp),
    )
    pop = (avg + sd_pop * sigma, avg - sd_pop * sigma)
    bounds = (*pop, *pop, avg + sd_samp * sigma, avg - sd_samp * sigma)
    out["std_deviation_bounds"] = {k: finite(v) for k, v in zip(names, bounds, strict=True)}
    return out


def java_round_index(x: float) -> int:
    """``(int) Math.round(x)`` for the non-negative indexes used here: half rounds up."""
    return math.floor(x + 0.5)


def percentiles(values: list[float], percents: tuple[float, ...], keyed: bool) -> JSON:
    ordered = sorted(values)
    picked = [
        ordered[java_round_index(p / 100.0 * (len(ordered) - 1))] if ordered else math.nan for p in percents
    ]
    if keyed:
        return {"values": {java_double(p): finite(v) for p, v in zip(percents, picked, strict=True)}}
    return {"values": [{"key": p, "value": finite(v)} for p, v in zip(percents, picked, strict=True)]}


@dataclass(frozen=True)
class BucketMetric(SiblingPipeline):
    path: BucketsPath
    gap: GapPolicy
    sigma: float = 2.0
    percents: tuple[float, ...] = DEFAULT_PERCENTS
    keyed: bool = True

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return (self.path,)

    def compute(self, container: JSON) -> JSON:
        pairs = collect(container, self.path, self.gap)
        values = [v for _, v in pairs]
        if self.type == "avg_bucket":
            return {"value": finite(_sum(values) / len(values)) if values else None}
        if self.type == "sum_bucket":
            return {"value": finite(_sum(values))}
        if self.type in ("min_bucket", "max_bucket"):
            best = (min if self.type == "min_bucket" else max)(values, default=math.inf)
            return {"value": finite(best), "keys": [k for k, v in pairs if v == best]}
        if self.type == "stats_bucket":
            return stats(values)
        if self.type == "extended_stats_bucket":
            return extended_stats(values, self.sigma)
        return percentiles(values, self.percents, self.keyed)


def _percents(b: Body) -> tuple[float, ...]:
    raw = b.raw("percents")
    if raw is None:
        return DEFAULT_PERCENTS
    if not isinstance(raw, list) or not raw:
        raise b.fail("[percents] must be a non-empty array of numbers")
    out: list[float] = []
    for p in raw:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 100.0:
            raise BadRequest("percents must only contain non-null doubles from 0.0-100.0 inclusive")
        out.append(float(p))
    return tuple(out)


def parse_sibling(type_: str, name: str, body: object, meta: JSON | None) -> SiblingPipeline:
    """Parse one sibling pipeline's parameters (``format`` is accepted and ignored)."""
    b = Body(type_, name, body)
    b.string("format")
    path, gap = b.single_path(), b.gap_policy()
    pipeline: BucketMetric
    if type_ == "extended_stats_bucket":
        sigma = b.number("sigma", 2.0)
        if sigma < 0:
            raise BadRequest(f"[sigma] must be greater than or equal to 0. Found [{sigma}] in [{name}]")
        pipeline = BucketMetric(name, type_, meta, path, gap, sigma=sigma)
    elif type_ == "percentiles_bucket":
        pipeline = BucketMetric(
            name, type_, meta, path, gap, percents=_percents(b), keyed=b.boolean("keyed", True)
        )
    else:
        pipeline = BucketMetric(name, type_, meta, path, gap)
    b.done()
    return pipeline

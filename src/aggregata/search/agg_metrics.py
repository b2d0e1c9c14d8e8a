"""Metric aggregation results in Elasticsearch's shape, from the columns their statement returned.

Values are doubles as in Elasticsearch (``"value": 15.0`` for a sum of longs); date fields
add ``value_as_string``; an empty bucket reports what Elasticsearch reports (``null``
average, ``0.0`` sum, ``0`` count). Where Elasticsearch divides zero by zero
(``variance_sampling`` of one value) it prints the string ``"NaN"``, and so do we.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from aggregata.dsl.aggs import metrics as m
from aggregata.model.mapping import FieldType
from aggregata.search.formats import format_date, format_number, java_double
from aggregata.sql.aggs.metrics import MetricPlan

NAN = "NaN"


def number(value: Any) -> float | None:
    """A SQL result as a double; NULL and NaN (ClickHouse's empty aggregate) become ``None``."""
    if value is None:
        return None
    result = float(value)
    return None if math.isnan(result) else result


def _formatter(plan: MetricPlan) -> Callable[[float], str] | None:
    spec = plan.agg.spec
    assert isinstance(spec, m.FieldMetric)
    if plan.field is not None and plan.field.type is FieldType.DATE:
        return lambda v: format_date(v, spec.format)
    if spec.format is not None:
        return lambda v: format_number(v, spec.format)
    return None


def metric_result(plan: MetricPlan, row: dict[str, Any] | None) -> dict[str, Any]:
    """The response object of metric ``plan.agg`` for one bucket (``row=None``: an empty bucket)."""
    spec = plan.agg.spec

    def col(name: str) -> Any:
        return None if row is None else row.get(plan.columns[name])

    fmt = _formatter(plan)
    if isinstance(spec, m.ValueCount):
        return {"value": int(col("value") or 0)}
    if isinstance(spec, m.Cardinality):
        return {"value": int(col("value") or 0)}
    if isinstance(spec, m.SimpleMetric):
        value = number(col("value"))
        if isinstance(spec, m.Sum) and value is None:
            value = 0.0
        out: dict[str, Any] = {"value": value}
        if value is not None and fmt is not None and not (isinstance(spec, m.Sum) and row is None):
            out["value_as_string"] = fmt(value)
        return out
    if isinstance(spec, m.ExtendedStats):
        return _extended_stats(spec, col, fmt, exact_variance="variance_population" in plan.columns)
    if isinstance(spec, m.Stats):
        return _stats(col, fmt)
    if isinstance(spec, m.Percentiles):
        values = col("values")
        numbers: list[float | None] = [number(v) for v in values] if values else [None] * len(spec.percents)
        return _percent_values(spec.percents, numbers, spec.keyed, fmt)
    if isinstance(spec, m.PercentileRanks):
        count = int(col("count") or 0)
        ranks = [
            None if not count else 100.0 * float(col(f"le{i}") or 0) / count for i in range(len(spec.values))
        ]
        return _percent_values(spec.values, ranks, spec.keyed, None)
    if isinstance(spec, m.MedianAbsoluteDeviation):
        mad = number(col("value"))
        out = {"value": mad}
        if mad is not None and spec.format is not None:
            out["value_as_string"] = format_number(mad, spec.format)
        return out
    raise AssertionError(f"no result shape for [{plan.agg.type_name}]")


def _stats(col: Callable[[str], Any], fmt: Callable[[float], str] | None) -> dict[str, Any]:
    count = int(col("count") or 0)
    out: dict[str, Any] = {
        "count": count,
        "min": number(col("min")) if count else None,
        "max": number(col("max")) if count else None,
        "avg": number(col("avg")) if count else None,
        "sum": (number(col("sum")) or 0.0) if count else 0.0,
    }
    if count and fmt is not None:
        for name in ("min", "max", "avg", "sum"):
            out[f"{name}_as_string"] = fmt(out[name])
    return out


def _extended_stats(
    spec: m.ExtendedStats,
    col: Callable[[str], Any],
    fmt: Callable[[float], str] | None,
    *,
    exact_variance: bool,
) -> dict[str, Any]:
    """Elasticsearch's extended_stats; variances from SQL (``VAR_POP``), or for arrays from the sums."""
    out = _stats(col, fmt)
    strings = {k: out.pop(k) for k in list(out) if k.endswith("_as_string")}
    count = out["count"]
    names = ("upper", "lower", "upper_population", "lower_population", "upper_sampling", "lower_sampling")
    if not count:
        nulls = dict.fromkeys(
            ("sum_of_squares", "variance", "variance_population", "variance_sampling", "std_deviation",
             "std_deviation_population", "std_deviation_sampling"),
        )  # fmt: skip
        return {**out, **nulls, "std_deviation_bounds": dict.fromkeys(names)}
    total, squares, avg = out["sum"], number(col("sum_of_squares")) or 0.0, out["avg"]
    population = number(col("variance_population")) if exact_variance else None
    if population is None:  # arrays: Elasticsearch's own formula from the sums
        population = max((squares - total * total / count) / count, 0.0)
    sampling: float | str = NAN
    if count > 1:
        exact = number(col("variance_sampling")) if exact_variance else None
        sampling = exact if exact is not None else max((squares - total * total / count) / (count - 1), 0.0)
    std_pop = math.sqrt(population)
    std_samp: float | str = math.sqrt(sampling) if isinstance(sampling, float) else NAN

    def bound(sign: int, std: float | str) -> float | str:
        return avg + sign * std * spec.sigma if isinstance(std, float) else NAN

    result = {
        **out,
        "sum_of_squares": squares,
        "variance": population,
        "variance_population": population,
        "variance_sampling": sampling,
        "std_deviation": std_pop,
        "std_deviation_population": std_pop,
        "std_deviation_sampling": std_samp,
        "std_deviation_bounds": {
            "upper": bound(1, std_pop),
            "lower": bound(-1, std_pop),
            "upper_population": bound(1, std_pop),
            "lower_population": bound(-1, std_pop),
            "upper_sampling": bound(1, std_samp),
            "lower_sampling": bound(-1, std_samp),
        },
    }
    return {**result, **strings}


def _percent_values(
    keys: tuple[float, ...], values: list[float | None], keyed: bool, fmt: Callable[[float], str] | None
) -> dict[str, Any]:
    if keyed:
        out: dict[str, Any] = {}
        for key, value in zip(keys, values, strict=True):
            out[java_double(key)] = value
            if fmt is not None and value is not None:
                out[f"{java_double(key)}_as_string"] = fmt(value)
        return {"values": out}
    items = []
    for key, value in zip(keys, values, strict=True):
        item: dict[str, Any] = {"key": key, "value": value}
        if fmt is not None and value is not None:
            item["value_as_string"] = fmt(value)
        items.append(item)
    return {"values": items}

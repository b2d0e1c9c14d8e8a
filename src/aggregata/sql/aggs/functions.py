"""SQL functions aggregations need that sqlglot has no dialect-neutral node for.

Each is a small expression class; how DuckDB and ClickHouse spell it lives in the two
``*_TRANSFORMS`` tables below, which ``sql/dialects.py`` merges into its generators (so
compilers build one tree and never branch on the dialect). The renderers only combine
their arguments' SQL: no user text ever reaches them except through bound parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp


class EpochMillis(exp.Expression, exp.Func):
    """Milliseconds since 1970-01-01 UTC of instant ``this``, rounded down (``BIGINT``).

    Down, as Elasticsearch's millisecond dates truncate: an instant at 23:59:59.9995 is in
    its own day's bucket, as a range filter says. The engines' own functions do not floor
    microseconds: DuckDB's ``EPOCH_MS`` rounds to the nearest millisecond (that instant
    became the next day's midnight) and ClickHouse's ``toUnixTimestamp64Milli`` truncates
    toward zero (wrong before 1970), so both renderings floor the microseconds themselves:
    ``(us - (999 if us < 0 else 0)) / 1000`` in integer division that truncates. In DuckDB
    that is also faster: a day histogram over 10M events took 78.6 ms with ``EPOCH_MS``,
    47.9 ms with this; in ClickHouse 64.4 ms against 59.5 ms with its truncating function.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True}


class MillisToTimestamp(exp.Expression, exp.Func):
    """The UTC timestamp of an epoch-milliseconds number."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}


class TzOffsetMillis(exp.Expression, exp.Func):
    """The UTC offset (ms) that time zone ``zone`` has at the instant ``this``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "zone": True}


class LocalTruncMillis(exp.Expression, exp.Func):
    """Epoch ms of the start of the local calendar ``unit`` (day … year) holding ``this`` in ``zone``.

    ``unit`` is a string literal chosen by the compiler from a fixed set, never user text.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True, "zone": True}


class Quantiles(exp.Expression, exp.AggFunc):
    """Exact quantiles (linear interpolation between closest ranks) as an array.

    ``this`` is the value; ``array=True`` means it holds arrays whose elements all count.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "quantiles": True, "array": False}


class DistinctCount(exp.Expression, exp.AggFunc):
    """Number of distinct values: exact, or HyperLogLog when ``approx`` (arrays when ``array``)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "approx": False, "array": False}


class MedianAbsoluteDeviation(exp.Expression, exp.AggFunc):
    """``median(|x - median(x)|)`` over the values (arrays' elements when ``array``)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "array": False}


def _flag(e: exp.Expression, name: str) -> bool:
    value = e.args.get(name)
    return bool(value.this) if isinstance(value, exp.Boolean) else bool(value)


Renderer = Callable[[Any, Any], str]


# -- DuckDB --------------------------------------------------------------------------------


def _duck_values(gen: Any, e: exp.Expression) -> str:
    """Every value of the group as one list (NULLs dropped; arrays flattened)."""
    this = gen.sql(e, "this")
    if _flag(e, "array"):
        return f"FLATTEN(LIST({this}) FILTER (WHERE {this} IS NOT NULL))"
    return f"LIST({this}) FILTER (WHERE {this} IS NOT NULL)"


def _duck_quantiles(gen: Any, e: exp.Expression) -> str:
    qs = gen.sql(e, "quantiles")
    if _flag(e, "array"):
        return f"LIST_AGGREGATE({_duck_values(gen, e)}, 'quantile_cont', {qs})"
    return f"QUANTILE_CONT({gen.sql(e, 'this')}, {qs})"


def _duck_distinct(gen: Any, e: exp.Expression) -> str:
    """DuckDB counts exactly even where HyperLogLog is allowed: its approx_count_distinct
    erred by 3.9% at 500k values (benchmarks/aggs.py), beyond Elasticsearch's promise,
    while COUNT(DISTINCT) took 39 ms against 23 ms on the same 10M rows."""
    if _flag(e, "array"):
        return f"LENGTH(LIST_DISTINCT({_duck_values(gen, e)}))"
    return f"COUNT(DISTINCT {gen.sql(e, 'this')})"


def _duck_mad(gen: Any, e: exp.Expression) -> str:
    values = _duck_values(gen, e)
    median = f"LIST_AGGREGATE({values}, 'quantile_cont', 0.5)"
    deviations = f"LIST_TRANSFORM({values}, LAMBDA __v : ABS(__v - {median}))"
    return f"LIST_AGGREGATE({deviations}, 'quantile_cont', 0.5)"


def _duck_tz_offset(gen: Any, e: exp.Expression) -> str:
    """Offsets are whole seconds, so the microsecond difference divides exactly; and
    ``EPOCH_US`` is the cheap one (424 vs 510 ms with ``EPOCH_MS`` over 10M instants in
    New York)."""
    this = gen.sql(e, "this")
    return f"((EPOCH_US(TIMEZONE({gen.sql(e, 'zone')}, {this})) - EPOCH_US({this})) // 1000)"


def _duck_trunc(gen: Any, e: exp.Expression) -> str:
    zone, this = gen.sql(e, "zone"), gen.sql(e, "this")
    return f"EPOCH_MS(TIMEZONE({zone}, DATE_TRUNC({gen.sql(e, 'unit')}, TIMEZONE({zone}, {this}))))"


def _duck_epoch_ms(gen: Any, e: exp.Expression) -> str:
    us = f"EPOCH_US({gen.sql(e, 'this')})"
    return f"(({us} - CASE WHEN {us} < 0 THEN 999 ELSE 0 END) // 1000)"


DUCKDB_TRANSFORMS: dict[type[exp.Expression], Renderer] = {
    EpochMillis: _duck_epoch_ms,
    MillisToTimestamp: lambda gen, e: f"TO_TIMESTAMP(({gen.sql(e, 'this')}) / 1000.0)",
    TzOffsetMillis: _duck_tz_offset,
    LocalTruncMillis: _duck_trunc,
    Quantiles: _duck_quantiles,
    DistinctCount: _duck_distinct,
    MedianAbsoluteDeviation: _duck_mad,
}


# -- ClickHouse ----------------------------------------------------------------------------


def _ch_trunc(gen: Any, e: exp.Expression) -> str:
    """Local midnight of the day/week/… as a ``Date32`` (1900-2299), then its instant in the zone.

    Not ``toStartOfMonth`` and kin: they return ``Date``, which ClickHouse clamps to
    1970-2149, so a document of 1960 landed in January 1970's bucket.
    """
    unit = e.args["unit"]
    name = unit.name.lower() if isinstance(unit, exp.Literal) else str(unit)
    zone, this = gen.sql(e, "zone"), gen.sql(e, "this")
    day = f"toDate32({this}, {zone})" if name == "day" else f"dateTrunc('{name}', {this}, {zone})"
    return f"toUnixTimestamp64Milli(toDateTime64({day}, 3, {zone}))"


def _ch_quantiles(gen: Any, e: exp.Expression) -> str:
    quantiles = e.args["quantiles"]
    items = quantiles.expressions if isinstance(quantiles, exp.Array) else [quantiles]
    params = ", ".join(gen.sql(q) for q in items)
    suffix = "Array" if _flag(e, "array") else ""
    return f"quantilesExactInclusive{suffix}({params})({gen.sql(e, 'this')})"


def _ch_distinct(gen: Any, e: exp.Expression) -> str:
    fn = "uniqCombined" if _flag(e, "approx") else "uniqExact"
    return f"{fn}{'Array' if _flag(e, 'array') else ''}({gen.sql(e, 'this')})"


def _ch_mad(gen: Any, e: exp.Expression) -> str:
    this = gen.sql(e, "this")
    values = f"groupArrayArray({this})" if _flag(e, "array") else f"groupArray({this})"
    median = f"arrayReduce('quantileExactInclusive(0.5)', {values})"
    return f"arrayReduce('quantileExactInclusive(0.5)', arrayMap(__v -> abs(__v - {median}), {values}))"


def _ch_epoch_ms(gen: Any, e: exp.Expression) -> str:
    us = f"toUnixTimestamp64Micro({gen.sql(e, 'this')})"
    return f"intDiv({us} - 999 * ({us} < 0), 1000)"


CLICKHOUSE_TRANSFORMS: dict[type[exp.Expression], Renderer] = {
    EpochMillis: _ch_epoch_ms,
    MillisToTimestamp: lambda gen, e: f"fromUnixTimestamp64Milli(toInt64({gen.sql(e, 'this')}), 'UTC')",
    TzOffsetMillis: lambda gen, e: (
        f"(timeZoneOffset(toTimeZone({gen.sql(e, 'this')}, {gen.sql(e, 'zone')})) * 1000)"
    ),
    LocalTruncMillis: _ch_trunc,
    Quantiles: _ch_quantiles,
    DistinctCount: _ch_distinct,
    MedianAbsoluteDeviation: _ch_mad,
    # HyperLogLog with Elasticsearch-like accuracy (sqlglot's default is plain ``uniq``).
    exp.ApproxDistinct: lambda gen, e: f"uniqCombined({gen.sql(e, 'this')})",
}

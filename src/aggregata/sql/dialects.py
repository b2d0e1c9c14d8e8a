"""Our dialects: sqlglot's, plus the few renderings we need that differ from its defaults.

Differences are overrides on a dialect subclass (data, not ``if dialect ==`` branches).
``render(tree, dialect)`` is what engines call to turn a compiled tree into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.dialects.duckdb import DuckDB

from aggregata.sql.aggs.functions import CLICKHOUSE_TRANSFORMS, DUCKDB_TRANSFORMS


class AlterUpdate(exp.Expression):
    """ClickHouse's ``ALTER TABLE … UPDATE col = expr WHERE cond`` mutation.

    sqlglot has no node for it, and rewriting a column's values in place is how ClickHouse
    turns a scalar column into an array column (it cannot cast ``'a'`` to ``['a']``).
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "where": False}


class AggregataDuckDB(DuckDB):
    """DuckDB as sqlglot prints it; parameters are ``$name``."""

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        # Aggregation functions without a sqlglot node (sql/aggs/functions.py).
        TRANSFORMS: ClassVar[dict[Any, Any]] = {**DuckDB.Generator.TRANSFORMS, **DUCKDB_TRANSFORMS}


def _alter_update_sql(gen: Any, e: AlterUpdate) -> str:
    where = gen.sql(e, "where") or "TRUE"
    return f"UPDATE {gen.sql(e, 'this')} = {gen.sql(e, 'expression')} WHERE {where}"


class AggregataClickHouse(ClickHouse):
    """ClickHouse with typed, non-nullable query parameters (``{p0:String}``).

    ClickHouse gives dots in column names a meaning: dotted ``Array`` columns sharing a
    prefix are read as one ``Nested`` structure (arrays forced to equal sizes, new columns
    back-filled with arrays of defaults), and ``a.b`` can name a tuple element. Field
    names are dotted paths, so identifiers are stored with ``NAME_SEPARATOR`` in place of
    the dot; engines turn result column names back with ``decode_name``. Field names cannot
    contain it, and compilers should not put it in aliases either.
    """

    NAME_SEPARATOR = ":"
    _ENCODED = re.compile(r"[A-Za-z0-9_$@\-]+(?::[A-Za-z0-9_$@\-]+)+")

    # Parameter types as ClickHouse spells them; a parameter is never NULL.
    PARAM_TYPES: ClassVar[dict[Any, str]] = {
        exp.DataType.Type.VARCHAR: "String",
        exp.DataType.Type.TEXT: "String",
        exp.DataType.Type.BIGINT: "Int64",
        exp.DataType.Type.DOUBLE: "Float64",
        exp.DataType.Type.BOOLEAN: "Bool",
        exp.DataType.Type.TIMESTAMPTZ: "DateTime64(6, 'UTC')",
    }

    @classmethod
    def encode_name(cls, name: str) -> str:
        """The stored form of a (possibly dotted) column or tuple-element name."""
        return name.replace(".", cls.NAME_SEPARATOR)

    @classmethod
    def decode_name(cls, name: str) -> str:
        """The field name for a stored name; names ClickHouse made up are left alone."""
        return name.replace(cls.NAME_SEPARATOR, ".") if cls._ENCODED.fullmatch(name) else name

    class Generator(ClickHouse.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS: ClassVar[dict[Any, Any]] = {
            **ClickHouse.Generator.TRANSFORMS,
            exp.ArrayOverlaps: lambda self, e: self.func("hasAny", e.this, e.expression),
            # ClickHouse's lower/upper are ASCII-only; DuckDB's are Unicode-aware.
            exp.Lower: lambda self, e: self.func("lowerUTF8", e.this),
            exp.Upper: lambda self, e: self.func("upperUTF8", e.this),
            AlterUpdate: _alter_update_sql,
            **CLICKHOUSE_TRANSFORMS,
        }

        def placeholder_sql(self, expression: exp.Placeholder) -> str:
            kind = expression.args.get("kind")
            name = AggregataClickHouse.PARAM_TYPES.get(kind.this, "String") if kind else "String"
            return f"{{{expression.name}:{name}}}"

        def identifier_sql(self, expression: exp.Identifier) -> str:
            if "." in expression.name:
                expression = exp.to_identifier(
                    AggregataClickHouse.encode_name(expression.name), quoted=expression.quoted
                )
            text: str = super().identifier_sql(expression)
            return text

        def altercolumn_sql(self, expression: exp.AlterColumn) -> str:
            """A type change is ``MODIFY COLUMN name Type``; ClickHouse has no ``ALTER COLUMN``."""
            if expression.args.get("dtype") is not None and not expression.args.get("using"):
                return f"MODIFY COLUMN {self.sql(expression, 'this')} {self.sql(expression, 'dtype')}"
            text: str = super().altercolumn_sql(expression)
            return text


DIALECTS: dict[str, type[DuckDB] | type[ClickHouse]] = {
    "duckdb": AggregataDuckDB,
    "clickhouse": AggregataClickHouse,
}


def render(tree: exp.Expr, dialect: str) -> str:
    """SQL text for ``tree`` in ``dialect`` (``duckdb`` or ``clickhouse``)."""
    return tree.sql(dialect=DIALECTS[dialect]())


# -- functions the insights compile to (insights/*), one node per concept ---------------------
#
# Each node means one thing in both engines; how each engine spells it is a TRANSFORMS entry.


class LocalDate(exp.Expression, exp.Func):
    """The calendar date of instant ``this`` on the wall clock of time zone ``zone``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "zone": True}


class StartOfDate(exp.Expression, exp.Func):
    """First day of the ``unit`` (week = ISO Monday, month, quarter, year) holding date ``this``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True}


class EpochMillis(exp.Expression, exp.Func):
    """Milliseconds since 1970-01-01 UTC of instant ``this`` (an integer)."""


class FromEpochMillis(exp.Expression, exp.Func):
    """The instant ``this`` milliseconds after 1970-01-01 UTC (inverse of ``EpochMillis``)."""


class ActorHash(exp.Expression, exp.Func):
    """A 64-bit unsigned hash of ``this`` (HyperLogLog input): equal values, equal hashes."""


class ToNumber(exp.Expression, exp.Func):
    """``this`` (text) as a double, NULL when it is not a number."""


class ToTimestamp(exp.Expression, exp.Func):
    """``this`` (text) as an instant, NULL when it is not a date."""


class QuantileCont(exp.Expression, exp.AggFunc):
    """Linearly interpolated quantile (numpy's default), ``quantile`` between 0 and 1."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "quantile": True}


_CH_START_OF = {
    "week": "toMonday",
    "month": "toStartOfMonth",
    "quarter": "toStartOfQuarter",
    "year": "toStartOfYear",
}

AggregataDuckDB.Generator.TRANSFORMS = {
    **AggregataDuckDB.Generator.TRANSFORMS,
    LocalDate: lambda self, e: f"CAST(TIMEZONE({self.sql(e, 'zone')}, {self.sql(e, 'this')}) AS DATE)",
    StartOfDate: lambda self, e: f"CAST(DATE_TRUNC('{e.text('unit')}', {self.sql(e, 'this')}) AS DATE)",
    EpochMillis: lambda self, e: self.func("EPOCH_MS", e.this),
    FromEpochMillis: lambda self, e: f"TO_TIMESTAMP(({self.sql(e, 'this')}) / 1000)",
    ActorHash: lambda self, e: self.func("HASH", e.this),
    ToNumber: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS DOUBLE)",
    ToTimestamp: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS TIMESTAMPTZ)",
    QuantileCont: lambda self, e: self.func("QUANTILE_CONT", e.this, e.args["quantile"]),
}

AggregataClickHouse.Generator.TRANSFORMS = {
    **AggregataClickHouse.Generator.TRANSFORMS,
    # ClickHouse has no ``&``/``>>`` operators, only functions.
    exp.BitwiseAnd: lambda self, e: self.func("bitAnd", e.this, e.expression),
    exp.BitwiseRightShift: lambda self, e: self.func("bitShiftRight", e.this, e.expression),
    LocalDate: lambda self, e: self.func("toDate", e.this, e.args["zone"]),
    StartOfDate: lambda self, e: self.func(_CH_START_OF[e.text("unit")], e.this),
    EpochMillis: lambda self, e: self.func("toUnixTimestamp64Milli", e.this),
    FromEpochMillis: lambda self, e: f"fromUnixTimestamp64Milli(toInt64({self.sql(e, 'this')}), 'UTC')",
    ActorHash: lambda self, e: self.func("xxHash64", e.this),
    ToNumber: lambda self, e: self.func("toFloat64OrNull", e.this),
    ToTimestamp: lambda self, e: f"parseDateTime64BestEffortOrNull({self.sql(e, 'this')}, 6, 'UTC')",
    QuantileCont: lambda self, e: f"quantileExactInclusive({self.sql(e, 'quantile')})({self.sql(e, 'this')})",
}


# -- per-actor lists: the vocabulary of funnels and retention (insights/funnels, retention) ------
#
# A funnel is computed per actor on lists of timestamps (epoch microseconds), one list per
# step. DuckDB and ClickHouse both have vectorized list functions, but different ones:
# ClickHouse scans (``arrayReverseFill``) where DuckDB has none, DuckDB gathers by index
# (``list_select``) where ClickHouse would copy a captured array per element. Each node is
# one list operation that both engines run in linear (or n log n) time.

LIST_NONE = 2**61
"""A time after every real one (year ~73000): "no such event" inside merged lists."""


class EpochMicros(exp.Expression, exp.Func):
    """Microseconds since 1970-01-01 UTC of instant ``this`` (an integer)."""


class ListAgg(exp.Expression, exp.AggFunc):
    """The values of ``this`` in a group as a list, only rows where ``where`` holds; ``[]`` if none."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "where": False}


class ListLen(exp.Expression, exp.Func):
    """Number of elements of list ``this``."""


class ListSort(exp.Expression, exp.Func):
    """List ``this`` sorted ascending (tuples lexicographically)."""


class ListMax(exp.Expression, exp.Func):
    """Largest element of non-empty list ``this``."""


class ListDistinct(exp.Expression, exp.Func):
    """The distinct elements of list ``this``, in no particular order."""


class ListUnnest(exp.Expression, exp.Func):
    """One row per element of list ``this`` (in a SELECT list)."""


class ListWhere(exp.Expression, exp.Func):
    """Elements of ``this`` whose element in boolean list ``mask`` (same length, no NULLs) is true."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "mask": True}


class ListLastIndexOf(exp.Expression, exp.Func):
    """1-based position of the last element of ``this`` equal to ``value`` (which must occur)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "value": True}


class TupleOf(exp.Expression, exp.Func):
    """A tuple of ``expressions``; compares lexicographically, so lists of tuples sort by field."""

    arg_types: ClassVar[dict[str, bool]] = {"expressions": True}
    is_var_len_args = True


class TupleGet(exp.Expression, exp.Func):
    """Field ``index`` (1-based, an integer literal) of a ``TupleOf`` value ``this``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "index": True}


class ListZipMap(exp.Expression, exp.Func):
    """``[body(a[i], b[i], …) for i]`` over lists ``arrays`` of equal length.

    ``body`` refers to the element of ``arrays[k]`` as the column ``names[k]``; it may also
    refer to columns of the row (scalars). Arrays should be plain columns.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "names": True, "arrays": True}


class ListMergeKeys(exp.Expression, exp.Func):
    """Sorted merge keys of times ``this`` (sorted queries) and ``expression`` (any order).

    Each time ``t`` becomes ``2t`` or ``2t + 1`` so that the low bit says which list it came
    from and, on equal times, an ``inclusive=False`` query sorts after the candidates at its
    own time (so it finds the next *later* one) and an inclusive one before them. A
    candidate at ``LIST_NONE`` ends the candidates. ``ListMergedNext`` reads the result.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "inclusive": True}


class ListMergedNext(exp.Expression, exp.Func):
    """For each query of the ``ListMergeKeys`` value ``this``, in order: the first candidate
    time after it (at or after it when ``inclusive``), or "none" (``LIST_NONE`` or NULL)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "inclusive": True}


class ListConcat(exp.Expression, exp.Func):
    """The lists ``expressions`` one after the other."""

    arg_types: ClassVar[dict[str, bool]] = {"expressions": True}
    is_var_len_args = True


class ListFlatten(exp.Expression, exp.Func):
    """The elements of the lists in list ``this``, in order."""


class PeriodIndex(exp.Expression, exp.Func):
    """Whole ``unit``s (day, week, month) from 1970 to ``this``, the first date of such a period.

    Weeks start on Monday (1970-01-05), months on the 1st: consecutive periods have
    consecutive indexes, so "n periods later" is a subtraction.
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True}


_PERIOD_ORIGIN = {
    "day": ("day", "1970-01-01", 1),
    "week": ("day", "1970-01-05", 7),
    "month": ("month", "1970-01-01", 1),
}


def _period_index(date: str, diff: str, divide: str) -> Callable[[Any, PeriodIndex], str]:
    """``PeriodIndex`` from a date literal template, a date-difference and a division template."""

    def render(gen: Any, e: PeriodIndex) -> str:
        unit, origin, size = _PERIOD_ORIGIN[e.text("unit")]
        days = f"{diff}('{unit}', {date.format(origin)}, {gen.sql(e.this)})"
        return days if size == 1 else divide.format(days, size)

    return render


def _tags(e: exp.Expression) -> tuple[int, int]:
    """(low bit of queries, low bit of candidates) of a merge: see ``ListMergeKeys``."""
    inclusive = e.args["inclusive"]
    return (0, 1) if isinstance(inclusive, exp.Boolean) and inclusive.this else (1, 0)


def _zipmap_body(e: ListZipMap, element: Callable[[int], exp.Expr]) -> exp.Expr:
    names = {n.name: k for k, n in enumerate(e.args["names"])}

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name in names:
            return element(names[node.name])
        return node

    body: exp.Expr = e.this.transform(swap)
    return body


def _duck_zipmap(gen: Any, e: ListZipMap) -> str:
    arrays, names = e.args["arrays"], e.args["names"]
    if len(arrays) == 1:
        return f"LIST_TRANSFORM({gen.sql(arrays[0])}, LAMBDA {gen.sql(names[0])}: {gen.sql(e.this)})"
    i = exp.column("_zi")
    body = _zipmap_body(e, lambda k: exp.Bracket(this=arrays[k].copy(), expressions=[i.copy()], offset=1))
    return f"LIST_TRANSFORM(RANGE(1, LEN({gen.sql(arrays[0])}) + 1), LAMBDA _zi: {gen.sql(body)})"


def _ch_zipmap(gen: Any, e: ListZipMap) -> str:
    names = ", ".join(gen.sql(n) for n in e.args["names"])
    arrays = ", ".join(gen.sql(a) for a in e.args["arrays"])
    return f"arrayMap(({names}) -> {gen.sql(e.this)}, {arrays})"


def _duck_merge_keys(gen: Any, e: ListMergeKeys) -> str:
    q, c = _tags(e)
    return (
        f"LIST_SORT(LIST_CONCAT(LIST_TRANSFORM({gen.sql(e.this)}, LAMBDA _x: COALESCE(2 * _x + {q},"
        f" {2 * LIST_NONE + q})), LIST_TRANSFORM({gen.sql(e.expression)}, LAMBDA _x: 2 * _x + {c}),"
        f" [{2 * LIST_NONE + c}]))"
    )


def _ch_merge_keys(gen: Any, e: ListMergeKeys) -> str:
    q, c = _tags(e)
    return (
        f"arraySort(arrayConcat(arrayMap(_x -> 2 * _x + {q}, {gen.sql(e.this)}),"
        f" arrayMap(_x -> 2 * _x + {c}, {gen.sql(e.expression)}), [toInt64({2 * LIST_NONE + c})]))"
    )


def _duck_merged_next(gen: Any, e: ListMergedNext) -> str:
    """Candidates in sorted order, indexed by (position of the j-th query) - j + 1."""
    q, c = _tags(e)
    keys = gen.sql(e.this)
    return (
        f"LIST_SELECT(LIST_TRANSFORM(LIST_FILTER({keys}, LAMBDA _x: _x & 1 = {c}), LAMBDA _x: _x >> 1),"
        f" LIST_TRANSFORM(LIST_WHERE(RANGE(1, LEN({keys}) + 1), LIST_TRANSFORM({keys},"
        f" LAMBDA _x: _x & 1 = {q})), LAMBDA _p, _j: _p - _j + 1))"
    )


def _ch_merged_next(gen: Any, e: ListMergedNext) -> str:
    """Each query takes the next candidate's key by a backward fill, then keeps its place."""
    q, c = _tags(e)
    keys = gen.sql(e.this)
    return (
        f"arrayMap(_x -> bitShiftRight(_x, 1), arrayFilter((_r, _k) -> bitAnd(_k, 1) = {q},"
        f" arrayReverseFill(_x -> bitAnd(_x, 1) = {c}, {keys}), {keys}))"
    )


def _duck_list_agg(gen: Any, e: ListAgg) -> str:
    where = e.args.get("where")
    if where is None:
        return f"LIST({gen.sql(e.this)})"
    return f"COALESCE(LIST({gen.sql(e.this)}) FILTER (WHERE {gen.sql(where)}), [])"


def _ch_list_agg(gen: Any, e: ListAgg) -> str:
    where = e.args.get("where")
    if where is None:
        return f"groupArray({gen.sql(e.this)})"
    return f"groupArrayIf({gen.sql(e.this)}, {gen.sql(where)})"


def _duck_tuple(gen: Any, e: TupleOf) -> str:
    fields = ", ".join(f"'f{k + 1}': {gen.sql(x)}" for k, x in enumerate(e.expressions))
    return f"{{{fields}}}"


AggregataDuckDB.Generator.TRANSFORMS = {
    **AggregataDuckDB.Generator.TRANSFORMS,
    EpochMicros: lambda self, e: self.func("EPOCH_US", e.this),
    ListAgg: _duck_list_agg,
    ListLen: lambda self, e: self.func("LEN", e.this),
    ListSort: lambda self, e: self.func("LIST_SORT", e.this),
    ListMax: lambda self, e: self.func("LIST_MAX", e.this),
    ListDistinct: lambda self, e: self.func("LIST_DISTINCT", e.this),
    ListUnnest: lambda self, e: self.func("UNNEST", e.this),
    ListWhere: lambda self, e: self.func("LIST_WHERE", e.this, e.args["mask"]),
    ListLastIndexOf: lambda self, e: (
        f"(LEN({self.sql(e.this)}) - LIST_POSITION(LIST_REVERSE({self.sql(e.this)}),"
        f" {self.sql(e, 'value')}) + 1)"
    ),
    TupleOf: _duck_tuple,
    TupleGet: lambda self, e: f"STRUCT_EXTRACT({self.sql(e.this)}, 'f{e.args['index'].name}')",
    ListZipMap: _duck_zipmap,
    ListMergeKeys: _duck_merge_keys,
    ListMergedNext: _duck_merged_next,
    ListConcat: lambda self, e: self.func("LIST_CONCAT", *e.expressions),
    ListFlatten: lambda self, e: self.func("FLATTEN", e.this),
    PeriodIndex: _period_index("DATE '{}'", "DATE_DIFF", "({} // {})"),
}

AggregataClickHouse.Generator.TRANSFORMS = {
    **AggregataClickHouse.Generator.TRANSFORMS,
    EpochMicros: lambda self, e: self.func("toUnixTimestamp64Micro", e.this),
    ListAgg: _ch_list_agg,
    ListLen: lambda self, e: self.func("length", e.this),
    ListSort: lambda self, e: self.func("arraySort", e.this),
    ListMax: lambda self, e: self.func("arrayMax", e.this),
    ListDistinct: lambda self, e: self.func("arrayDistinct", e.this),
    ListUnnest: lambda self, e: self.func("arrayJoin", e.this),
    ListWhere: lambda self, e: f"arrayFilter((_x, _m) -> _m, {self.sql(e.this)}, {self.sql(e, 'mask')})",
    ListLastIndexOf: lambda self, e: f"arrayLastIndex(_x -> _x = {self.sql(e, 'value')}, {self.sql(e.this)})",
    TupleOf: lambda self, e: self.func("tuple", *e.expressions),
    TupleGet: lambda self, e: self.func("tupleElement", e.this, e.args["index"]),
    ListZipMap: _ch_zipmap,
    ListMergeKeys: _ch_merge_keys,
    ListMergedNext: _ch_merged_next,
    ListConcat: lambda self, e: self.func("arrayConcat", *e.expressions),
    ListFlatten: lambda self, e: self.func("arrayFlatten", e.this),
    PeriodIndex: _period_index("toDate('{}')", "dateDiff", "intDiv({}, {})"),
}

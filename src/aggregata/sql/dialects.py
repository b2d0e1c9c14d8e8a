"""Our dialects: sqlglot's, plus the few renderings we need that differ from its defaults.

Differences are overrides on a dialect subclass (data, not ``if dialect ==`` branches).
``render(tree, dialect)`` is what engines call to turn a compiled tree into SQL text.
"""

from __future__ import annotations

import re
import weakref
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.dialects.duckdb import DuckDB

from aggregata.sql.aggs.functions import CLICKHOUSE_TRANSFORMS, DUCKDB_TRANSFORMS
from aggregata.sql.lists import CLICKHOUSE_TRANSFORMS as LIST_CLICKHOUSE_TRANSFORMS
from aggregata.sql.lists import DUCKDB_TRANSFORMS as LIST_DUCKDB_TRANSFORMS


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

        def where_sql(self, expression: exp.Where) -> str:
            text: str = super().where_sql(exp.Where(this=_semi_joined(expression.this)))
            return text


def _semi_joined(cond: exp.Expr) -> exp.Expr:
    """``x IN (a, b, …)`` filters as ``x IN (SELECT UNNEST([a, b, …]))``, a copy.

    DuckDB evaluates an ``IN`` list as a chain of comparisons per row (on 10M strings, 150
    ms for four values), but the subquery as a hash semi-join (60 ms). Only where the
    condition is a filter — reached through AND/OR/NOT from the ``WHERE`` — so the subquery
    never lands in a lambda or an aggregate; other nodes are left as they are.
    """
    if isinstance(cond, (exp.And, exp.Or)):
        return type(cond)(this=_semi_joined(cond.this), expression=_semi_joined(cond.expression))
    if isinstance(cond, (exp.Paren, exp.Not)):
        return type(cond)(this=_semi_joined(cond.this))
    items = cond.expressions if isinstance(cond, exp.In) and not cond.args.get("query") else []
    if len(items) < 2 or not all(isinstance(i, (exp.Literal, exp.Placeholder)) for i in items):
        return cond
    values = exp.Array(expressions=[i.copy() for i in items])
    return exp.In(this=cond.this.copy(), query=exp.select(exp.Unnest(expressions=[values])).subquery())


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


class RenderMemo:
    """``render`` for trees that come back: their SQL text by identity, while they live.

    Plans the search plan cache hands out again, and the statements listeners run in every
    write, are the same tree objects each time; rendering one costs 0.1-0.6 ms, as much as
    a small write's ``INSERT`` or 3% of a 10 ms aggregation. Entries hold a weak reference:
    a tree's text goes when the tree does (a request's own trees, however large, are not
    kept past it, and an ``id`` reused by a later object cannot find an old text). Trees
    are never edited in place once built (compilers build new ones), so a remembered text
    stays right. Safe across threads (a race renders a tree twice).
    """

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._texts: dict[int, tuple[weakref.ref[exp.Expr], str]] = {}

    def __call__(self, tree: exp.Expr) -> str:
        key = id(tree)
        hit = self._texts.get(key)
        if hit is not None and hit[0]() is tree:
            return hit[1]
        sql = render(tree, self.dialect)
        self._texts[key] = (weakref.ref(tree, lambda ref: self._forget(key, ref)), sql)
        return sql

    def _forget(self, key: int, ref: weakref.ref[exp.Expr]) -> None:
        hit = self._texts.get(key)
        if hit is not None and hit[0] is ref:
            self._texts.pop(key, None)

    def __len__(self) -> int:
        return len(self._texts)


# -- functions the insights compile to (insights/*), one node per concept ---------------------
#
# Each node means one thing in both engines; how each engine spells it is a TRANSFORMS entry.


class LocalDate(exp.Expression, exp.Func):
    """The calendar date of instant ``this`` on the wall clock of time zone ``zone``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "zone": True}


class StartOfDate(exp.Expression, exp.Func):
    """First day of the ``unit`` (week = ISO Monday, month, quarter, year) holding date ``this``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "unit": True}


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
    ActorHash: lambda self, e: self.func("HASH", e.this),
    ToNumber: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS DOUBLE)",
    ToTimestamp: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS TIMESTAMPTZ)",
    QuantileCont: lambda self, e: self.func("QUANTILE_CONT", e.this, e.args["quantile"]),
}

AggregataClickHouse.Generator.TRANSFORMS = {
    **AggregataClickHouse.Generator.TRANSFORMS,
    # ClickHouse has no ``&``/``>>`` operators, only functions.
    exp.BitwiseAnd: lambda self, e: self.func("bitAnd", e.this, e.expression),
    exp.BitwiseOr: lambda self, e: self.func("bitOr", e.this, e.expression),
    exp.BitwiseRightShift: lambda self, e: self.func("bitShiftRight", e.this, e.expression),
    LocalDate: lambda self, e: self.func("toDate", e.this, e.args["zone"]),
    StartOfDate: lambda self, e: self.func(_CH_START_OF[e.text("unit")], e.this),
    ActorHash: lambda self, e: self.func("xxHash64", e.this),
    ToNumber: lambda self, e: self.func("toFloat64OrNull", e.this),
    ToTimestamp: lambda self, e: f"parseDateTime64BestEffortOrNull({self.sql(e, 'this')}, 6, 'UTC')",
    QuantileCont: lambda self, e: f"quantileExactInclusive({self.sql(e, 'quantile')})({self.sql(e, 'this')})",
}

# Per-actor list operations of funnels and retention (``sql/lists.py``).
AggregataDuckDB.Generator.TRANSFORMS = {**AggregataDuckDB.Generator.TRANSFORMS, **LIST_DUCKDB_TRANSFORMS}
AggregataClickHouse.Generator.TRANSFORMS = {
    **AggregataClickHouse.Generator.TRANSFORMS,
    **LIST_CLICKHOUSE_TRANSFORMS,
}

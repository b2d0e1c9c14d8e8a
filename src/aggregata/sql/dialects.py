"""Our dialects: sqlglot's, plus the few renderings we need that differ from its defaults.

Differences are overrides on a dialect subclass (data, not ``if dialect ==`` branches).
``render(tree, dialect)`` is what engines call to turn a compiled tree into SQL text.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.dialects.duckdb import DuckDB


class AlterUpdate(exp.Expression):
    """ClickHouse's ``ALTER TABLE … UPDATE col = expr WHERE cond`` mutation.

    sqlglot has no node for it, and rewriting a column's values in place is how ClickHouse
    turns a scalar column into an array column (it cannot cast ``'a'`` to ``['a']``).
    """

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "where": False}


class AggregataDuckDB(DuckDB):
    """DuckDB as sqlglot prints it; parameters are ``$name``."""


def _alter_update_sql(gen: Any, e: AlterUpdate) -> str:
    where = gen.sql(e, "where") or "TRUE"
    return f"UPDATE {gen.sql(e, 'this')} = {gen.sql(e, 'expression')} WHERE {where}"


class AggregataClickHouse(ClickHouse):
    """ClickHouse with typed, non-nullable query parameters (``{p0:String}``).

    ClickHouse gives dots in column names a meaning: dotted ``Array`` columns sharing a
    prefix are read as one ``Nested`` structure (arrays forced to equal sizes, new columns
    back-filled with arrays of defaults), and ``a.b`` can name a tuple element. Field
    names are dotted paths, so identifiers are stored with ``NAME_SEPARATOR`` in place of
    the dot; engines turn result column names back with ``decode_name``.
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

"""Our dialects: sqlglot's, plus the few renderings we need that differ from its defaults.

Differences are overrides on a dialect subclass (data, not ``if dialect ==`` branches).
``render(tree, dialect)`` is what engines call to turn a compiled tree into SQL text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.dialects.duckdb import DuckDB


class AggregataDuckDB(DuckDB):
    """DuckDB as sqlglot prints it; parameters are ``$name``."""


class AggregataClickHouse(ClickHouse):
    """ClickHouse with typed, non-nullable query parameters (``{p0:String}``)."""

    # Parameter types as ClickHouse spells them; a parameter is never NULL.
    PARAM_TYPES: ClassVar[dict[Any, str]] = {
        exp.DataType.Type.VARCHAR: "String",
        exp.DataType.Type.TEXT: "String",
        exp.DataType.Type.BIGINT: "Int64",
        exp.DataType.Type.DOUBLE: "Float64",
        exp.DataType.Type.BOOLEAN: "Bool",
        exp.DataType.Type.TIMESTAMPTZ: "DateTime64(6, 'UTC')",
    }

    class Generator(ClickHouse.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS: ClassVar[dict[Any, Any]] = {
            **ClickHouse.Generator.TRANSFORMS,
            exp.ArrayOverlaps: lambda self, e: self.func("hasAny", e.this, e.expression),
        }

        def placeholder_sql(self, expression: exp.Placeholder) -> str:
            kind = expression.args.get("kind")
            name = AggregataClickHouse.PARAM_TYPES.get(kind.this, "String") if kind else "String"
            return f"{{{expression.name}:{name}}}"


DIALECTS: dict[str, type[DuckDB] | type[ClickHouse]] = {
    "duckdb": AggregataDuckDB,
    "clickhouse": AggregataClickHouse,
}


def render(tree: exp.Expr, dialect: str) -> str:
    """SQL text for ``tree`` in ``dialect`` (``duckdb`` or ``clickhouse``)."""
    return tree.sql(dialect=DIALECTS[dialect]())

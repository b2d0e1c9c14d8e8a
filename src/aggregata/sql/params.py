"""Bound parameters: every user value reaches the engine as a parameter, never as SQL text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp


class Params:
    """Collects values while a tree is built and hands out placeholders for them.

    The placeholder carries a type so dialects that need typed parameters (ClickHouse's
    ``{p0:String}``) can print one; DuckDB prints ``$p0``.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def copy(self) -> Params:
        """The values so far, in a collector of their own: binding more leaves this one as is."""
        out = Params()
        out.values = dict(self.values)
        return out

    def bind(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name, kind=_TYPES[param_type(value)].copy())


def param_type(value: Any) -> str:
    """The SQL type a parameter value is bound as."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, datetime):
        return "TIMESTAMPTZ"
    return "VARCHAR"


# Parsed once: ``DataType.build`` parses its text argument on every call.
_TYPES = {
    name: exp.DataType.build(name) for name in ("BOOLEAN", "BIGINT", "DOUBLE", "TIMESTAMPTZ", "VARCHAR")
}

"""Field names → SQL in the row source an aggregation sees (the collection, or nested objects).

Inside a ``nested`` aggregation the rows are the nested objects, whose members the plan
projects as columns named like their Elasticsearch paths (``comments.author``); there only
those fields resolve, as in Elasticsearch where the parent's fields are not part of a
nested document. Every name is resolved against the mapping, so only mapped names ever
become (quoted) identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.model.mapping import ID_FIELD, Field, FieldType, Mapping
from aggregata.sql.aggs.functions import EpochMillis
from aggregata.sql.params import Params
from aggregata.sql.query import coerce_value, col

NUMERIC_LIKE = frozenset({FieldType.LONG, FieldType.DOUBLE, FieldType.DATE, FieldType.BOOLEAN})
VALUE_TYPES = NUMERIC_LIKE | {FieldType.KEYWORD}


@dataclass(frozen=True)
class Scope:
    """The fields visible to an aggregation: the root mapping, or one nested path's members."""

    mapping: Mapping
    nested_path: str | None = None

    def field(self, name: str, agg_type: str, agg_name: str, allowed: frozenset[FieldType]) -> Field:
        f = self.mapping.get(name)
        if f is None and name == ID_FIELD and self.nested_path is None:
            f = Field(ID_FIELD, FieldType.KEYWORD)
        if f is None:
            where = f" inside nested path [{self.nested_path}]" if self.nested_path else ""
            raise BadRequest(f"field [{name}] of aggregation [{agg_name}] is not mapped{where}")
        if f.type is FieldType.TEXT and FieldType.KEYWORD in allowed:
            raise BadRequest(
                "Text fields are not optimised for operations that require per-document field data like"
                f" aggregations; field [{name}] of aggregation [{agg_name}] is a text field:"
                " use a keyword field"
            )
        if f.type not in allowed:
            raise BadRequest(
                f"Field [{name}] of type [{f.type.value}] is not supported for aggregation [{agg_type}]"
            )
        return f


def values(f: Field) -> exp.Expr:
    """The column holding ``f`` (an array column when ``f.array``)."""
    return col(f.name)


def is_empty(f: Field) -> exp.Expr:
    """True where the document has no value for ``f`` (NULL, or an empty/absent array)."""
    missing = exp.Is(this=col(f.name), expression=exp.Null())
    if not f.array:
        return missing
    size = exp.ArraySize(this=col(f.name))
    return exp.or_(missing, exp.EQ(this=size, expression=exp.Literal.number(0)))


def numeric(value: exp.Expr, f: Field) -> exp.Expr:
    """A scalar value of ``f`` as a number: dates as epoch ms, booleans as 0/1."""
    if f.type is FieldType.DATE:
        return EpochMillis(this=value)
    if f.type is FieldType.BOOLEAN:
        return exp.Case(ifs=[exp.If(this=value, true=exp.Literal.number(1))], default=exp.Literal.number(0))
    return value


def lambda_over(f: Field, body: Any) -> exp.Lambda:
    """``x -> body(x)`` over the elements of an array field."""
    x = exp.to_identifier("__x")
    return exp.Lambda(this=body(exp.column(x)), expressions=[x.copy()])


def coerce_missing(f: Field, value: Any, agg_name: str, now: datetime) -> Any:
    """The ``missing`` value converted to the field's type (a 400 naming the aggregation if it can't)."""
    try:
        converted = coerce_value(f, value, now=now)
    except BadRequest as exc:
        raise BadRequest(f"[missing] of aggregation [{agg_name}]: {exc.reason}") from None
    if converted is None:
        raise BadRequest(
            f"[missing] value [{value}] of aggregation [{agg_name}] does not fit field [{f.name}]"
        )
    return converted


def numeric_missing(f: Field, value: Any) -> int | float:
    """A coerced missing value in the numeric domain ``numeric`` maps the field to."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    raise BadRequest(f"[missing] value [{value}] is not a number for field [{f.name}]")


@dataclass(frozen=True)
class NumericValues:
    """A field's values as numbers in SQL: a scalar expression, or an array of them."""

    expr: exp.Expr
    array: bool


def numeric_values(f: Field, missing: Any, params: Params, agg_name: str, now: datetime) -> NumericValues:
    """The numbers a metric aggregates for field ``f``, with ``missing`` filled in."""
    fill = None
    if missing is not None:
        fill = params.bind(numeric_missing(f, coerce_missing(f, missing, agg_name, now)))
    if not f.array:
        value = numeric(values(f), f)
        if fill is not None:
            value = exp.Coalesce(this=value, expressions=[fill])
        return NumericValues(value, False)
    arr: exp.Expr = values(f)
    if f.type in (FieldType.DATE, FieldType.BOOLEAN):
        arr = exp.Transform(this=arr, expression=lambda_over(f, lambda x: numeric(x, f)))
    if fill is not None:
        arr = exp.Case(ifs=[exp.If(this=is_empty(f), true=exp.Array(expressions=[fill]))], default=arr)
    return NumericValues(arr, True)

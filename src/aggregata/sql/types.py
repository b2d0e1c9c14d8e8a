"""Column types per field type, as sqlglot data types, with per-dialect overrides.

The table is data, not branches: a dialect that stores a type differently (ClickHouse's
``DateTime64`` with a time zone, for instance) lists only its differences.
"""

from __future__ import annotations

from sqlglot import exp

from aggregata.model.mapping import ID_FIELD, Field, FieldType, Mapping

_BASE: dict[FieldType, str] = {
    FieldType.KEYWORD: "VARCHAR",
    FieldType.TEXT: "VARCHAR",
    FieldType.LONG: "BIGINT",
    FieldType.DOUBLE: "DOUBLE",
    FieldType.BOOLEAN: "BOOLEAN",
    FieldType.DATE: "TIMESTAMPTZ",
    FieldType.GEO_POINT: "STRUCT(lat DOUBLE, lon DOUBLE)",
}

_OVERRIDES: dict[str, dict[FieldType, str]] = {
    "clickhouse": {FieldType.DATE: "DateTime64(6, 'UTC')"},
}

_READ_DIALECT = {"clickhouse": "clickhouse"}


def _scalar(ftype: FieldType, dialect: str) -> exp.DataType:
    text = _OVERRIDES.get(dialect, {}).get(ftype, _BASE[ftype])
    return exp.DataType.build(text, dialect=_READ_DIALECT.get(dialect, "duckdb"))


def column_type(f: Field, dialect: str) -> exp.DataType:
    """The column type storing field ``f`` in ``dialect``."""
    if f.type is FieldType.NESTED:
        inner = f.properties or Mapping()
        members = [
            exp.ColumnDef(this=exp.to_identifier(sub.name, quoted=True), kind=column_type(sub, dialect))
            for sub in inner
        ]
        struct = exp.DataType(this=exp.DataType.Type.STRUCT, expressions=members, nested=True)
        return exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[struct], nested=True)
    if f.type is FieldType.DENSE_VECTOR:
        real = exp.DataType.build("FLOAT")
        return exp.DataType(
            this=exp.DataType.Type.ARRAY,
            expressions=[real],
            nested=True,
            values=[exp.Literal.number(f.dims)] if dialect != "clickhouse" else None,
        )
    base = _scalar(f.type, dialect)
    if f.array:
        return exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[base], nested=True)
    return base


def id_type() -> exp.DataType:
    return exp.DataType.build("VARCHAR")


def column_defs(mapping: Mapping, dialect: str) -> list[exp.ColumnDef]:
    """Column definitions for a collection table: ``_id`` first, then every field."""
    cols = [exp.ColumnDef(this=exp.to_identifier(ID_FIELD, quoted=True), kind=id_type())]
    cols += [
        exp.ColumnDef(this=exp.to_identifier(f.name, quoted=True), kind=column_type(f, dialect))
        for f in mapping
    ]
    return cols

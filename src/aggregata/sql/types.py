"""Column types per field type, as sqlglot data types, with per-dialect overrides.

The table is data, not branches: a dialect that stores a type differently (ClickHouse's
``DateTime64`` with a time zone, for instance) lists only its differences.

Nullability is stated on every type, because ClickHouse columns are ``NOT NULL`` unless
wrapped in ``Nullable``: a missing scalar value (and a missing ``geo_point``) needs a
nullable column, while array elements are never NULL (documents drop null elements) and an
``Array`` cannot be ``Nullable`` at all, so a missing array is stored as ``[]`` there.
DuckDB ignores the flag (every column is nullable).
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
    "clickhouse": {
        FieldType.DATE: "DateTime64(6, 'UTC')",
        # Members nullable too: chDB reads a NULL Arrow struct as a tuple of NULLs.
        FieldType.GEO_POINT: "Tuple(lat Nullable(Float64), lon Nullable(Float64))",
    },
}

_READ_DIALECT = {"clickhouse": "clickhouse"}


def _scalar(ftype: FieldType, dialect: str, *, nullable: bool) -> exp.DataType:
    text = _OVERRIDES.get(dialect, {}).get(ftype, _BASE[ftype])
    dtype = exp.DataType.build(text, dialect=_READ_DIALECT.get(dialect, "duckdb"))
    dtype.set("nullable", nullable)
    return dtype


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
        real.set("nullable", False)
        return exp.DataType(
            this=exp.DataType.Type.ARRAY,
            expressions=[real],
            nested=True,
            values=[exp.Literal.number(f.dims)] if dialect != "clickhouse" else None,
        )
    base = _scalar(f.type, dialect, nullable=not f.array)
    if f.array:
        return exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[base], nested=True)
    return base


def id_type() -> exp.DataType:
    """``_id`` is the primary key: never NULL (ClickHouse refuses a nullable sorting key)."""
    dtype = exp.DataType.build("VARCHAR")
    dtype.set("nullable", False)
    return dtype


def column_defs(mapping: Mapping, dialect: str) -> list[exp.ColumnDef]:
    """Column definitions for a collection table: ``_id`` first, then every field."""
    cols = [exp.ColumnDef(this=exp.to_identifier(ID_FIELD, quoted=True), kind=id_type())]
    cols += [
        exp.ColumnDef(this=exp.to_identifier(f.name, quoted=True), kind=column_type(f, dialect))
        for f in mapping
    ]
    return cols

"""Arrow types per field, and rows of validated values → Arrow tables for bulk appends."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from aggregata.model.mapping import ID_FIELD, Field, FieldType, Mapping

_SCALARS: dict[FieldType, pa.DataType] = {
    FieldType.KEYWORD: pa.string(),
    FieldType.TEXT: pa.string(),
    FieldType.LONG: pa.int64(),
    FieldType.DOUBLE: pa.float64(),
    FieldType.BOOLEAN: pa.bool_(),
    FieldType.DATE: pa.timestamp("us", tz="UTC"),
    FieldType.GEO_POINT: pa.struct([("lat", pa.float64()), ("lon", pa.float64())]),
}


def arrow_type(f: Field) -> pa.DataType:
    if f.type is FieldType.NESTED:
        inner = f.properties or Mapping()
        return pa.list_(pa.struct([(sub.name, arrow_type(sub)) for sub in inner]))
    if f.type is FieldType.DENSE_VECTOR:
        return pa.list_(pa.float32(), f.dims or -1)
    base = _SCALARS[f.type]
    return pa.list_(base) if f.array else base


def _column(f: Field, values: list[Any]) -> pa.Array:
    if f.array and f.type is not FieldType.NESTED:
        values = [v if v is None or isinstance(v, list) else [v] for v in values]
    return pa.array(values, type=arrow_type(f))


def to_arrow(rows: list[dict[str, Any]], mapping: Mapping) -> pa.Table:
    """Columns for ``_id`` and every field present in at least one row."""
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    names = [ID_FIELD] + [n for n in present if n != ID_FIELD]
    arrays = [pa.array([row[ID_FIELD] for row in rows], type=pa.string())]
    arrays += [_column(mapping.resolve(n), [row.get(n) for row in rows]) for n in names[1:]]
    return pa.Table.from_arrays(arrays, names=names)

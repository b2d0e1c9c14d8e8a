"""The columnar fast path: validate a whole NDJSON batch as Arrow columns, or decline.

Per-document validation in Python (``model.documents``) costs microseconds per field,
which caps HTTP ingestion far below what the engine can append. Here the body is parsed
by Arrow's C++ JSON reader and each *column* is checked against the mapping at once.

The fast path must never change what is stored or rejected, so it only accepts batches
whose outcome is unambiguous: every value of every column fits its field (or a new field
infers one type, as the first document would decide). Anything else — a type conflict, a
string that might or might not be a date, a value needing a per-document error — makes it
return ``None`` and the caller falls back to the per-document path, which gives the exact
answer. ``tests/model/test_columnar.py`` checks both paths store identical rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from aggregata.errors import MappingError
from aggregata.model.arrow import arrow_type
from aggregata.model.documents import Batch
from aggregata.model.mapping import (
    ID_FIELD,
    Field,
    FieldType,
    Mapping,
    parent_conflict,
    validate_field_name,
)

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_TS = pa.timestamp("us", tz="UTC")


class Decline(Exception):
    """The batch needs the per-document path."""


def read_ndjson(body: bytes, known: Mapping) -> pa.Table:
    """Parse NDJSON with Arrow; ISO-looking strings stay strings, so inference stays ours.

    Arrow infers such strings as timestamps, losing the text. Known top-level ``date``
    fields are read as strings from the start (an event's ``timestamp``: one parse per
    body instead of two); other columns Arrow read as timestamps are read again as
    strings. A forced column of nulls only is dropped: the field was absent, or null,
    which stores the same.
    """
    options = pj.ReadOptions(block_size=max(len(body) + 1, 1 << 20), use_threads=False)
    text = [f.name for f in known if f.type is FieldType.DATE and "." not in f.name]
    try:
        table = _read(body, options, text)
        inferred_ts = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if inferred_ts:
            text += inferred_ts
            table = _read(body, options, text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Decline(str(exc)) from None
    empty = [n for n in text if n in table.column_names and table.column(n).null_count == len(table)]
    return table.drop_columns(empty) if empty else table


def _read(body: bytes, options: pj.ReadOptions, text: list[str]) -> pa.Table:
    if not text:
        return pj.read_json(io.BytesIO(body), read_options=options)
    schema = pa.schema([pa.field(n, pa.string()) for n in text])
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    return pj.read_json(io.BytesIO(body), read_options=options, parse_options=parse)


def flatten(table: pa.Table) -> pa.Table:
    """Flatten struct columns into dotted names, as objects become dotted fields."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    names = table.column_names
    if len(set(names)) != len(names):
        raise Decline("duplicate field names after flattening")
    return table


def _first_value_integral(column: pa.ChunkedArray) -> bool:
    valid = column.drop_null()
    return len(valid) > 0 and float(valid[0].as_py()).is_integer()


def _infer(name: str, column: pa.ChunkedArray) -> Field:
    t = column.type
    array = pa.types.is_list(t) or pa.types.is_large_list(t)
    base = t.value_type if array else t
    values = pc.list_flatten(column) if array else column
    if pa.types.is_string(base) or pa.types.is_large_string(base):
        is_date = pc.match_substring_regex(values, _ISO_DATE)
        dates = pc.sum(is_date).as_py() or 0
        present = len(values) - values.null_count
        if dates == present and present:
            return Field(name, FieldType.DATE, array=array)
        if dates:
            raise Decline(f"field [{name}] mixes dates and other strings")
        return Field(name, FieldType.KEYWORD, array=array)
    if pa.types.is_integer(base):
        return Field(name, FieldType.LONG, array=array)
    if pa.types.is_floating(base):
        if _first_value_integral(values):
            raise Decline(f"field [{name}]: integer first, then fractions")
        return Field(name, FieldType.DOUBLE, array=array)
    if pa.types.is_boolean(base):
        return Field(name, FieldType.BOOLEAN, array=array)
    raise Decline(f"field [{name}] has Arrow type {t}")


def _conform(f: Field, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column converted to the field's storage type, or Decline."""
    t = column.type
    is_list = pa.types.is_list(t)
    if f.type in (FieldType.NESTED, FieldType.GEO_POINT, FieldType.DENSE_VECTOR) or is_list != f.array:
        raise Decline(f"field [{f.name}] needs per-document handling")
    base = t.value_type if is_list else t
    target = arrow_type(f)
    target_base = target.value_type if is_list else target
    ok = {
        FieldType.KEYWORD: pa.types.is_string(base),
        FieldType.TEXT: pa.types.is_string(base),
        FieldType.LONG: pa.types.is_integer(base),
        FieldType.DOUBLE: pa.types.is_integer(base) or pa.types.is_floating(base),
        FieldType.BOOLEAN: pa.types.is_boolean(base),
        FieldType.DATE: pa.types.is_string(base) or pa.types.is_timestamp(base),
    }[f.type]
    if not ok:
        raise Decline(f"field [{f.name}]: Arrow type {t} does not fit {f.type.value}")
    if base == target_base:
        return column
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Decline(str(exc)) from None


def columnar_batch(
    table: pa.Table, mapping: Mapping, *, new_id: Callable[[], str], dynamic: bool = True
) -> Batch:
    """Validate a flattened Arrow table against ``mapping``; raise ``Decline`` if unsure."""
    table = table.drop_columns([n for n in table.column_names if table.column(n).null_count == len(table)])
    changed: list[Field] = []
    evolving = mapping
    columns: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        if name == ID_FIELD:
            continue
        column = table.column(name)
        f = evolving.get(name)
        if f is None:
            if not dynamic:
                raise Decline("strict mapping")
            try:
                validate_field_name(name)
            except MappingError:
                raise Decline(f"invalid field name [{name}]") from None
            if parent_conflict(evolving, name) is not None:
                raise Decline(f"field [{name}] conflicts with an object")
            f = _infer(name, column)
            changed.append(f)
            evolving = evolving.with_fields(f)
        columns[name] = _conform(f, column)
    ids = _ids(table, new_id)
    if pc.count_distinct(ids).as_py() != len(ids):
        raise Decline("duplicate ids within the batch")
    out = pa.table({ID_FIELD: ids, **columns})
    return Batch(table=out, mapping=evolving, changed=changed, positions=list(range(len(out))))


def _ids(table: pa.Table, new_id: Callable[[], str]) -> pa.ChunkedArray:
    if ID_FIELD not in table.column_names:
        return pa.chunked_array([pa.array([new_id() for _ in range(len(table))], pa.string())])
    raw = table.column(ID_FIELD)
    if pa.types.is_integer(raw.type):
        raw = raw.cast(pa.string())
    if not pa.types.is_string(raw.type):
        raise Decline("[_id] must be strings or integers")
    lengths = pc.utf8_length(raw)
    if raw.null_count or pc.min(lengths).as_py() < 1 or pc.max(lengths).as_py() > 512:
        if raw.null_count == len(raw):
            return pa.chunked_array([pa.array([new_id() for _ in range(len(table))], pa.string())])
        raise Decline("some documents lack an [_id] or have an invalid one")
    return raw

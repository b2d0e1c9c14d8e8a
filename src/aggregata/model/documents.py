"""Turn JSON documents into typed column values, inferring and evolving the mapping.

This is the only place a document's values are checked against the mapping. A value that
does not fit its field rejects that one document with a reason (bulk semantics: the rest
of the batch is kept); nothing is ever silently coerced into another type or dropped.
Dynamic mapping follows Elasticsearch: ISO-8601 strings become ``date``, other strings
``keyword``, integers ``long``, floats ``double``. One deliberate difference: an array of
objects is inferred as ``nested`` (a list of structs), which keeps each object's fields
together instead of flattening them into unrelated arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from aggregata.dsl.datemath import DateMathError, parse_date
from aggregata.errors import MappingError
from aggregata.model.mapping import (
    ID_FIELD,
    Field,
    FieldType,
    Mapping,
    parent_conflict,
    validate_field_name,
    widen,
)

_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class ItemError:
    """Why the document at ``position`` in the request was rejected."""

    position: int
    type: str
    reason: str
    id: str | None = None


@dataclass
class Batch:
    """Accepted documents as rows of column values, plus rejections and mapping changes.

    ``duplicates`` are positions of documents whose ``_id`` appeared earlier in the batch:
    like a retried document, they are not stored twice. The columnar fast path delivers
    the accepted documents as a ready Arrow ``table`` instead of ``rows``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    table: pa.Table | None = None
    positions: list[int] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    mapping: Mapping = field(default_factory=Mapping)
    changed: list[Field] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        if self.table is not None:
            ids: list[str] = self.table.column(ID_FIELD).to_pylist()
            return ids
        return [row[ID_FIELD] for row in self.rows]

    @property
    def size(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows)


class _Reject(Exception):
    """Internal: abandon the current document."""


def infer_type(value: Any) -> FieldType:
    """The dynamic-mapping type of a scalar JSON value."""
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.LONG
    if isinstance(value, float):
        return FieldType.DOUBLE
    if isinstance(value, str):
        return FieldType.DATE if _ISO_DATE.match(value) else FieldType.KEYWORD
    if isinstance(value, datetime):
        return FieldType.DATE
    raise _Reject(f"cannot infer a type for value of JSON type {type(value).__name__}")


def parse_datetime(value: str | int | float) -> datetime:
    """Fast path for ISO strings (``fromisoformat``), Elasticsearch rules otherwise."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return parse_date(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parse_date(value)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def convert(f: Field, value: Any) -> Any:
    """Check one scalar value against its field's type and return the stored form."""
    t = f.type
    if t is FieldType.KEYWORD or t is FieldType.TEXT:
        if isinstance(value, str):
            return value
    elif t is FieldType.LONG:
        if isinstance(value, int) and not isinstance(value, bool):
            if _INT64[0] <= value <= _INT64[1]:
                return value
            raise _Reject(f"value {value} of field [{f.name}] is out of range for a long")
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif t is FieldType.DOUBLE:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise _Reject(f"field [{f.name}] does not accept non-finite numbers")
            return float(value)
    elif t is FieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif t is FieldType.DATE:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                return parse_datetime(value)
            except (DateMathError, ValueError, OverflowError) as exc:
                raise _Reject(
                    f"failed to parse date field [{f.name}] with value {_describe(value)}: {exc}"
                ) from None
    elif t is FieldType.GEO_POINT:
        return _geo_point(f, value)
    elif t is FieldType.DENSE_VECTOR:
        return _vector(f, value)
    raise _Reject(
        f"field [{f.name}] of type [{t.value}] cannot hold {_describe(value)} (JSON {type(value).__name__})"
    )


def _geo_point(f: Field, value: Any) -> dict[str, float]:
    lat: Any
    lon: Any
    if isinstance(value, dict) and set(value) == {"lat", "lon"}:
        lat, lon = value["lat"], value["lon"]
    elif isinstance(value, str) and value.count(",") == 1:
        try:
            lat, lon = (float(p) for p in value.split(","))
        except ValueError:
            raise _Reject(f"field [{f.name}]: cannot parse geo_point {_describe(value)}") from None
    elif isinstance(value, list) and len(value) == 2:
        lon, lat = value
    else:
        raise _Reject(
            f"field [{f.name}]: geo_point must be {{lat, lon}}, 'lat,lon' or [lon, lat],"
            f" got {_describe(value)}"
        )
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon))
    if not ok or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _Reject(f"field [{f.name}]: invalid geo_point coordinates {_describe(value)}")
    return {"lat": float(lat), "lon": float(lon)}


def _vector(f: Field, value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) != f.dims:
        raise _Reject(f"field [{f.name}]: dense_vector needs exactly {f.dims} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _Reject(f"field [{f.name}]: dense_vector values must be numbers")
    return [float(v) for v in value]


class _Flattener:
    """Walks one document at a time against a mapping that may grow as it goes."""

    def __init__(self, mapping: Mapping, *, dynamic: bool) -> None:
        self.fields = dict(mapping.fields)
        self.dynamic = dynamic
        self.changed: dict[str, Field] = {}

    def mapping(self) -> Mapping:
        return Mapping(self.fields)

    def _field_for(self, name: str, sample: Any, is_list: bool) -> Field:
        known = self.fields.get(name)
        if known is not None:
            if is_list and not known.array and known.type not in _LIST_VALUED:
                known = widen(known, True)
                self._set(known)
            return known
        if not self.dynamic:
            raise _Reject(f"mapping is strict and field [{name}] is not declared")
        try:
            validate_field_name(name)
        except MappingError as exc:
            raise _Reject(exc.reason) from None
        clash = parent_conflict(Mapping(self.fields), name)
        if clash is not None:
            raise _Reject(f"field [{name}] conflicts with existing field [{clash}] (object vs value)")
        if isinstance(sample, dict):
            new = Field(name, FieldType.NESTED, array=True, properties=Mapping())
        else:
            new = Field(name, infer_type(sample), array=is_list)
        self._set(new)
        return new

    def _widen(self, f: Field, values: Sequence[Any]) -> Field:
        """A ``long`` field that receives a fraction becomes ``double`` (no value changes:
        integers below 2**53 are exact doubles); JSON clients rarely tell 30 from 30.0."""
        if f.type is FieldType.LONG and any(
            isinstance(v, float) and math.isfinite(v) and not v.is_integer() for v in values
        ):
            f = replace(f, type=FieldType.DOUBLE)
            self._set(f)
        return f

    def _set(self, f: Field) -> None:
        self.fields[f.name] = f
        self.changed[f.name] = f

    def flatten(self, doc: dict[str, Any], out: dict[str, Any], prefix: str = "") -> None:
        for key, value in doc.items():
            if not isinstance(key, str) or not key:
                raise _Reject(f"field names must be non-empty strings, got {_describe(key)}")
            name = prefix + key
            if value is None:
                continue
            known = self.fields.get(name)
            if isinstance(value, dict) and (known is None or known.type is not FieldType.GEO_POINT):
                if known is not None and known.type is FieldType.NESTED:
                    out[name] = self._nested(known, [value])
                    continue
                if known is not None:
                    raise _Reject(f"field [{name}] of type [{known.type.value}] cannot hold an object")
                self.flatten(value, out, name + ".")
                continue
            if isinstance(value, list):
                self._list(name, value, known, out)
                continue
            f = self._widen(known or self._field_for(name, value, False), (value,))
            stored = convert(f, value)
            out[name] = [stored] if f.array and f.type is not FieldType.NESTED else stored

    def _list(self, name: str, value: list[Any], known: Field | None, out: dict[str, Any]) -> None:
        if known is not None and known.type in _LIST_VALUED:
            if known.type is FieldType.NESTED:
                out[name] = self._nested(known, value)
            else:
                out[name] = convert(known, value)
            return
        items = [v for v in value if v is not None]
        if not items:
            return
        if known is None and any(isinstance(v, dict) for v in items):
            if not all(isinstance(v, dict) for v in items):
                raise _Reject(f"field [{name}] mixes objects and values in one array")
            out[name] = self._nested(self._field_for(name, items[0], True), items)
            return
        f = self._widen(self._field_for(name, items[0], True), items)
        if any(isinstance(v, (list, dict)) for v in items):
            raise _Reject(f"field [{name}]: arrays of arrays or objects are not supported here")
        out[name] = [convert(f, v) for v in items]

    def _nested(self, f: Field, objects: list[Any]) -> list[dict[str, Any]]:
        inner = _Flattener(f.properties or Mapping(), dynamic=self.dynamic)
        rows = []
        for obj in objects:
            if not isinstance(obj, dict):
                raise _Reject(f"nested field [{f.name}] holds objects, got {_describe(obj)}")
            row: dict[str, Any] = {}
            try:
                inner.flatten(obj, row)
            except _Reject as exc:
                raise _Reject(f"in nested field [{f.name}]: {exc}") from None
            if any(sub.type is FieldType.NESTED for sub in inner.changed.values()):
                raise _Reject(f"nested field [{f.name}] cannot contain arrays of objects")
            rows.append(row)
        if inner.changed:
            self._set(Field(f.name, FieldType.NESTED, array=True, properties=inner.mapping()))
        return rows


_LIST_VALUED = frozenset({FieldType.NESTED, FieldType.DENSE_VECTOR, FieldType.GEO_POINT})


def prepare_documents(
    docs: Sequence[Any],
    mapping: Mapping,
    *,
    new_id: Callable[[], str],
    dynamic: bool = True,
    positions: Sequence[int] | None = None,
) -> Batch:
    """Validate and flatten a batch of documents against ``mapping``.

    Documents are independent: one that fails leaves the mapping as it was before it, so
    a rejected document never adds a column. ``positions`` are the documents' positions in
    the request (for error reports) when they are not simply 0, 1, 2, ...
    """
    batch = Batch()
    flattener = _Flattener(mapping, dynamic=dynamic)
    seen: set[str] = set()
    for offset, doc in enumerate(docs):
        position = positions[offset] if positions is not None else offset
        doc_id: str | None = None
        if not isinstance(doc, dict):
            batch.errors.append(
                ItemError(position, "mapper_parsing_exception", "a document must be a JSON object")
            )
            continue
        snapshot = (dict(flattener.fields), dict(flattener.changed))
        try:
            doc_id = _document_id(doc, new_id)
            body = {k: v for k, v in doc.items() if k != ID_FIELD}
            row: dict[str, Any] = {}
            flattener.flatten(body, row)
        except _Reject as exc:
            flattener.fields, flattener.changed = snapshot
            batch.errors.append(ItemError(position, "mapper_parsing_exception", str(exc), doc_id))
            continue
        if doc_id in seen:
            batch.duplicates.append(position)
            continue
        seen.add(doc_id)
        row[ID_FIELD] = doc_id
        batch.rows.append(row)
        batch.positions.append(position)
    batch.mapping = flattener.mapping()
    batch.changed = list(flattener.changed.values())
    return batch


def _document_id(doc: dict[str, Any], new_id: Callable[[], str]) -> str:
    raw = doc.get(ID_FIELD)
    if raw is None:
        return new_id()
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise _Reject("[_id] must be a string or an integer")
    text = str(raw)
    if not text or len(text) > 512:
        raise _Reject("[_id] must be 1 to 512 characters")
    return text

"""Collection mappings: the typed schema of a collection, in the Elasticsearch style.

A mapping is a flat, ordered set of leaf fields keyed by dotted path (``user.country``):
``object`` fields exist only as prefixes, because each leaf is its own typed column. A
``nested`` field keeps a list of objects together (one column holding a list of structs)
and carries its own sub-mapping. Field names are validated here, once, so that no name
that reaches the SQL layer can be anything but a plain dotted identifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from aggregata.errors import MappingError


class FieldType(StrEnum):
    KEYWORD = "keyword"
    TEXT = "text"
    LONG = "long"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATE = "date"
    GEO_POINT = "geo_point"
    DENSE_VECTOR = "dense_vector"
    NESTED = "nested"


# Elasticsearch type names we accept and the type that stores them.
TYPE_ALIASES: dict[str, FieldType] = {
    **{t.value: t for t in FieldType},
    "integer": FieldType.LONG,
    "short": FieldType.LONG,
    "byte": FieldType.LONG,
    "unsigned_long": FieldType.LONG,
    "float": FieldType.DOUBLE,
    "half_float": FieldType.DOUBLE,
    "scaled_float": FieldType.DOUBLE,
    "date_nanos": FieldType.DATE,
    "constant_keyword": FieldType.KEYWORD,
    "wildcard": FieldType.KEYWORD,
    "match_only_text": FieldType.TEXT,
}

NUMERIC_TYPES = frozenset({FieldType.LONG, FieldType.DOUBLE})

# Reserved columns every collection has; user fields may not start with an underscore.
ID_FIELD = "_id"

_SEGMENT = re.compile(r"[A-Za-z0-9$@][A-Za-z0-9_$@\-]*")
MAX_FIELD_NAME = 255


def validate_field_name(name: str) -> str:
    """Reject any field name that is not a dotted path of plain segments.

    Names are quoted by sqlglot anyway; validating as well keeps hostile or confusing names
    (quotes, semicolons, whitespace, empty segments) out of the catalog and error messages.
    """
    if not name or len(name) > MAX_FIELD_NAME:
        raise MappingError(f"field name [{name[:40]}] must be 1 to {MAX_FIELD_NAME} characters")
    for segment in name.split("."):
        if not _SEGMENT.fullmatch(segment):
            raise MappingError(
                f"invalid field name [{name}]: each dot-separated part must start with a letter,"
                " digit, '$' or '@' and contain only letters, digits, '_', '-', '$' or '@'"
            )
    return name


@dataclass(frozen=True)
class Field:
    """One leaf field: its dotted name, type, whether it holds arrays, and type parameters."""

    name: str
    type: FieldType
    array: bool = False
    dims: int | None = None
    properties: Mapping | None = None

    def to_es(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value}
        if self.dims is not None:
            out["dims"] = self.dims
        if self.properties is not None:
            out["properties"] = self.properties.to_es()["properties"]
        return out

    def to_json(self) -> dict[str, Any]:
        """Lossless form stored in the catalog (unlike ``to_es`` it keeps ``array``)."""
        out: dict[str, Any] = {"type": self.type.value}
        if self.array:
            out["array"] = True
        if self.dims is not None:
            out["dims"] = self.dims
        if self.properties is not None:
            out["properties"] = self.properties.to_json()
        return out

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> Field:
        props = data.get("properties")
        return cls(
            name=name,
            type=FieldType(data["type"]),
            array=bool(data.get("array", False)),
            dims=data.get("dims"),
            properties=Mapping.from_json(props) if props is not None else None,
        )


@dataclass(frozen=True)
class Mapping:
    """An ordered set of leaf fields. Immutable: evolving a mapping returns a new one."""

    fields: dict[str, Field] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields.values())

    def __len__(self) -> int:
        return len(self.fields)

    def get(self, name: str) -> Field | None:
        return self.fields.get(name)

    def resolve(self, name: str) -> Field:
        """The field called ``name``; an unknown name is a 400 that names it."""
        found = self.fields.get(name)
        if found is None:
            raise MappingError(f"no such field [{name}] in the mapping", type="illegal_argument_exception")
        return found

    def with_fields(self, *new: Field) -> Mapping:
        merged = dict(self.fields)
        for f in new:
            merged[f.name] = f
        return Mapping(merged)

    def is_object_prefix(self, name: str) -> bool:
        prefix = name + "."
        return any(n.startswith(prefix) for n in self.fields)

    def to_es(self) -> dict[str, Any]:
        """The hierarchical ``{"properties": ...}`` form Elasticsearch returns."""
        root: dict[str, Any] = {}
        for f in self.fields.values():
            *parents, leaf = f.name.split(".")
            node = root
            for part in parents:
                node = node.setdefault(part, {"properties": {}})["properties"]
            node[leaf] = f.to_es()
        return {"properties": root}

    def to_json(self) -> dict[str, Any]:
        return {name: f.to_json() for name, f in self.fields.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mapping:
        return cls({name: Field.from_json(name, spec) for name, spec in data.items()})

    @classmethod
    def from_es(cls, body: dict[str, Any] | None) -> Mapping:
        """Parse an Elasticsearch mapping (``{"properties": {...}}``, objects nested)."""
        if not body:
            return cls()
        if not isinstance(body, dict):
            raise MappingError("mappings must be an object")
        props = body.get("properties", body)
        if not isinstance(props, dict):
            raise MappingError("[properties] must be an object")
        return cls(dict(_parse_properties(props, prefix="", inside_nested=False)))


def _parse_properties(
    props: dict[str, Any], *, prefix: str, inside_nested: bool
) -> Iterator[tuple[str, Field]]:
    for key, spec in props.items():
        name = validate_field_name(prefix + str(key))
        if not isinstance(spec, dict):
            raise MappingError(f"mapping of field [{name}] must be an object")
        type_name = spec.get("type", "object" if "properties" in spec else None)
        if type_name == "object":
            sub = spec.get("properties", {})
            if not isinstance(sub, dict):
                raise MappingError(f"[properties] of [{name}] must be an object")
            yield from _parse_properties(sub, prefix=name + ".", inside_nested=inside_nested)
            continue
        ftype = TYPE_ALIASES.get(str(type_name))
        if ftype is None:
            raise MappingError(f"no handler for type [{type_name}] declared on field [{name}]")
        if ftype is FieldType.NESTED:
            if inside_nested:
                raise MappingError(f"field [{name}]: nested inside nested is not supported")
            sub = spec.get("properties", {})
            if not isinstance(sub, dict):
                raise MappingError(f"[properties] of [{name}] must be an object")
            inner = Mapping(dict(_parse_properties(sub, prefix="", inside_nested=True)))
            yield name, Field(name, ftype, array=True, properties=inner)
        elif ftype is FieldType.DENSE_VECTOR:
            dims = spec.get("dims")
            if not isinstance(dims, int) or not 1 <= dims <= 4096:
                raise MappingError(f"field [{name}]: dense_vector needs [dims] between 1 and 4096")
            yield name, Field(name, ftype, dims=dims)
        else:
            yield name, Field(name, ftype, array=bool(spec.get("array", False)))


def parent_conflict(mapping: Mapping, name: str) -> str | None:
    """A leaf cannot also be an object: ``a`` and ``a.b`` cannot both be fields."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        if ".".join(parts[:i]) in mapping:
            return ".".join(parts[:i])
    if mapping.is_object_prefix(name):
        return name
    return None


def widen(existing: Field, array: bool) -> Field:
    """A field that received an array becomes an array field (values are kept, never dropped)."""
    return existing if existing.array or not array else replace(existing, array=True)

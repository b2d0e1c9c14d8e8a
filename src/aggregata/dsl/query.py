"""The Elasticsearch query DSL parsed into a small typed tree (no SQL, no IO).

Each clause is a frozen dataclass; ``parse_query`` turns the JSON body into that tree and
raises ``ParsingError`` with Elasticsearch's wording for anything it does not understand,
so a typo is a 400 that names the clause, never a silently ignored filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aggregata.errors import ParsingError

Scalar = str | int | float | bool


class Query:
    """Base class of query clauses."""


@dataclass(frozen=True)
class MatchAll(Query):
    pass


@dataclass(frozen=True)
class MatchNone(Query):
    pass


@dataclass(frozen=True)
class Term(Query):
    field: str
    value: Scalar
    case_insensitive: bool = False


@dataclass(frozen=True)
class Terms(Query):
    field: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range(Query):
    field: str
    gt: Scalar | None = None
    gte: Scalar | None = None
    lt: Scalar | None = None
    lte: Scalar | None = None
    format: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True)
class Exists(Query):
    field: str


@dataclass(frozen=True)
class Ids(Query):
    values: tuple[str, ...]


@dataclass(frozen=True)
class Bool(Query):
    must: tuple[Query, ...] = ()
    filter: tuple[Query, ...] = ()
    should: tuple[Query, ...] = ()
    must_not: tuple[Query, ...] = ()
    minimum_should_match: int | str | None = None


@dataclass(frozen=True)
class Parsers:
    """The registry of clause parsers; later query families register here the same way."""

    by_name: dict[str, Callable[[Any], Query]] = field(default_factory=dict)

    def register(self, name: str) -> Callable[[Callable[[Any], Query]], Callable[[Any], Query]]:
        def add(fn: Callable[[Any], Query]) -> Callable[[Any], Query]:
            self.by_name[name] = fn
            return fn

        return add


PARSERS = Parsers()


def parse_query(body: Any) -> Query:
    """Parse one query clause: an object with exactly one key naming the clause."""
    if body is None:
        return MatchAll()
    if not isinstance(body, dict) or len(body) != 1:
        raise ParsingError('a query must be an object with exactly one clause, like {"term": {...}}')
    ((name, spec),) = body.items()
    parser = PARSERS.by_name.get(name)
    if parser is None:
        raise ParsingError(f"unknown query [{name}]", type="parsing_exception")
    return parser(spec)


def _object(name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ParsingError(f"[{name}] query malformed, no start_object after query name")
    return spec


def _single_field(name: str, spec: Any, *, extras: frozenset[str] = frozenset()) -> tuple[str, Any]:
    spec = _object(name, spec)
    fields = [k for k in spec if k not in extras and k not in {"boost", "_name"}]
    if len(fields) != 1:
        raise ParsingError(f"[{name}] query doesn't support multiple fields, found {fields}")
    return fields[0], spec[fields[0]]


def _scalar(name: str, value: Any) -> Scalar:
    if isinstance(value, (str, int, float, bool)):
        return value
    raise ParsingError(f"[{name}] value must be a string, number or boolean, got {value!r}")


@PARSERS.register("match_all")
def _match_all(spec: Any) -> Query:
    _object("match_all", spec)
    return MatchAll()


@PARSERS.register("match_none")
def _match_none(spec: Any) -> Query:
    _object("match_none", spec)
    return MatchNone()


@PARSERS.register("term")
def _term(spec: Any) -> Query:
    fname, value = _single_field("term", spec)
    insensitive = False
    if isinstance(value, dict):
        unknown = set(value) - {"value", "boost", "case_insensitive", "_name"}
        if unknown or "value" not in value:
            raise ParsingError(f"[term] query does not support {sorted(unknown) or 'a missing [value]'}")
        insensitive = bool(value.get("case_insensitive", False))
        value = value["value"]
    return Term(fname, _scalar("term", value), insensitive)


@PARSERS.register("terms")
def _terms(spec: Any) -> Query:
    fname, values = _single_field("terms", spec)
    if not isinstance(values, list):
        raise ParsingError("[terms] query requires an array of values for the field")
    return Terms(fname, tuple(_scalar("terms", v) for v in values))


_RANGE_KEYS = {"gt", "gte", "lt", "lte", "from", "to", "include_lower", "include_upper"}


@PARSERS.register("range")
def _range(spec: Any) -> Query:
    fname, bounds = _single_field("range", spec)
    if not isinstance(bounds, dict):
        raise ParsingError("[range] query malformed, expected an object of bounds")
    unknown = set(bounds) - _RANGE_KEYS - {"format", "time_zone", "boost", "relation", "_name"}
    if unknown:
        raise ParsingError(f"[range] query does not support [{sorted(unknown)[0]}]")
    b = {k: _scalar("range", v) for k, v in bounds.items() if k in _RANGE_KEYS and v is not None}
    gt, gte, lt, lte = b.get("gt"), b.get("gte"), b.get("lt"), b.get("lte")
    if "from" in b:
        gte, gt = (b["from"], None) if bounds.get("include_lower", True) else (None, b["from"])
    if "to" in b:
        lte, lt = (b["to"], None) if bounds.get("include_upper", True) else (None, b["to"])
    fmt, tz = bounds.get("format"), bounds.get("time_zone")
    return Range(fname, gt, gte, lt, lte, str(fmt) if fmt else None, str(tz) if tz else None)


@PARSERS.register("exists")
def _exists(spec: Any) -> Query:
    spec = _object("exists", spec)
    fname = spec.get("field")
    if not isinstance(fname, str):
        raise ParsingError("[exists] must be provided with a [field]")
    return Exists(fname)


@PARSERS.register("ids")
def _ids(spec: Any) -> Query:
    spec = _object("ids", spec)
    values = spec.get("values")
    if not isinstance(values, list):
        raise ParsingError("[ids] requires an array of [values]")
    return Ids(tuple(str(v) for v in values))


def _clauses(spec: Any) -> tuple[Query, ...]:
    items = spec if isinstance(spec, list) else [spec]
    return tuple(parse_query(item) for item in items)


@PARSERS.register("bool")
def _bool(spec: Any) -> Query:
    spec = _object("bool", spec)
    unknown = set(spec) - {
        "must",
        "filter",
        "should",
        "must_not",
        "minimum_should_match",
        "boost",
        "_name",
    }
    if unknown:
        raise ParsingError(f"[bool] query does not support [{sorted(unknown)[0]}]")
    msm = spec.get("minimum_should_match")
    if msm is not None and not isinstance(msm, (int, str)):
        raise ParsingError("[minimum_should_match] must be an integer or a percentage")
    return Bool(
        must=_clauses(spec.get("must", [])),
        filter=_clauses(spec.get("filter", [])),
        should=_clauses(spec.get("should", [])),
        must_not=_clauses(spec.get("must_not", [])),
        minimum_should_match=msm,
    )


@PARSERS.register("constant_score")
def _constant_score(spec: Any) -> Query:
    spec = _object("constant_score", spec)
    if "filter" not in spec:
        raise ParsingError("[constant_score] requires a [filter]")
    return Bool(filter=_clauses(spec["filter"]))

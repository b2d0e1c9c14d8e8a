"""One aggregation's parameters, declared once: each field of a spec says how it is read.

Every aggregation type is a frozen dataclass subclassing ``AggSpec`` (subclassing makes it
one) and names its type in the class statement, which also registers it for
``parse_aggs``::

    from aggregata.dsl.aggs import params as p

    class Nested(BucketSpec, type_name="nested"):
        path: str = p.string()

Each field is declared with its reader (``field_name``, ``string``, ``integer``,
``number``, ``flag``, ``scalar``, or ``param`` with a function) and its default, and
``AggSpec.parse`` reads them all the same way: typed, validated, and a 400 naming the
parameter. Fields marked ``first`` are read before the others (of several mistakes, the
first read is the one reported). A type whose parameters depend on each other in ways a
reader cannot see (``filters``) overrides ``parse``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar, Self, cast, dataclass_transform

from aggregata.errors import ParsingError

Scalar = str | int | float | bool

MAX_INT = 2**31 - 1
"""Sizes are Java ints in Elasticsearch; anything larger is a parse error there too."""


class KeyReader:
    """An aggregation's parameter object, read key by key: ``done`` makes any key nobody
    read a 400 naming it. Shared by the aggregation specs (``Reader``) and the pipeline
    aggregations (``search/pipeline/base.py:Body``), which add their own typed readers."""

    def __init__(self, type_name: str, name: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise ParsingError(f"[{type_name}] aggregation [{name}] must be an object, got {json_kind(body)}")
        self.type = type_name
        self.name = name
        self.body: dict[str, Any] = body
        self.seen: set[str] = set()

    def raw(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        value = self.body.get(key, default)
        return default if value is None else value

    def fail(self, message: str) -> ParsingError:
        return ParsingError(f"[{self.type}] aggregation [{self.name}]: {message}")

    def done(self) -> None:
        unknown = [k for k in self.body if k not in self.seen]
        if unknown:
            raise ParsingError(f"[{self.type}] unknown field [{unknown[0]}] in aggregation [{self.name}]")


class Reader(KeyReader):
    """Reads one aggregation's parameters; every key must be consumed or it is a 400 naming it."""

    def __init__(self, type_name: str, name: str, body: Any) -> None:
        super().__init__(type_name, name, body)
        # The values ``AggSpec.parse`` has read so far, by field: for readers of dependent parameters.
        self.parsed: dict[str, Any] = {}

    def has(self, key: str) -> bool:
        return key in self.body

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.fail(f"[{key}] is required")
            return default
        if not isinstance(value, str):
            raise self.fail(f"[{key}] must be a string, got {json_kind(value)}")
        return value

    def field(self) -> str:
        if self.has("script"):
            raise self.fail("scripts are not supported; use a [field]")
        value = self.string("field", required=True)
        assert value is not None
        return value

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"[{key}] must be an integer, got {json_kind(value)}")
        if value > MAX_INT:
            raise self.fail(f"[{key}] must be at most {MAX_INT}, got [{value}]")
        if value < minimum:
            raise self.fail(f"[{key}] must be greater than or equal to {minimum}, found [{value}]")
        return value

    def number(
        self, key: str, default: float | None = None, *, positive: bool = False, required: bool = False
    ) -> float | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.fail(f"[{key}] must be provided")
            return default
        number = number_value(value)
        if number is None:
            raise self.fail(f"[{key}] must be a number, got {json_kind(value)}")
        if positive and number <= 0:
            raise self.fail(f"[{key}] must be greater than 0, found [{value}]")
        return number

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise self.fail(f"[{key}] must be a boolean, got {json_kind(value)}")
        return value

    def scalar(self, key: str) -> Scalar | None:
        value = self.raw(key)
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise self.fail(f"[{key}] must be a string, number or boolean, got {json_kind(value)}")

    def ignore(self, *keys: str) -> None:
        """Parameters that only tune Elasticsearch's execution (shard sizes, hints)."""
        self.seen.update(keys)


def number_value(value: Any) -> float | None:
    """A finite JSON number (or numeric string) as a float; ``None`` if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def json_kind(value: Any) -> str:
    """What a JSON value is, for messages: ``an object``, ``a string``, ..."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else "null"
    )


# -- declaring parameters ----------------------------------------------------------------------

ReadFn = Callable[[Reader, str], Any]
"""``read(reader, key)``: the parameter's value, or ``None`` when absent (the field's default)."""
_PARAM = "aggregata.param"
_MISSING: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class Param:
    """How one field is read: its reader, its request key (default: the field's name), its turn."""

    read: ReadFn
    key: str | None = None
    first: bool = False


def param(
    read: ReadFn,
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    key: str | None = None,
    first: bool = False,
) -> Any:
    """A field read by ``read``; without ``default`` (or ``default_factory``) it is required."""
    metadata = {_PARAM: Param(read, key, first)}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_name() -> Any:
    """The ``field`` the aggregation reads (required; scripts are refused)."""
    return param(lambda r, _: r.field())


def string(*, default: str | None = _MISSING) -> Any:
    """A string; without ``default`` it is required (``[key] is required``)."""
    if default is _MISSING:
        return param(lambda r, key: r.string(key, required=True))
    return param(lambda r, key: r.string(key, default), default=default)


def integer(*, default: int, minimum: int = 0, first: bool = False) -> Any:
    """An integer (numeric strings too) between ``minimum`` and ``MAX_INT``."""
    return param(lambda r, key: r.integer(key, default, minimum=minimum), default=default, first=first)


def number(*, default: float = _MISSING, positive: bool = False, first: bool = False) -> Any:
    """A finite number; without ``default`` it is required (``[key] must be provided``)."""
    required = default is _MISSING

    def read(r: Reader, key: str) -> float | None:
        return r.number(key, None if required else default, positive=positive, required=required)

    return param(read, default=default, first=first)


def flag(*, default: bool) -> Any:
    """A boolean (``"true"``/``"false"`` too)."""
    return param(lambda r, key: r.flag(key, default), default=default)


def scalar(*, default: None = None) -> Any:
    """A string, number or boolean, kept as written (``missing``: the value of documents without one)."""
    return param(lambda r, key: r.scalar(key), default=default)


SPECS: dict[str, type[AggSpec]] = {}
"""Every aggregation type by name; a subclass of ``AggSpec`` with a ``type_name`` adds itself."""


@dataclass_transform(
    frozen_default=True, field_specifiers=(param, field_name, string, integer, number, flag, scalar)
)
class AggSpec:
    """Base of the typed parameters of one aggregation type; each subclass is a frozen dataclass.

    ``class Avg(SimpleMetric, type_name="avg")`` registers the type; ``ignore`` names the
    parameters that only tune Elasticsearch's execution (accepted, not used).
    """

    type_name: ClassVar[str] = ""
    is_bucket: ClassVar[bool] = False
    ignored: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[tuple[str, Param], ...]] = ()
    """(field, how it is read) in reading order: ``first`` ones first, then declaration order."""

    def __init_subclass__(
        cls, *, type_name: str | None = None, ignore: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        fields = dataclasses.fields(dataclasses.dataclass(frozen=True)(cast(Any, cls)))
        cls.ignored = (*cls.ignored, *ignore)
        reads = [(f.name, f.metadata[_PARAM]) for f in fields if _PARAM in f.metadata]
        cls.reads = tuple(sorted(reads, key=lambda read: not read[1].first))
        if type_name is None:
            return
        own_parse = next(k for k in cls.__mro__ if "parse" in vars(k)) is not AggSpec
        unread = [f.name for f in fields if f.init and _PARAM not in f.metadata]
        if unread and not own_parse:
            raise TypeError(f"{cls.__name__}: fields {unread} have no reader; declare one or override parse")
        cls.type_name = type_name
        SPECS[type_name] = cls

    @classmethod
    def parse(cls, r: Reader) -> Self:
        """Read every declared parameter; an absent one keeps the field's default."""
        r.ignore(*cls.ignored)
        for name, how in cls.reads:
            value = how.read(r, how.key or name)
            if value is not None:
                r.parsed[name] = value
        return cls(**r.parsed)

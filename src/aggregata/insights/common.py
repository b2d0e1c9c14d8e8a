"""Building blocks every insight shares: the event schema, property filters, date ranges.

Pure: no IO, no settings, no clock (``now`` is an argument). Property names resolve
against the collection's mapping and enter trees only as quoted identifiers; values are
bound with ``Params``.

Property resolution follows PostHog: ``country`` means the event property
``properties.country`` when the collection has it, else a top-level field of that name
(``distinct_id``, ``hour_of_day``); ``properties.country`` may also be written out.

Unknown properties do not fail the request (a property that no event has sent yet is not
an error in product analytics): a positive condition on one (``eq``, ``gt``, ``is_set``,
...) matches nothing, a negative one (``neq``, ``not_in``, ``is_not_set``) matches
everything, because "not equal to X" is true of a missing value. The same rule applies to
events *without* the property when the collection does have it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlglot import exp

from aggregata.dsl.datemath import DateMathError, parse_date, parse_relative
from aggregata.errors import BadRequest
from aggregata.insights.models import NEGATIVE_OPERATORS, Filter, FilterGroup, PropertyFilter
from aggregata.model.mapping import Field, FieldType, Mapping
from aggregata.sql.dialects import ToNumber, ToTimestamp
from aggregata.sql.params import Params
from aggregata.sql.query import coerce_value, col
from aggregata.storage.engine import Collection

PROPERTIES_PREFIX = "properties."
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class EventSchema:
    """Which fields of a collection hold an event's time, name and actor."""

    collection: str
    timestamp: str
    event: str
    actor: str
    mapping: Mapping

    def column(self, name: str) -> exp.Column:
        return col(name)


def timezone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name`` (default UTC); an unknown name is a 400 naming it."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"unknown time zone [{name}]: use an IANA name such as Europe/Berlin") from None


def resolve_field(mapping: Mapping, name: str) -> Field | None:
    """The field a property name means: ``properties.<name>`` first, then ``<name>``."""
    return mapping.get(PROPERTIES_PREFIX + name) or mapping.get(name)


def event_schema(coll: Collection, actor: str | None = None) -> EventSchema:
    """The event schema of ``coll`` from its settings; 400 when it is not an event collection.

    ``actor`` names another field to count unique actors by (``session_id`` or
    ``properties.session_id``); it must be a scalar field of the collection.
    """
    settings = coll.settings
    names = {key: settings.get(f"{key}_field") for key in ("timestamp", "event", "actor")}
    missing = [f"{key}_field" for key, value in names.items() if not isinstance(value, str)]
    if missing:
        raise BadRequest(f"collection [{coll.name}] is not an event collection: its settings lack {missing}")
    ts = coll.mapping.get(str(names["timestamp"]))
    if ts is None or ts.type is not FieldType.DATE:
        raise BadRequest(f"collection [{coll.name}]: timestamp field [{names['timestamp']}] is not a date")
    actor_name = str(names["actor"])
    if actor:
        found = resolve_field(coll.mapping, actor)
        if found is None or found.array or found.type in _UNFILTERABLE:
            raise BadRequest(f"unknown actor field [{actor}] in collection [{coll.name}]")
        actor_name = found.name
    return EventSchema(coll.name, str(names["timestamp"]), str(names["event"]), actor_name, coll.mapping)


def property_column(schema: EventSchema, name: str) -> exp.Expr | None:
    """The column a property name means, or None when the collection has no such field."""
    found = resolve_field(schema.mapping, name)
    return col(found.name) if found is not None else None


def event_condition(schema: EventSchema, event: str | None, params: Params) -> exp.Expr:
    """Rows of event ``event`` (None: every event)."""
    if event is None:
        return exp.true()
    if schema.event not in schema.mapping:
        return exp.false()
    return exp.EQ(this=col(schema.event), expression=params.bind(event))


# -- filters ---------------------------------------------------------------------------------

_UNFILTERABLE = frozenset({FieldType.NESTED, FieldType.GEO_POINT, FieldType.DENSE_VECTOR})
_NUMERIC = frozenset({FieldType.LONG, FieldType.DOUBLE})
_TEXT = frozenset({FieldType.KEYWORD, FieldType.TEXT})
_COMPARE: dict[str, type[exp.Binary]] = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}


@dataclass(frozen=True)
class _Ctx:
    schema: EventSchema
    params: Params
    now: datetime | None
    tz: ZoneInfo


def compile_filters(
    filters: list[Filter],
    schema: EventSchema,
    params: Params,
    *,
    now: datetime | None = None,
    tz: ZoneInfo | None = None,
) -> exp.Expr:
    """One condition: every filter must hold (``TRUE`` for no filters).

    ``now`` and ``tz`` serve relative dates in ``is_date_before``/``is_date_after``
    (``-7d``); without ``now`` only absolute dates are accepted there.
    """
    ctx = _Ctx(schema, params, now, tz or ZoneInfo("UTC"))
    parts = [_compile(f, ctx) for f in filters]
    return exp.and_(*parts) if parts else exp.true()


def _compile(f: Filter, ctx: _Ctx) -> exp.Expr:
    if isinstance(f, FilterGroup):
        parts: list[exp.Expr] = []
        if f.and_ is not None:
            parts.append(exp.and_(*[_compile(x, ctx) for x in f.and_]) if f.and_ else exp.true())
        if f.or_ is not None:
            parts.append(exp.or_(*[_compile(x, ctx) for x in f.or_]) if f.or_ else exp.false())
        return exp.Paren(this=exp.and_(*parts))
    return _property(f, ctx)


def _property(f: PropertyFilter, ctx: _Ctx) -> exp.Expr:
    negative = f.operator in NEGATIVE_OPERATORS
    field = resolve_field(ctx.schema.mapping, f.property)
    if field is None:
        return exp.true() if negative else exp.false()
    if field.type in _UNFILTERABLE:
        raise BadRequest(
            f"cannot filter on [{f.property}]: fields of type [{field.type.value}] are not supported"
        )
    op = {"neq": "eq", "not_in": "in", "is_not_set": "is_set"}.get(f.operator, f.operator)
    if op == "eq" and isinstance(f.value, list):
        op = "in"
    predicate = _predicate(op, f, field, ctx)
    positive = _any_element(field, predicate)
    if negative:
        return exp.Not(this=exp.Coalesce(this=positive, expressions=[exp.false()]))
    return exp.Coalesce(this=positive, expressions=[exp.false()])


def _any_element(f: Field, predicate: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """``predicate`` on the column, or on any element when the field holds arrays."""
    if not f.array:
        return predicate(col(f.name))
    x = exp.to_identifier("x")
    lam = exp.Lambda(this=predicate(exp.column(x)), expressions=[x.copy()])
    return exp.GT(
        this=exp.ArraySize(this=exp.ArrayFilter(this=col(f.name), expression=lam)),
        expression=exp.Literal.number(0),
    )


def _predicate(op: str, f: PropertyFilter, field: Field, ctx: _Ctx) -> Callable[[exp.Expr], exp.Expr]:
    """The positive condition of ``op`` on one value ``c`` of ``field``."""
    if op == "is_set":
        return lambda c: exp.Not(this=exp.Is(this=c, expression=exp.Null()))
    if op == "eq":
        bound = ctx.params.bind(_coerce(field, f.value, f))
        return lambda c: exp.EQ(this=c, expression=bound.copy())
    if op == "in":
        values = list(dict.fromkeys(_coerce(field, v, f) for v in f.value))
        bound_all = [ctx.params.bind(v) for v in values]
        return lambda c: exp.In(this=c, expressions=[b.copy() for b in bound_all])
    if op in _COMPARE or op == "between":
        return _range(op, f, field, ctx)
    if op in ("contains", "icontains"):
        needle = str(f.value).lower() if op == "icontains" else str(f.value)
        bound = ctx.params.bind(needle)

        def contains(c: exp.Expr) -> exp.Expr:
            text = c if field.type in _TEXT else exp.cast(c, "VARCHAR")
            hay = exp.Lower(this=text) if op == "icontains" else text
            return exp.GT(
                this=exp.StrPosition(this=hay, substr=bound.copy()), expression=exp.Literal.number(0)
            )

        return contains
    if op == "regex":
        try:
            re.compile(str(f.value))
        except re.error as exc:
            raise BadRequest(f"filter on [{f.property}]: invalid regular expression: {exc}") from None
        bound = ctx.params.bind(str(f.value))
        return lambda c: exp.RegexpLike(
            this=c if field.type in _TEXT else exp.cast(c, "VARCHAR"), expression=bound.copy()
        )
    if op in ("is_date_before", "is_date_after"):
        when = ctx.params.bind(_date_value(f, ctx))
        node = exp.LT if op == "is_date_before" else exp.GT

        def dated(c: exp.Expr) -> exp.Expr:
            value = c if field.type is FieldType.DATE else ToTimestamp(this=c)
            return node(this=value, expression=when.copy())

        if field.type not in (FieldType.DATE, *_TEXT):
            raise BadRequest(f"filter on [{f.property}]: [{op}] needs a date or text property")
        return dated
    raise BadRequest(f"unsupported filter operator [{op}]")  # pragma: no cover - Literal guards


def _range(op: str, f: PropertyFilter, field: Field, ctx: _Ctx) -> Callable[[exp.Expr], exp.Expr]:
    """gt/gte/lt/lte/between: numerically on numbers and text, in time on dates."""
    if op == "between":
        low, high = f.value
        bounds = [(exp.GTE, low), (exp.LTE, high)]
    else:
        bounds = [(_COMPARE[op], f.value)]
    converted: list[tuple[type[exp.Binary], exp.Expr]] = []
    for node, raw in bounds:
        if field.type is FieldType.DATE:
            value: Any = _date_value(
                PropertyFilter(property=f.property, operator="is_date_after", value=raw), ctx
            )
        elif field.type in _NUMERIC or field.type in _TEXT:
            value = _number(raw, f)
        else:
            raise BadRequest(f"filter on [{f.property}]: [{op}] needs a number or date property")
        converted.append((node, ctx.params.bind(value)))

    def within(c: exp.Expr) -> exp.Expr:
        value = ToNumber(this=c) if field.type in _TEXT else c
        return exp.and_(*[node(this=value.copy(), expression=b.copy()) for node, b in converted])

    return within


def _number(raw: Any, f: PropertyFilter) -> float:
    if isinstance(raw, bool):
        raise BadRequest(f"filter on [{f.property}]: [{f.operator}] needs a number, got [{raw}]")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"filter on [{f.property}]: [{f.operator}] needs a number, got [{raw}]") from None


def _coerce(field: Field, value: Any, f: PropertyFilter) -> Any:
    """A filter value in the property's type; values that cannot be are a 400 naming them."""
    if value is None or isinstance(value, (list, dict)):
        raise BadRequest(f"filter on [{f.property}]: [{f.operator}] needs scalar values, got [{value}]")
    coerced = coerce_value(field, value)
    if coerced is None:
        raise BadRequest(f"filter on [{f.property}]: [{value}] is not a value of type [{field.type.value}]")
    return coerced


def _date_value(f: PropertyFilter, ctx: _Ctx) -> datetime:
    """An absolute date, or a relative one (``-7d``) when ``now`` is known."""
    raw = f.value
    try:
        if isinstance(raw, str) and ctx.now is not None:
            return parse_relative(raw, now=ctx.now, tz=ctx.tz)
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            return parse_date(raw, tz=ctx.tz)
    except DateMathError as exc:
        raise BadRequest(f"filter on [{f.property}]: {exc}") from None
    raise BadRequest(f"filter on [{f.property}]: [{f.operator}] needs a date, got [{raw}]")


# -- date ranges -----------------------------------------------------------------------------

_DAY_GRANULAR = re.compile(r"-\d+[dwmy]|[dwmy]Start|\d{4}(-\d{2}(-\d{2})?)?", re.ASCII)
_HOUR_GRANULAR = re.compile(r"-\d+h", re.ASCII)
_MINUTE_GRANULAR = re.compile(r"-\d+M", re.ASCII)


def resolve_date_range(
    date_from: str | None,
    date_to: str | None,
    *,
    now: datetime,
    tz: ZoneInfo,
    default_from: str = "-7d",
) -> tuple[datetime, datetime]:
    """The half-open UTC range ``[start, end)`` a request's dates mean, PostHog-style.

    ``date_from``: ``-7d`` (local midnight 7 days ago, so "last 7 days" shows 8 calendar
    days as PostHog does), ``-24h`` (hour start), ``-3m`` months, ``-1y``, ``-2w``,
    ``dStart``/``wStart``/``mStart``/``yStart``, ``all`` (the epoch), or an ISO date/time
    (local to ``tz`` unless it has an offset). ``date_to``: None is ``now``; a day-grained
    form (``2024-01-31``, ``-1d``) includes that whole day, an hour form (``-2h``) that
    whole hour; a date-time is exact. ``date_to`` before ``date_from`` is a 400.
    """
    text_from = (date_from or default_from).strip()
    try:
        start = EPOCH if text_from == "all" else parse_relative(text_from, now=now, tz=tz)
        if date_to is None or not date_to.strip():
            end = now.astimezone(UTC)
        else:
            text_to = date_to.strip()
            end = parse_relative(text_to, now=now, tz=tz)
            if _DAY_GRANULAR.fullmatch(text_to):
                end = add_local_days(end, _days_in_unit(text_to, end, tz), tz)
            elif _HOUR_GRANULAR.fullmatch(text_to):
                end += timedelta(hours=1)
            elif _MINUTE_GRANULAR.fullmatch(text_to):
                end += timedelta(minutes=1)
    except DateMathError as exc:
        raise BadRequest(str(exc)) from None
    if end < start:
        raise BadRequest(f"[date_to] ({end.isoformat()}) is before [date_from] ({start.isoformat()})")
    return start, end


def _days_in_unit(text: str, start: datetime, tz: ZoneInfo) -> int:
    """How many local days a day-grained ``date_to`` covers: a month for ``2024-02``, etc."""
    local = start.astimezone(tz).date()
    if re.fullmatch(r"\d{4}", text):
        return (local.replace(year=local.year + 1) - local).days
    if re.fullmatch(r"\d{4}-\d{2}", text):
        nxt = local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
        return (nxt - local).days
    return 1


def add_local_days(instant: datetime, days: int, tz: ZoneInfo) -> datetime:
    """``instant`` moved by whole days on the wall clock of ``tz`` (DST-correct)."""
    local = instant.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(UTC)

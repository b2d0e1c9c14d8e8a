"""Quick looks at any collection: a date field as a time series, a field's value distribution.

``time_series``: documents (or ``sum``/``avg``/``min``/``max``/``median``/``pNN`` of a
numeric ``value_field``) per bucket of a date field, with the same buckets, date ranges and
time zones as trends. ``distribution``: the most frequent values of a field with counts
and percentages of all documents (an array field counts each element; ``missing``
documents have no value). Both accept ``filter.<field>=value`` equality filters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping as MappingABC
from datetime import datetime
from typing import Any

from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.insights.buckets import Bucketing, week_start
from aggregata.insights.common import (
    EventSchema,
    compile_filters,
    resolve_date_range,
    resolve_field,
    timezone,
)
from aggregata.insights.models import PropertyFilter
from aggregata.insights.trends import number
from aggregata.model.mapping import FieldType
from aggregata.sql.dialects import QuantileCont
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Collection, Engine

_AGGS: dict[str, type[exp.Func]] = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}
_PERCENTILE = re.compile(r"p(\d{1,2})|median")
MAX_SIZE = 1_000


def _schema(coll: Collection, ts: str) -> EventSchema:
    settings = coll.settings
    return EventSchema(
        coll.name,
        ts,
        str(settings.get("event_field", "")),
        str(settings.get("actor_field", "")),
        coll.mapping,
    )


def _filters(coll: Collection, args: MappingABC[str, str]) -> list[PropertyFilter]:
    return [
        PropertyFilter(property=key.removeprefix("filter."), operator="eq", value=value)
        for key, value in args.items()
        if key.startswith("filter.")
    ]


def _date_field(coll: Collection, name: str | None) -> str:
    if name is None:
        name = coll.settings.get("timestamp_field") or next(
            (f.name for f in coll.mapping if f.type is FieldType.DATE and not f.array), None
        )
        if name is None:
            raise BadRequest(f"collection [{coll.name}] has no date field for a time series")
    field = resolve_field(coll.mapping, str(name))
    if field is None or field.type is not FieldType.DATE or field.array:
        raise BadRequest(f"[field] must be a date field of collection [{coll.name}], got [{name}]")
    return field.name


def _math(math: str, value: exp.Expr | None) -> exp.Expr:
    if math == "count":
        return exp.Count(this=exp.Star())
    if value is None:
        return exp.Null()  # an unknown value field: no values, so zeros
    if math in _AGGS:
        return _AGGS[math](this=value)
    match = _PERCENTILE.fullmatch(math)
    if match is None:
        raise BadRequest(f"unknown math [{math}]; use count, sum, avg, min, max, median or p1…p99")
    q = 0.5 if math == "median" else int(match.group(1)) / 100
    return QuantileCont(this=value, quantile=exp.Literal.number(q))


def time_series(engine: Engine, name: str, args: MappingABC[str, str], *, now: datetime) -> dict[str, Any]:
    """``GET /v1/collections/{name}/time-series`` (``args``: the query string)."""
    started = time.perf_counter()
    coll = engine.get_collection(name)
    ts = _date_field(coll, args.get("field"))
    math = args.get("math", "count")
    tz = timezone(args.get("timezone"))
    bucketing = Bucketing(args.get("interval", "day"), tz, week_start(args.get("week_start", "monday")))
    start, end = resolve_date_range(args.get("date_from"), args.get("date_to"), now=now, tz=tz)
    if args.get("date_to") is None:
        end = bucketing.end_of(end)
    bucketing.check_offsets(start, end)
    buckets = bucketing.buckets(start, end)
    value: exp.Expr | None = None
    if math != "count":
        vf = args.get("value_field")
        if not vf:
            raise BadRequest(f"math [{math}] needs [value_field]")
        field = resolve_field(coll.mapping, vf)
        if field is not None and (field.array or field.type not in (FieldType.LONG, FieldType.DOUBLE)):
            raise BadRequest(f"[value_field] [{vf}] must be a numeric field")
        value = col(field.name) if field is not None else None
    params = Params()
    schema = _schema(coll, ts)
    cond = exp.and_(
        exp.GTE(this=col(ts), expression=params.bind(start)),
        exp.LT(this=col(ts), expression=params.bind(end)),
        compile_filters(list(_filters(coll, args)), schema, params, now=now, tz=tz),
    )
    key = bucketing.key_sql(col(ts), start)
    tree = (
        exp.select(key.as_("_b"), _math(math, value).as_("_v"))
        .from_(exp.table_(coll.name, quoted=True))
        .where(cond)
        .group_by(key.copy())
    )
    found = {r["_b"]: number(r["_v"]) for r in engine.query(tree, params.values).to_pylist()}
    total_tree = (
        exp.select(_math(math, value).as_("_v")).from_(exp.table_(coll.name, quoted=True)).where(cond.copy())
    )
    total = number(engine.query(total_tree, params.values).to_pylist()[0]["_v"])
    return {
        "field": ts,
        "math": math,
        "interval": bucketing.interval,
        "labels": [b.label for b in buckets],
        "data": [found.get(b.key, 0) for b in buckets],
        "total": total,
        "took": int((time.perf_counter() - started) * 1000),
    }


def distribution(
    engine: Engine, name: str, field_name: str, args: MappingABC[str, str], *, now: datetime
) -> dict[str, Any]:
    """``GET /v1/collections/{name}/distribution/{field}``: top values, counts, percentages."""
    started = time.perf_counter()
    coll = engine.get_collection(name)
    try:
        size = int(args.get("size", "20"))
    except ValueError:
        raise BadRequest(f"[size] must be an integer, got [{args.get('size')}]") from None
    if not 1 <= size <= MAX_SIZE:
        raise BadRequest(f"[size] must be between 1 and {MAX_SIZE}")
    params = Params()
    schema = _schema(coll, str(coll.settings.get("timestamp_field", "")))
    cond = compile_filters(list(_filters(coll, args)), schema, params, now=now)
    table = exp.table_(coll.name, quoted=True)
    field = resolve_field(coll.mapping, field_name)
    if field is not None and field.type in (FieldType.NESTED, FieldType.GEO_POINT, FieldType.DENSE_VECTOR):
        raise BadRequest(f"cannot compute the distribution of [{field_name}] ({field.type.value})")
    count_tree = exp.select(exp.Count(this=exp.Star()).as_("_n")).from_(table).where(cond)
    total = int(number(engine.query(count_tree, params.values).to_pylist()[0]["_n"]))
    values: list[dict[str, Any]] = []
    missing, other = total, 0
    if field is not None:
        value: exp.Expr = exp.Explode(this=col(field.name)) if field.array else col(field.name)
        inner = exp.select(value.as_("_value")).from_(table).where(cond.copy()).subquery("d")
        present = exp.Not(this=exp.Is(this=col("_value"), expression=exp.Null()))
        tree = (
            exp.select(col("_value"), exp.Count(this=exp.Star()).as_("_n"))
            .from_(inner)
            .where(present)
            .group_by(col("_value"))
            .order_by(exp.Ordered(this=col("_n"), desc=True), col("_value"))
        )
        rows = engine.query(tree, params.values).to_pylist()
        values = [
            {
                "value": _json(r["_value"]),
                "count": int(r["_n"]),
                "percent": round(100.0 * int(r["_n"]) / total, 4) if total else 0.0,
            }
            for r in rows[:size]
        ]
        other = sum(int(r["_n"]) for r in rows[size:])
        has = (
            exp.select(exp.Count(this=exp.Star()).as_("_n"))
            .from_(table)
            .where(exp.and_(cond.copy(), _has_value(field.name, field.array)))
        )
        missing = total - int(number(engine.query(has, params.values).to_pylist()[0]["_n"]))
    return {
        "field": field_name,
        "total": total,
        "missing": missing,
        "other": other,
        "values": values,
        "took": int((time.perf_counter() - started) * 1000),
    }


def _has_value(name: str, array: bool) -> exp.Expr:
    present = exp.Not(this=exp.Is(this=col(name), expression=exp.Null()))
    if not array:
        return present
    return exp.and_(present, exp.GT(this=exp.ArraySize(this=col(name)), expression=exp.Literal.number(0)))


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value

"""Query clauses → a sqlglot boolean condition over a collection's columns.

Field names resolve against the mapping (meaning); values are converted to the field's type
and bound as parameters; array fields use list predicates. Semantics follow Elasticsearch:
a clause on an unmapped field matches nothing, a ``must_not`` keeps documents where the
field is missing, and a ``bool`` with only ``should`` clauses needs one of them to match.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlglot import exp

from aggregata.dsl import query as q
from aggregata.dsl.datemath import DateMathError, parse_date, resolve, round_up_for
from aggregata.errors import BadRequest
from aggregata.model.mapping import ID_FIELD, Field, FieldType, Mapping
from aggregata.sql.params import Params


@dataclass
class QueryContext:
    """What compiling a query needs: the mapping, the parameter collector and ``now``."""

    mapping: Mapping
    params: Params
    now: datetime


def col(name: str) -> exp.Column:
    """A quoted column reference; the only way field names enter a tree."""
    return exp.column(name, quoted=True)


def time_zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if match is None:
        raise BadRequest(f"unknown time zone [{name}]")
    from datetime import timedelta, timezone

    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def coerce_value(
    f: Field,
    value: Any,
    *,
    now: datetime | None = None,
    fmt: str | None = None,
    tz: tzinfo = UTC,
    round_up: bool = False,
) -> Any:
    """Convert a query value to the field's type as Elasticsearch does; ``None`` = no match."""
    t = f.type
    try:
        if t in (FieldType.KEYWORD, FieldType.TEXT):
            if isinstance(value, bool):
                return "true" if value else "false"
            return value if isinstance(value, str) else _number_text(value)
        if t is FieldType.LONG:
            number = float(value) if not isinstance(value, bool) else math.nan
            return int(number) if number.is_integer() else None
        if t is FieldType.DOUBLE:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if t is FieldType.BOOLEAN:
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
            raise ValueError(value)
        if t is FieldType.DATE:
            if now is not None and isinstance(value, str):
                return resolve(value, now=now, tz=tz, round_up=round_up, fmt=fmt)
            return parse_date(value, tz=tz, fmt=fmt)
    except (ValueError, OverflowError, DateMathError) as exc:
        raise BadRequest(
            f"failed to parse [{value}] as a value of field [{f.name}] ({t.value}): {exc}"
        ) from None
    raise BadRequest(f"field [{f.name}] of type [{t.value}] does not support this query")


def _number_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


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


class QueryCompiler:
    """Dispatches each clause to a ``visit_<Clause>`` method."""

    def __init__(self, ctx: QueryContext) -> None:
        self.ctx = ctx

    def compile(self, query: q.Query) -> exp.Expr:
        visit = getattr(self, f"visit_{type(query).__name__}", None)
        if visit is None:
            raise BadRequest(f"query [{type(query).__name__}] is not supported here")
        result: exp.Expr = visit(query)
        return result

    def _field(self, name: str) -> Field | None:
        if name == ID_FIELD:
            return Field(ID_FIELD, FieldType.KEYWORD)
        return self.ctx.mapping.get(name)

    def visit_MatchAll(self, _: q.MatchAll) -> exp.Expr:
        return exp.true()

    def visit_MatchNone(self, _: q.MatchNone) -> exp.Expr:
        return exp.false()

    def visit_Term(self, term: q.Term) -> exp.Expr:
        f = self._field(term.field)
        if f is None:
            return exp.false()
        value = coerce_value(f, term.value, now=self.ctx.now)
        if value is None:
            return exp.false()
        if term.case_insensitive and isinstance(value, str):
            bound = self.ctx.params.bind(value.lower())
            return _any_element(f, lambda c: exp.EQ(this=exp.Lower(this=c), expression=bound.copy()))
        bound = self.ctx.params.bind(value)
        if f.array:
            return exp.ArrayContains(this=col(f.name), expression=bound)
        return exp.EQ(this=col(f.name), expression=bound)

    def visit_Terms(self, terms: q.Terms) -> exp.Expr:
        f = self._field(terms.field)
        if f is None:
            return exp.false()
        values = [v for v in (coerce_value(f, v, now=self.ctx.now) for v in terms.values) if v is not None]
        if not values:
            return exp.false()
        bound = [self.ctx.params.bind(v) for v in dict.fromkeys(values)]
        if f.array:
            return exp.ArrayOverlaps(this=col(f.name), expression=exp.Array(expressions=bound))
        return exp.In(this=col(f.name), expressions=bound)

    def visit_Ids(self, ids: q.Ids) -> exp.Expr:
        return self.visit_Terms(q.Terms(ID_FIELD, ids.values))

    def visit_Range(self, rng: q.Range) -> exp.Expr:
        f = self._field(rng.field)
        if f is None:
            return exp.false()
        tz = time_zone(rng.time_zone)
        ops: list[tuple[str, Any, type[exp.Binary]]] = [
            ("gt", rng.gt, exp.GT),
            ("gte", rng.gte, exp.GTE),
            ("lt", rng.lt, exp.LT),
            ("lte", rng.lte, exp.LTE),
        ]
        bounds: list[tuple[type[exp.Binary], exp.Expr]] = []
        for op, raw, node in ops:
            if raw is None:
                continue
            value = coerce_value(f, raw, now=self.ctx.now, fmt=rng.format, tz=tz, round_up=round_up_for(op))
            if value is None and f.type is FieldType.LONG:
                value = float(raw)  # 1.5 on a long field is still a valid bound
            bounds.append((node, self.ctx.params.bind(value)))
        if not bounds:
            return self.visit_Exists(q.Exists(rng.field))

        def within(c: exp.Expr) -> exp.Expr:
            return exp.and_(*[node(this=c.copy(), expression=b.copy()) for node, b in bounds])

        return _any_element(f, within)

    def visit_Exists(self, ex: q.Exists) -> exp.Expr:
        f = self._field(ex.field)
        if f is not None:
            return self._exists(f)
        pattern = ex.field if "*" in ex.field else ex.field + ".*"
        subs = [s for s in self.ctx.mapping if fnmatch.fnmatchcase(s.name, pattern)]
        if not subs:
            return exp.false()
        return exp.or_(*[self._exists(s) for s in subs])

    def _exists(self, f: Field) -> exp.Expr:
        present = exp.Not(this=exp.Is(this=col(f.name), expression=exp.Null()))
        # A vector is a list column too; where lists cannot be NULL, missing is [].
        if not f.array and f.type is not FieldType.DENSE_VECTOR:
            return present
        return exp.and_(
            present, exp.GT(this=exp.ArraySize(this=col(f.name)), expression=exp.Literal.number(0))
        )

    def visit_Bool(self, b: q.Bool) -> exp.Expr:
        parts = [self.compile(c) for c in (*b.must, *b.filter)]
        parts += [
            exp.Not(this=exp.Coalesce(this=self.compile(c), expressions=[exp.false()])) for c in b.must_not
        ]
        if b.should:
            required = _minimum_should_match(b.minimum_should_match, len(b.should), bool(b.must or b.filter))
            if required > len(b.should):
                return exp.false()
            if required == 1:
                parts.append(exp.or_(*[self.compile(c) for c in b.should]))
            elif required > 1:
                hits = [
                    exp.If(
                        this=exp.Coalesce(this=self.compile(c), expressions=[exp.false()]),
                        true=exp.Literal.number(1),
                        false=exp.Literal.number(0),
                    )
                    for c in b.should
                ]
                total: exp.Expr = hits[0]
                for h in hits[1:]:
                    total = exp.Add(this=total, expression=h)
                parts.append(exp.GTE(this=exp.Paren(this=total), expression=exp.Literal.number(required)))
        if not parts:
            return exp.true()
        return exp.and_(*parts)


def _minimum_should_match(spec: int | str | None, n: int, has_required: bool) -> int:
    """Elasticsearch's rules: integers, negative integers and percentages (rounded down)."""
    if spec is None:
        return 0 if has_required else 1
    if isinstance(spec, int):
        return spec if spec >= 0 else max(n + spec, 0)
    text = spec.strip()
    match = re.fullmatch(r"(-?)(\d+)(%?)", text)
    if match is None:
        raise BadRequest(f"unsupported [minimum_should_match] value [{spec}]")
    negative, digits, percent = match.groups()
    amount = int(digits) if not percent else math.floor(n * int(digits) / 100)
    return max(n - amount, 0) if negative else amount


def compile_query(query: q.Query, ctx: QueryContext) -> exp.Expr:
    """The WHERE condition for ``query``."""
    return QueryCompiler(ctx).compile(query)

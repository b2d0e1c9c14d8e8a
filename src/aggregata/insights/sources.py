"""The two relations a trends query reads: raw events, or a rollup. Same columns, same meaning.

Each relation yields rows with a timestamp ``ts`` and the encoded breakdown keys
``k0, k1, …`` (``rollups.encode``: ``''`` for a missing value, ``'=' || text``, or
``'$other'`` past the breakdown limit), plus what its aggregates need:

* raw: ``a`` (the actor) and ``x`` (the math property as a number);
* rollup counts: ``n`` (events in the row); rollup sketches: ``reg``/``rnk`` registers.

``count`` and ``unique`` then aggregate any grouping of those rows; both relations give the
same numbers (counts exactly, uniques within the sketch's error), which is what lets the
planner pick either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.insights import hll
from aggregata.insights.common import compile_filters, event_condition, resolve_field
from aggregata.insights.models import Filter, FilterGroup, PropertyFilter
from aggregata.insights.plan import SeriesPlan, TrendsPlan
from aggregata.insights.rollups import Kind, RollupSpec, encode, readable
from aggregata.model.mapping import FieldType
from aggregata.sql.dialects import ToNumber
from aggregata.sql.params import Params
from aggregata.sql.query import coerce_value, col

OTHER = "$other"
Top = list[tuple[str, ...]] | None


def other_mapped(keys: list[exp.Expr], top: Top, params: Params) -> list[exp.Expr]:
    """Keys outside the ``top`` tuples become ``'$other'`` (``top`` None: keep all)."""
    if top is None:
        return keys
    if not top:
        return [exp.Literal.string(OTHER) for _ in keys]
    matches = [
        exp.and_(
            *[exp.EQ(this=k.copy(), expression=params.bind(v)) for k, v in zip(keys, values, strict=True)]
        )
        for values in top
    ]
    inside = exp.or_(*matches)
    return [
        exp.Case(ifs=[exp.If(this=inside.copy(), true=k)], default=exp.Literal.string(OTHER)) for k in keys
    ]


def _in_range(ts: exp.Expr, start: datetime, end: datetime, params: Params) -> exp.Expr:
    return exp.and_(
        exp.GTE(this=ts, expression=params.bind(start)), exp.LT(this=ts.copy(), expression=params.bind(end))
    )


@dataclass
class Relation:
    """Rows of one series in ``[start, end)``; subclasses say from where."""

    plan: TrendsPlan

    def rows(
        self, series: SeriesPlan, params: Params, start: datetime, end: datetime, top: Top, *, sketch: bool
    ) -> exp.Select:
        raise NotImplementedError

    def count(self) -> exp.Expr:
        raise NotImplementedError

    def unique(self, rows: exp.Expr, group: list[tuple[str, exp.Expr]]) -> exp.Select:
        """``group`` columns and ``v``, the number of distinct actors per group."""
        raise NotImplementedError

    def actor_columns(self) -> list[str]:
        """The columns that identify an actor (or a sketch register) in ``rows``."""
        raise NotImplementedError

    def rolling_units(self, rows: exp.Expr, unit: exp.Expr, keys: list[str]) -> exp.Select:
        """One row per (unit, keys, actor-ish): what rolling windows fan out."""
        raise NotImplementedError


class RawRelation(Relation):
    """The collection's events, filtered and keyed."""

    def rows(
        self, series: SeriesPlan, params: Params, start: datetime, end: datetime, top: Top, *, sketch: bool
    ) -> exp.Select:
        schema = self.plan.schema
        tz = self.plan.bucketing.tz
        filters = [*self.plan.filters, *series.filters]
        keys = other_mapped([self._key(b) for b in self.plan.breakdowns], top, params)
        cond = exp.and_(
            _in_range(col(schema.timestamp), start, end, params),
            event_condition(schema, series.event, params),
            compile_filters(filters, schema, params, now=self.plan.now, tz=tz),
        )
        select = exp.select(
            col(schema.timestamp).as_("_ts"),
            *[k.as_(f"_k{i}") for i, k in enumerate(keys)],
            col(schema.actor).as_("_a"),
            self._value(series).as_("_x"),
        )
        return select.from_(exp.table_(schema.collection, quoted=True)).where(cond)

    def _key(self, name: str) -> exp.Expr:
        field = resolve_field(self.plan.schema.mapping, name)
        if field is None:
            return encode(None)
        if field.array or field.type in (FieldType.NESTED, FieldType.GEO_POINT, FieldType.DENSE_VECTOR):
            raise BadRequest(f"cannot break down by [{name}]: it holds {field.type.value} values")
        return encode(col(field.name))

    def _value(self, series: SeriesPlan) -> exp.Expr:
        if series.math_property is None:
            return exp.Null()
        field = resolve_field(self.plan.schema.mapping, series.math_property)
        if field is None:
            return exp.Null()  # an unknown property: no values, so zeros
        if field.array or field.type not in (FieldType.LONG, FieldType.DOUBLE, FieldType.KEYWORD):
            raise BadRequest(f"math_property [{series.math_property}] must be a numeric property")
        return ToNumber(this=col(field.name)) if field.type is FieldType.KEYWORD else col(field.name)

    def count(self) -> exp.Expr:
        return exp.Count(this=exp.Star())

    def unique(self, rows: exp.Expr, group: list[tuple[str, exp.Expr]]) -> exp.Select:
        v = exp.Count(this=exp.Distinct(expressions=[col("_a")])).as_("v")
        return (
            exp.select(*[e.as_(n) for n, e in group], v)
            .from_(rows, copy=False)
            .group_by(*[e.copy() for _, e in group])
        )

    def actor_columns(self) -> list[str]:
        return ["_a"]

    def rolling_units(self, rows: exp.Expr, unit: exp.Expr, keys: list[str]) -> exp.Select:
        return (
            exp.select(unit.as_("u"), *[col(k) for k in keys], col("_a")).distinct().from_(rows, copy=False)
        )


class RollupRelation(Relation):
    """A rollup's rows: ``ts`` is the start of the row's hour or day."""

    def __init__(self, plan: TrendsPlan, spec: RollupSpec, grain: str) -> None:
        super().__init__(plan)
        self.spec = spec
        self.grain = grain

    def rows(
        self, series: SeriesPlan, params: Params, start: datetime, end: datetime, top: Top, *, sketch: bool
    ) -> exp.Select:
        keys = other_mapped([col(self._key(b)) for b in self.plan.breakdowns], top, params)
        conds = [_in_range(col("bucket"), start, end, params)]
        if series.event is not None:
            conds.append(exp.EQ(this=col("event"), expression=params.bind(series.event)))
        filters = [self._filter(f, params) for f in (*self.plan.filters, *series.filters)]
        kind = Kind.COUNTS
        if sketch:
            # Every event's actors, unfiltered and not broken down: one sketch per bucket.
            everyone = series.event is None and not filters and not keys
            kind = Kind.ACTORS if everyone else Kind.SKETCHES
        extra = [col("reg"), col("rnk")] if sketch else [col("n")]
        select = exp.select(col("bucket").as_("_ts"), *[k.as_(f"_k{i}") for i, k in enumerate(keys)], *extra)
        return select.from_(readable(self.spec, self.grain, kind), copy=False).where(
            exp.and_(*conds, *filters)
        )

    def _key(self, name: str) -> str:
        field = resolve_field(self.plan.schema.mapping, name)
        key = self.spec.key_of(field.name) if field is not None else None
        if key is None:  # pick_rollup only chooses a rollup holding every breakdown
            raise AssertionError(f"rollup lacks breakdown [{name}]")
        return key

    def _filter(self, f: Filter, params: Params) -> exp.Expr:
        """A covered filter on the encoded key columns (``pick_rollup.covers_filter``)."""
        if isinstance(f, FilterGroup):
            parts: list[exp.Expr] = []
            if f.and_ is not None:
                parts.append(exp.and_(*[self._filter(x, params) for x in f.and_]) if f.and_ else exp.true())
            if f.or_ is not None:
                parts.append(exp.or_(*[self._filter(x, params) for x in f.or_]) if f.or_ else exp.false())
            return exp.Paren(this=exp.and_(*parts))
        return self._property(f, params)

    def _property(self, f: PropertyFilter, params: Params) -> exp.Expr:
        field = resolve_field(self.plan.schema.mapping, f.property)
        assert field is not None
        key = col(self._key(f.property))
        if f.operator in ("is_set", "is_not_set"):
            node: type[exp.Binary] = exp.NEQ if f.operator == "is_set" else exp.EQ
            return node(this=key, expression=exp.Literal.string(""))
        values = f.value if isinstance(f.value, list) else [f.value]
        encoded = [params.bind("=" + str(coerce_value(field, v))) for v in values]
        inside = exp.In(this=key, expressions=encoded)
        return exp.Not(this=inside) if f.operator in ("neq", "not_in") else inside

    def count(self) -> exp.Expr:
        return exp.cast(exp.Sum(this=col("n")), "BIGINT")

    def unique(self, rows: exp.Expr, group: list[tuple[str, exp.Expr]]) -> exp.Select:
        timed = [n for n, e in group if any(c.name == "_ts" for c in e.find_all(exp.Column))]
        if timed and self.grain == self.plan.bucketing.interval:
            # One rollup row time per bucket: estimate per row time, then compute the bucket
            # keys on those few rows, not on every register row (time-zone maths is costly).
            others = [(n, e) for n, e in group if n not in timed]
            estimated = self._estimate(rows, [("_ts", col("_ts")), *others])
            outer = [e.as_(n) if n in timed else col(n) for n, e in group]
            return exp.select(*outer, col("v")).from_(estimated.subquery("e", copy=False), copy=False)
        return self._estimate(rows, group)

    @staticmethod
    def _estimate(rows: exp.Expr, group: list[tuple[str, exp.Expr]]) -> exp.Select:
        names = [n for n, _ in group]
        merged = (
            exp.select(*[e.as_(n) for n, e in group], col("reg"), exp.Max(this=col("rnk")).as_("rnk"))
            .from_(rows, copy=False)
            .group_by(*[e.copy() for _, e in group], col("reg"))
        )
        v = exp.Round(this=hll.estimate_aggregate(col("rnk"))).as_("v")
        return (
            exp.select(*[col(n) for n in names], v)
            .from_(merged.subquery("m", copy=False), copy=False)
            .group_by(*[col(n) for n in names])
        )

    def actor_columns(self) -> list[str]:
        return ["reg", "rnk"]

    def rolling_units(self, rows: exp.Expr, unit: exp.Expr, keys: list[str]) -> exp.Select:
        group = [unit, *[col(k) for k in keys], col("reg")]
        return (
            exp.select(
                unit.as_("u"), *[col(k) for k in keys], col("reg"), exp.Max(this=col("rnk")).as_("rnk")
            )
            .from_(rows, copy=False)
            .group_by(*[g.copy() for g in group])
        )

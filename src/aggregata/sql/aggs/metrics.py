"""Metric aggregations → aggregate expressions in the statement of their bucket.

A metric compiles to a few named aggregate columns (``count``, ``sum``, ``q`` ...). The
response shaper (``search/aggregations.py``) turns those columns into Elasticsearch's
output; terms ordering by a metric uses the same expression (``order_expression``), so
ranking and reported values cannot disagree.

Array fields count every element of every document, as Elasticsearch does for
multi-valued fields, using list functions (``LIST_SUM``/``arraySum``) rather than
unnesting, so a metric never multiplies the rows its bucket counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import metrics as m
from aggregata.errors import BadRequest
from aggregata.model.mapping import Field, FieldType
from aggregata.sql.aggs.functions import DistinctCount, MedianAbsoluteDeviation, Quantiles
from aggregata.sql.aggs.scope import (
    NUMERIC_LIKE,
    VALUE_TYPES,
    Scope,
    coerce_missing,
    is_empty,
    lambda_over,
    numeric_values,
    values,
)
from aggregata.sql.params import Params

CARDINALITY_MARGIN = 1.1
"""HyperLogLog's error is ~1-2%; a count this far above the threshold is surely above it."""


class CardinalityMode(Enum):
    """How ``cardinality`` is computed: HyperLogLog, exact, or exact only when small."""

    APPROX = "approx"
    EXACT = "exact"
    AUTO = "auto"


@dataclass(frozen=True)
class MetricPlan:
    """The columns one metric aggregation reads from its bucket's row."""

    agg: Agg
    columns: dict[str, str]
    field: Field | None = None


def _sum(v: exp.Expr, array: bool) -> exp.Expr:
    """0 without values, as Elasticsearch says, so ordering terms by a sum ranks such a bucket
    at 0 (SQL's NULL sorted last had put it below negative sums)."""
    total = exp.Sum(this=exp.ArraySum(this=v) if array else v)
    return exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])


def _count(v: exp.Expr, array: bool) -> exp.Expr:
    if array:
        return exp.Coalesce(this=exp.Sum(this=exp.ArraySize(this=v)), expressions=[exp.Literal.number(0)])
    return exp.Count(this=v)


def _extreme(
    agg: type[exp.Min] | type[exp.Max], pick: type[exp.ArrayMin] | type[exp.ArrayMax]
) -> Callable[[exp.Expr, bool], exp.Expr]:
    """``MIN``/``MAX`` that is NULL when there is no value in either engine.

    ClickHouse returns the type's default (0) for an aggregate over no rows of a non-NULL
    expression and for ``arrayMin([])``, so array extremes skip empty arrays and other
    non-column values are guarded by the row count.
    """

    def build(v: exp.Expr, array: bool) -> exp.Expr:
        if array:
            size = exp.GT(this=exp.ArraySize(this=v), expression=exp.Literal.number(0))
            return agg(this=exp.Case(ifs=[exp.If(this=size, true=pick(this=v.copy()))]))
        if isinstance(v, exp.Column):
            return agg(this=v)
        some = exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(0))
        return exp.Case(ifs=[exp.If(this=some, true=agg(this=v))])

    return build


_min = _extreme(exp.Min, exp.ArrayMin)
_max = _extreme(exp.Max, exp.ArrayMax)


def _avg(v: exp.Expr, array: bool) -> exp.Expr:
    if not array:
        return exp.Avg(this=v)
    count = exp.Sum(this=exp.ArraySize(this=v))
    return exp.Div(
        this=_sum(v, True),
        expression=exp.Nullif(this=count, expression=exp.Literal.number(0)),
        typed=False,
        safe=False,
    )


def _sum_squares(v: exp.Expr, array: bool, f: Field) -> exp.Expr:
    if array:
        squares = exp.Transform(
            this=v, expression=lambda_over(f, lambda x: exp.Mul(this=x, expression=x.copy()))
        )
        return exp.Sum(this=exp.ArraySum(this=squares))
    return exp.Sum(this=exp.Mul(this=v, expression=v.copy()))


class MetricCompiler:
    """Compiles the metric children of one bucket into aliased aggregate expressions."""

    def __init__(
        self,
        scope: Scope,
        params: Params,
        now: datetime,
        cardinality: CardinalityMode,
        condition: exp.Expr | None = None,
    ) -> None:
        self.scope = scope
        self.params = params
        self.now = now
        self.cardinality = cardinality
        self.condition = condition
        self.selects: list[exp.Expr] = []
        self.expressions: dict[str, exp.Expr] = {}

    def _add(self, prefix: str, name: str, expr: exp.Expr, columns: dict[str, str]) -> None:
        alias = f"{prefix}_{name}"
        self.selects.append(exp.alias_(expr, alias, quoted=True))
        self.expressions[alias] = expr
        columns[name] = alias

    def compile(self, agg: Agg, prefix: str) -> MetricPlan:
        """Add the columns of metric ``agg`` (aliases start with ``prefix``, never user text)."""
        spec = agg.spec
        columns: dict[str, str] = {}
        if isinstance(spec, m.TopHits):
            return MetricPlan(agg, columns)
        assert isinstance(spec, m.FieldMetric)
        allowed = VALUE_TYPES if isinstance(spec, (m.ValueCount, m.Cardinality)) else NUMERIC_LIKE
        f = self.scope.field(spec.field, agg.type_name, agg.name, allowed)
        if isinstance(spec, m.ValueCount | m.Cardinality):
            self._values_metric(agg, spec, f, prefix, columns)
            return MetricPlan(agg, columns, f)
        nv = numeric_values(f, spec.missing, self.params, agg.name, self.now)
        v, arr = self._only_where(nv.expr, nv.array), nv.array

        def add(name: str, expr: exp.Expr) -> None:
            self._add(prefix, name, expr, columns)

        if isinstance(spec, m.Avg):
            add("value", _avg(v, arr))
        elif isinstance(spec, m.Sum):
            add("value", _sum(v, arr))
        elif isinstance(spec, m.Min):
            add("value", _min(v, arr))
        elif isinstance(spec, m.Max):
            add("value", _max(v, arr))
        elif isinstance(spec, m.Stats | m.ExtendedStats):
            add("count", _count(v, arr))
            add("min", _min(v, arr))
            add("max", _max(v, arr))
            add("avg", _avg(v, arr))
            add("sum", _sum(v, arr))
            if isinstance(spec, m.ExtendedStats):
                add("sum_of_squares", _sum_squares(v, arr, f))
                if not arr:
                    add("variance_population", exp.VariancePop(this=v.copy()))
                    add("variance_sampling", exp.Variance(this=v.copy()))
        elif isinstance(spec, m.Percentiles):
            qs = [self.params.bind(p / 100.0) for p in spec.percents]
            add("values", Quantiles(this=v, quantiles=exp.Array(expressions=qs), array=exp.convert(arr)))
        elif isinstance(spec, m.PercentileRanks):
            add("count", _count(v, arr))
            for i, value in enumerate(spec.values):
                bound = self.params.bind(value)
                if arr:
                    below = exp.ArrayFilter(
                        this=v.copy(),
                        expression=lambda_over(f, lambda x, b=bound: exp.LTE(this=x, expression=b.copy())),
                    )
                    add(f"le{i}", exp.Sum(this=exp.ArraySize(this=below)))
                else:
                    add(f"le{i}", exp.CountIf(this=exp.LTE(this=v.copy(), expression=bound)))
        elif isinstance(spec, m.MedianAbsoluteDeviation):
            add("value", MedianAbsoluteDeviation(this=v, array=exp.convert(arr)))
        else:  # pragma: no cover - every registered metric is handled above
            raise BadRequest(f"aggregation [{agg.name}] of type [{agg.type_name}] is not supported here")
        return MetricPlan(agg, columns, f)

    def _values_metric(
        self, agg: Agg, spec: m.FieldMetric, f: Field, prefix: str, columns: dict[str, str]
    ) -> None:
        """``value_count`` and ``cardinality``: they count values of any type, not numbers."""
        v: exp.Expr = values(f)
        if spec.missing is not None:
            fill = self.params.bind(coerce_missing(f, spec.missing, agg.name, self.now))
            if f.array:
                v = exp.Case(ifs=[exp.If(this=is_empty(f), true=exp.Array(expressions=[fill]))], default=v)
            else:
                v = exp.Coalesce(this=v, expressions=[fill])
        v = self._only_where(v, f.array)
        if isinstance(spec, m.ValueCount):
            self._add(prefix, "value", _count(v, f.array), columns)
            return
        assert isinstance(spec, m.Cardinality)
        array = exp.convert(f.array)
        exact = DistinctCount(this=v, approx=exp.false(), array=array)
        approx = DistinctCount(this=v.copy(), approx=exp.true(), array=array.copy())
        if self.cardinality is CardinalityMode.EXACT:
            expr: exp.Expr = exact
        elif self.cardinality is CardinalityMode.APPROX:
            expr = approx
        else:
            limit = self.params.bind(int(spec.precision_threshold * CARDINALITY_MARGIN))
            expr = exp.Case(
                ifs=[exp.If(this=exp.LTE(this=approx.copy(), expression=limit), true=exact)], default=approx
            )
        self._add(prefix, "value", expr, columns)

    def _only_where(self, v: exp.Expr, array: bool) -> exp.Expr:
        """The values, kept only in rows where ``condition`` holds (one bucket of a pivot)."""
        if self.condition is None:
            return v
        # ClickHouse arrays cannot be NULL: outside the bucket an array field is empty.
        otherwise = exp.Array(expressions=[]) if array else None
        return exp.Case(ifs=[exp.If(this=self.condition.copy(), true=v)], default=otherwise)

    def order_expression(self, plan: MetricPlan, path: str | None) -> exp.Expr:
        """The SQL value a terms order path (``avg_price``, ``stats.max``) refers to."""
        agg = plan.agg
        spec = agg.spec
        single = {"value"} if "value" in plan.columns else set()
        names = set(plan.columns) if isinstance(spec, m.Stats | m.ExtendedStats) else single
        if path is None and len(names) == 1:
            (name,) = names
        elif path is not None and path in names and isinstance(spec, m.Stats | m.ExtendedStats):
            name = path
        elif isinstance(spec, m.ExtendedStats) and path in ("variance", "std_deviation"):
            return self._std(plan, path)
        else:
            raise BadRequest(
                f"Invalid aggregation order path [{agg.name}{'.' + path if path else ''}]: use a single-value"
                " metric, or a stats value such as [stats.avg]"
            )
        return self.expressions[plan.columns[name]].copy()

    def _std(self, plan: MetricPlan, path: str) -> exp.Expr:
        alias = plan.columns.get("variance_population")
        if alias is None:
            raise BadRequest(f"ordering by [{plan.agg.name}.{path}] is not supported on an array field")
        variance = self.expressions[alias].copy()
        return variance if path == "variance" else exp.Sqrt(this=variance)


def is_metric(agg: Agg) -> bool:
    return isinstance(agg.spec, m.FieldMetric)


def has_cardinality(aggs: tuple[Agg, ...]) -> bool:
    return any(isinstance(a.spec, m.Cardinality) for a in aggs)


__all__ = ["CardinalityMode", "FieldType", "MetricCompiler", "MetricPlan", "has_cardinality", "is_metric"]

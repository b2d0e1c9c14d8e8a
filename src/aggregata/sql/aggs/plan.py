"""An aggregation tree → a few SELECTs: one per bucket aggregation, plus one for top-level metrics.

The statement of a bucket aggregation groups the rows inside its parents' buckets by the
keys of every keyed level on the path from the root (so one statement answers the node for
*all* parent buckets at once, never one statement per bucket) and computes the doc counts
and the metric sub-aggregations directly under it. What makes it exactly the SQL one would
write by hand:

* ``terms`` at the top level is ``GROUP BY k ORDER BY COUNT(*) DESC, k LIMIT size`` with
  ``SUM(COUNT(*)) OVER ()`` for ``sum_other_doc_count``; below another bucket it ranks with
  ``ROW_NUMBER() OVER (PARTITION BY <parent keys> ...)`` and ``QUALIFY`` (``sql/aggs/ranking.py``).
* Children of a ``terms`` (or ``composite``) only see its selected buckets, restricted with
  ``IN``: the keys a top-level ``terms``'s own statement returned, bound once it has run
  (``sql/aggs/chosen.py``), else a CTE with the parent's ranking (only keys, no metrics).
* ``range``, ``date_range`` and ``filters`` count all their conditions in one pass
  (``COUNT_IF`` per bucket, read back as one row per bucket: ``Unpivot``).
* Every statement that could return one row per bucket stops at ``max_buckets + 1`` rows,
  so a request that would exceed the limit fails fast without pulling millions of rows.

``hits.total`` rides along when asked for (``count_hits``), so a search with aggregations
runs no separate count: top-level metrics' ``COUNT(*)`` is it, else a top-level ``terms`` or
histogram groups its missing key too (the ``IS NOT NULL`` test moves from ``WHERE`` to
``QUALIFY``) and adds ``SUM(COUNT(*)) OVER ()`` (``AggPlan.hits``).

``cardinality`` without parent keys runs HyperLogLog first and the exact count only when
the estimate is near ``precision_threshold`` (``Statement.exact``); below parent buckets
one statement picks per bucket (``CASE WHEN approx <= t THEN COUNT(DISTINCT) ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from aggregata.dsl.aggs import Agg, AggLimits, Pipeline
from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.aggs import metrics as m
from aggregata.model.mapping import Mapping
from aggregata.sql.aggs.buckets import BucketContext, DateHistogramInfo
from aggregata.sql.aggs.chosen import bound_selection, in_selection, missing_keys
from aggregata.sql.aggs.composite import CompositeKeys, apply_composite
from aggregata.sql.aggs.fold import HITS, fold_hits
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.aggs.hits import RANK, top_hits_select
from aggregata.sql.aggs.levels import Info, apply_bucket, bucket_conditions
from aggregata.sql.aggs.metrics import (
    CARDINALITY_MARGIN,
    CardinalityMode,
    MetricCompiler,
    MetricPlan,
    has_cardinality,
    is_metric,
)
from aggregata.sql.aggs.ranking import TOTAL as TOTAL  # read by the response shaper
from aggregata.sql.aggs.ranking import rank_terms
from aggregata.sql.aggs.scope import Scope
from aggregata.sql.aggs.slots import pregroup
from aggregata.sql.ddl import table
from aggregata.sql.params import Params
from aggregata.sql.query import col

DOC_COUNT = "doc_count"


@dataclass(frozen=True)
class Unpivot:
    """Columns of a pivoted statement to read as one row per bucket (index → column renames)."""

    key: str
    buckets: tuple[dict[str, str], ...]


@dataclass
class Statement:
    """One SELECT; ``exact`` recomputes its cardinality columns exactly, run if a ``checks`` value is small.

    Only single-row statements (no keys) have a twin; its one row's columns replace the estimates.
    """

    tree: exp.Select
    exact: exp.Select | None = None
    checks: tuple[tuple[str, int], ...] = ()
    unpivot: Unpivot | None = None


@dataclass
class BucketPlan:
    """Where one bucket aggregation's buckets are: statement, key columns, metric columns."""

    agg: Agg
    statement: int
    keys: tuple[str, ...]
    parents: tuple[str, ...]
    metrics: tuple[MetricPlan, ...]
    info: Info | object
    domain: int | None = None
    """``terms`` with ``min_doc_count: 0``: the statement listing every term of the collection."""


@dataclass
class TopHitsPlan:
    agg: Agg
    statement: int
    parents: tuple[str, ...]
    columns: list[str]
    sort: list[tuple[str, str]]


@dataclass
class AggPlan:
    """Every statement of a request and how each aggregation reads its results."""

    statements: list[Statement] = field(default_factory=list)
    root: int | None = None
    root_metrics: tuple[MetricPlan, ...] = ()
    buckets: dict[int, BucketPlan] = field(default_factory=dict)
    top_hits: dict[int, TopHitsPlan] = field(default_factory=dict)
    hits: tuple[int, str] | None = None
    """Where the query's hit count is (statement, column of its first row), if a statement has it."""


def _prunes(agg: Agg) -> bool:
    return isinstance(agg.spec, b.Terms | b.Composite)


class Planner:
    """Builds the statements of one request; all share ``params``."""

    def __init__(
        self,
        name: str,
        mapping: Mapping,
        params: Params,
        now: datetime,
        where: exp.Expr,
        limits: AggLimits,
        count_hits: bool = False,
    ) -> None:
        self.ctx = BucketContext(table(name), mapping, params, now)
        self.mapping = mapping
        self.params = params
        self.now = now
        self.where = where
        self.limits = limits
        self.count_hits = count_hits
        self.plan = AggPlan()
        self.aliases: dict[int, str] = {}
        self.selections: dict[tuple[int, ...], tuple[str, dict[str, exp.Select]]] = {}

    # -- entry -----------------------------------------------------------------------------

    def build(self, aggs: tuple[Agg, ...]) -> AggPlan:
        metrics = tuple(a for a in aggs if is_metric(a))
        if metrics or any(isinstance(a.spec, m.TopHits) for a in aggs):
            self.plan.root = self._add(self._metrics_statement(metrics))
            if self.count_hits:
                self.plan.hits = (self.plan.root, DOC_COUNT)
        for agg in aggs:
            self._visit(agg, ())
        return self.plan

    def _visit(self, agg: Agg, path: tuple[Agg, ...]) -> None:
        if isinstance(agg.spec, Pipeline) or is_metric(agg):
            return
        if isinstance(agg.spec, m.TopHits):
            self._top_hits(agg, path)
            return
        inner = (*path, agg)
        self.aliases.setdefault(id(agg), f"k{len(self.aliases)}")
        self._bucket(inner)
        for sub in agg.subs:
            self._visit(sub, inner)

    def _add(self, statement: Statement) -> int:
        self.plan.statements.append(statement)
        return len(self.plan.statements) - 1

    # -- frames ----------------------------------------------------------------------------

    def _root_frame(self) -> Frame:
        where = [] if self.where == exp.true() else [self.where.copy()]
        return Frame(self.ctx.table.copy(), where, [], Scope(self.mapping))

    def _frame(
        self, path: tuple[Agg, ...], *, inside_last: bool = False
    ) -> tuple[Frame, list[Info | object], dict[str, exp.Select]]:
        """The rows inside the buckets of ``path``, restricted to parents' selections (keys or CTEs).

        The last level is restricted to its own selection only for what lives inside its
        buckets (``inside_last``: top hits); its own statement ranks the buckets itself.
        """
        frame = self._root_frame()
        infos: list[Info | object] = []
        ctes: dict[str, exp.Select] = {}
        for depth, agg in enumerate(path):
            alias = self.aliases.setdefault(id(agg), f"k{len(self.aliases)}")
            if isinstance(agg.spec, b.Composite):
                frame, keys = apply_composite(frame, agg, alias, self.ctx)
                infos.append(keys)
            else:
                frame, info = apply_bucket(frame, agg, alias, self.ctx)
                infos.append(info)
            if (depth < len(path) - 1 or inside_last) and _prunes(agg):
                bp = self.plan.buckets.get(id(agg))
                bound = bound_selection(agg, frame, bp.statement, bp.keys, DOC_COUNT) if bp else None
                if bound is not None:
                    frame.where.append(bound)
                    continue
                name, needed = self._selection(path[: depth + 1])
                ctes.update(needed)
                frame.where.append(in_selection(frame, name, missing_keys(agg, alias, infos[-1])))
        return frame, infos, ctes

    def _selection(self, path: tuple[Agg, ...]) -> tuple[str, dict[str, exp.Select]]:
        """A CTE with the buckets ``path[-1]`` selects (keys only), and the CTEs it needs."""
        cache_key = tuple(id(a) for a in path)
        cached = self.selections.get(cache_key)
        if cached is not None:
            return cached
        select, ctes, _ = self._bucket_select(path, lean=True, cardinality=CardinalityMode.AUTO)
        name = f"__s{len(self.selections)}"
        needed = {**ctes, name: select}
        self.selections[cache_key] = (name, needed)
        return name, needed

    # -- statements ------------------------------------------------------------------------

    def _metrics_statement(self, metrics: tuple[Agg, ...]) -> Statement:
        frame = self._root_frame()

        def build(mode: CardinalityMode) -> tuple[exp.Select, MetricCompiler, list[MetricPlan]]:
            compiler = MetricCompiler(frame.scope, self.params, self.now, mode)
            exact_only = mode is CardinalityMode.EXACT
            plans = [
                compiler.compile(agg, f"m{i}")
                for i, agg in enumerate(metrics)
                if not exact_only or isinstance(agg.spec, m.Cardinality)
            ]
            count = exp.alias_(exp.Count(this=exp.Star()), DOC_COUNT, quoted=True)
            projections = [count, *(e.copy() for e in compiler.selects)]
            select = exp.select(*projections, copy=False).from_(frame.source.copy(), copy=False)
            condition = frame.condition()
            if condition is not None:
                select = select.where(condition, copy=False)
            return select, compiler, plans

        approx = has_cardinality(metrics)
        tree, _, plans = build(CardinalityMode.APPROX if approx else CardinalityMode.AUTO)
        self.plan.root_metrics = tuple(plans)
        return self._statement(tree, plans, build(CardinalityMode.EXACT)[0] if approx else None)

    @staticmethod
    def _statement(tree: exp.Select, plans: list[MetricPlan], exact: exp.Select | None) -> Statement:
        """The statement, with its exact-cardinality twin when HyperLogLog may be too coarse."""
        if exact is None:
            return Statement(tree)
        checks = tuple(
            (p.columns["value"], int(p.agg.spec.precision_threshold * CARDINALITY_MARGIN))
            for p in plans
            if isinstance(p.agg.spec, m.Cardinality)
        )
        return Statement(tree, exact, checks)

    def _bucket(self, path: tuple[Agg, ...]) -> None:
        node = path[-1]
        if isinstance(node.spec, b.Range | b.Filters):
            tree, pivoted, unpivot = self._pivot(path)
            pivoted.statement = self._add(Statement(tree, unpivot=unpivot))
            self.plan.buckets[id(node)] = pivoted
            return
        metrics = tuple(a for a in node.subs if is_metric(a))
        keyed_path = any(not isinstance(a.spec, _SINGLE) for a in path)
        mode = CardinalityMode.AUTO if keyed_path or not has_cardinality(metrics) else CardinalityMode.APPROX
        fold = self.count_hits and self.plan.hits is None and len(path) == 1
        tree, _, plan = self._bucket_select(path, lean=False, cardinality=mode, fold=fold)
        if not isinstance(node.spec, b.Composite):
            tree = self._slotted(path, tree, plan) or tree
        exact = None
        if mode is CardinalityMode.APPROX:
            exact, _, _ = self._bucket_select(path, lean=False, cardinality=CardinalityMode.EXACT)
        statement = self._statement(tree, list(plan.metrics), exact)
        plan.statement = self._add(statement)
        if fold and any(s.alias_or_name == HITS for s in tree.expressions):
            self.plan.hits = (plan.statement, HITS)
        if isinstance(node.spec, b.Terms) and node.spec.min_doc_count == 0:
            plan.domain = self._add(Statement(self._domain(path)))
        self.plan.buckets[id(node)] = plan

    def _slotted(self, path: tuple[Agg, ...], tree: exp.Select, plan: BucketPlan) -> exp.Select | None:
        """The statement pre-grouped by UTC slots of its first date-histogram key (``sql/aggs/slots.py``)."""
        for agg in path:
            info = plan.info if agg is path[-1] else getattr(self.plan.buckets.get(id(agg)), "info", None)
            if isinstance(info, DateHistogramInfo):
                return pregroup(tree, self.aliases[id(agg)], info.rule)
        return None

    def _pivot(self, path: tuple[Agg, ...]) -> tuple[exp.Select, BucketPlan, Unpivot]:
        """Ranges and filters in one pass: ``COUNT_IF`` and metrics over ``CASE WHEN`` per bucket.

        A document may belong to several of these buckets; counting each condition beside
        the others reads every row once, where unnesting a list of matching buckets per row
        would build millions of small arrays (an order of magnitude slower).
        """
        node = path[-1]
        alias = self.aliases[id(node)]
        frame, _, ctes = self._frame(path[:-1], inside_last=True)
        found = bucket_conditions(frame, node, self.ctx)
        assert found is not None
        conditions, info = found
        metric_aggs = [a for a in node.subs if is_metric(a)]
        names = MetricCompiler(frame.scope, self.params, self.now, CardinalityMode.AUTO)
        plans = [names.compile(a, f"{alias}_m{i}") for i, a in enumerate(metric_aggs)]
        selects = frame.key_projections()
        renames: list[dict[str, str]] = []
        for i, condition in enumerate(conditions):
            compiler = MetricCompiler(frame.scope, self.params, self.now, CardinalityMode.AUTO, condition)
            selects.append(exp.alias_(exp.CountIf(this=condition), f"{DOC_COUNT}_{i}", quoted=True))
            rename = {f"{DOC_COUNT}_{i}": DOC_COUNT}
            for j, agg in enumerate(metric_aggs):
                mp = compiler.compile(agg, f"{alias}_b{i}_m{j}")
                rename.update({mp.columns[k]: plans[j].columns[k] for k in mp.columns})
            selects += compiler.selects
            renames.append(rename)
        select = exp.select(*selects).from_(frame.source.copy(), copy=False)
        where = frame.condition()
        if where is not None:
            select = select.where(where, copy=False)
        grouping = [e for e in frame.key_exprs() if not isinstance(e, exp.Literal)]
        if grouping:
            select = select.group_by(*grouping, copy=False).order_by(
                *[col(a) for a, _ in frame.keys], copy=False
            )
            select = select.limit(_number(self.limits.max_buckets + 1), copy=False)
        for name, cte in ctes.items():
            select = select.with_(name, as_=cte.copy(), copy=False)
        parents = tuple(a for a, _ in frame.keys)
        return (
            select,
            BucketPlan(node, -1, (alias,), parents, tuple(plans), info),
            Unpivot(alias, tuple(renames)),
        )

    def _domain(self, path: tuple[Agg, ...]) -> exp.Select:
        """Every term of the field in the collection, as Elasticsearch lists for ``min_doc_count: 0``.

        Like Elasticsearch (which reads the terms of the index), this ignores the query and
        the parent buckets; only ``nested`` levels matter, because they decide what a row is.
        """
        root = Frame(self.ctx.table.copy(), [], [], Scope(self.mapping))
        frame = root
        for agg in path[:-1]:
            if isinstance(agg.spec, b.Nested):
                frame, _ = apply_bucket(frame, agg, "", self.ctx)
            elif isinstance(agg.spec, b.ReverseNested):
                frame = Frame(self.ctx.table.copy(), [], [], Scope(self.mapping), root.counter)
        alias = self.aliases[id(path[-1])]
        frame, _ = apply_bucket(frame, path[-1], alias, self.ctx)
        select = exp.select(frame.key_projections()[-1]).distinct(copy=False)
        select = select.from_(frame.source.copy(), copy=False)
        condition = frame.condition()
        if condition is not None:
            select = select.where(condition, copy=False)
        return select.limit(_number(self.limits.max_buckets + 1), copy=False)

    def _bucket_select(
        self, path: tuple[Agg, ...], *, lean: bool, cardinality: CardinalityMode, fold: bool = False
    ) -> tuple[exp.Select, dict[str, exp.Select], BucketPlan]:
        node = path[-1]
        alias = self.aliases[id(node)]
        frame, infos, ctes = self._frame(path)
        mine = {a for a, _ in frame.keys if a == alias or a.startswith(alias + "_")}
        own = [(a, e) for a, e in frame.keys if a in mine]
        parents = [(a, e) for a, e in frame.keys if a not in mine]
        root_conditions = 0 if self.where == exp.true() else 1
        folded = (
            fold_hits(frame, node.spec, own, root_conditions) if fold and not parents and not lean else None
        )
        compiler = MetricCompiler(frame.scope, self.params, self.now, cardinality)
        metric_aggs = [a for a in node.subs if is_metric(a)]
        exact_only = cardinality is CardinalityMode.EXACT
        plans = [
            compiler.compile(a, f"{alias}_m{i}")
            for i, a in enumerate(metric_aggs)
            if not lean and (not exact_only or isinstance(a.spec, m.Cardinality))
        ]
        count = exp.Count(this=exp.Star())
        selects: list[exp.Expr] = frame.key_projections()
        if not lean:
            selects.append(exp.alias_(count.copy(), DOC_COUNT, quoted=True))
            selects += compiler.selects
        # Every tree below is built for this select alone: builders edit it in place (no copies).
        select = exp.select(*selects, copy=False).from_(frame.source.copy(), copy=False)
        condition = frame.condition()
        if condition is not None:
            select = select.where(condition, copy=False)
        grouping = [e for e in frame.key_exprs() if not isinstance(e, exp.Literal)]
        if grouping:  # a constant key (a single filter) would read as a column position
            select = select.group_by(*grouping, copy=False)
        spec = node.spec
        partition = [e.copy() for _, e in parents if not isinstance(e, exp.Literal)]
        if folded is not None:
            select = folded.apply(select)
        if isinstance(spec, b.Terms):
            select = rank_terms(
                select,
                node,
                own[0][1],
                partition,
                compiler,
                metric_aggs,
                lean=lean,
                max_buckets=self.limits.max_buckets,
                not_null=folded.not_null if folded is not None else None,
            )
        elif isinstance(spec, b.Composite):
            keys_info = infos[-1]
            assert isinstance(keys_info, CompositeKeys)
            select = select.order_by(*[o.copy() for o in keys_info.order], copy=False)
            select = select.limit(_number(min(spec.size, self.limits.max_buckets + 1)), copy=False)
        else:
            minimum = getattr(spec, "min_doc_count", 0)
            if minimum > 1:
                enough = exp.GTE(this=count.copy(), expression=exp.Literal.number(minimum))
                select = select.having(enough, copy=False)
            if frame.keys:
                select = select.order_by(*[col(a) for a, _ in frame.keys], copy=False)
                select = select.limit(_number(self.limits.max_buckets + 1), copy=False)
        if partition and isinstance(spec, b.Terms) and not lean:
            select = select.order_by(*[col(a) for a, _ in parents], col(RANK), copy=False)
            select = select.limit(_number(self.limits.max_buckets + 1), copy=False)
        if ctes:
            for name, cte in ctes.items():
                select = select.with_(name, as_=cte.copy(), copy=False)
        info = infos[-1]
        if isinstance(info, CompositeKeys):
            info = info.info
        plan = BucketPlan(
            node, -1, tuple(a for a, _ in own), tuple(a for a, _ in parents), tuple(plans), info
        )
        return select, ctes, plan

    # -- top hits --------------------------------------------------------------------------

    def _top_hits(self, agg: Agg, path: tuple[Agg, ...]) -> None:
        frame, _, ctes = self._frame(path, inside_last=True)
        select, columns, sort = top_hits_select(agg, frame, self.mapping, self.limits.max_buckets)
        for name, cte in ctes.items():
            select = select.with_(name, as_=cte.copy(), copy=False)
        index = self._add(Statement(select))
        self.plan.top_hits[id(agg)] = TopHitsPlan(agg, index, tuple(a for a, _ in frame.keys), columns, sort)


_SINGLE = (b.Filter, b.Missing, b.Global, b.Nested, b.ReverseNested)


def _number(n: int) -> exp.Expr:
    """A ``LIMIT`` count as a node (an ``int`` would be parsed from text by sqlglot's builder)."""
    return exp.Literal.number(n)


def plan_aggs(
    aggs: tuple[Agg, ...],
    name: str,
    mapping: Mapping,
    *,
    params: Params,
    now: datetime,
    where: exp.Expr,
    limits: AggLimits = AggLimits(),
    count_hits: bool = False,
) -> AggPlan:
    """Compile a parsed aggregation tree into statements over collection ``name``.

    ``count_hits``: also count the rows matching ``where`` in a statement if one can
    (``AggPlan.hits``), so that ``hits.total`` needs no statement of its own.
    """
    return Planner(name, mapping, params, now, where, limits, count_hits).build(aggs)

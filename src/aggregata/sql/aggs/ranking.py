"""Which ``terms`` buckets a statement keeps: ranked by the request's ``order``, cut to ``size``.

At the top level this is ``ORDER BY <order> LIMIT size`` with ``SUM(COUNT(*)) OVER ()`` as
``total`` (``sum_other_doc_count`` is ``total`` minus the kept buckets' counts). Below
another bucket every parent's buckets rank on their own: ``ROW_NUMBER() OVER (PARTITION BY
<parent keys> ORDER BY <order>)``, kept with ``QUALIFY rank <= size``. An order by a metric
sub-aggregation (``avg_price``, ``stats.max``, ``pct[99]``) ranks by the same expression the
metric reports (``MetricCompiler.order_expression``); ``_key`` always breaks ties.
"""

from __future__ import annotations

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import buckets as b
from aggregata.errors import BadRequest
from aggregata.sql.aggs.hits import RANK
from aggregata.sql.aggs.metrics import MetricCompiler

TOTAL = "total"
"""The column with the documents of all buckets of a parent (for ``sum_other_doc_count``)."""


def rank_terms(
    select: exp.Select,
    node: Agg,
    key: exp.Expr,
    partition: list[exp.Expr],
    compiler: MetricCompiler,
    metric_aggs: list[Agg],
    *,
    lean: bool,
    max_buckets: int,
    not_null: exp.Expr | None = None,
) -> exp.Select:
    """Rank the buckets of ``select`` (``node``'s ``key`` within ``partition``), keep the best.

    ``lean``: a selection of keys only (no ``total``); ``not_null``: the missing key is
    grouped too (for the hits) and left out of ``total``.
    """
    spec = node.spec
    assert isinstance(spec, b.Terms)
    count = exp.Count(this=exp.Star())
    order = _order(node, spec, key, compiler, metric_aggs)
    enough = exp.GTE(this=count.copy(), expression=exp.Literal.number(spec.min_doc_count))
    size = min(spec.size, max_buckets + 1)
    if spec.min_doc_count > 1:
        # Buckets with enough documents rank first. The full statement keeps the others
        # it has room for, so that ``total`` (for sum_other_doc_count, which counts them)
        # survives even when no bucket qualifies; the shaper drops them.
        order = [exp.Ordered(this=exp.Not(this=enough.copy()), desc=False, nulls_first=False), *order]
    if not partition:
        if not lean:
            counted: exp.Expr = count.copy()
            if not_null is not None:
                counted = exp.Case(
                    ifs=[exp.If(this=not_null.copy(), true=counted)], default=exp.Literal.number(0)
                )
            total = exp.Window(this=exp.Sum(this=counted))
            select = select.select(exp.alias_(total, TOTAL, quoted=True), copy=False)
        elif spec.min_doc_count > 1:
            select = select.having(enough, copy=False)
        # A node, not an int: sqlglot's builder would parse an int from text.
        return select.order_by(*order, copy=False).limit(exp.Literal.number(size), copy=False)
    rank = exp.Window(this=exp.RowNumber(), partition_by=partition, order=exp.Order(expressions=order))
    keep = exp.LTE(this=rank.copy(), expression=exp.Literal.number(size))
    if not lean:
        total = exp.Window(this=exp.Sum(this=count.copy()), partition_by=[p.copy() for p in partition])
        ranked = (exp.alias_(total, TOTAL, quoted=True), exp.alias_(rank, RANK, quoted=True))
        select = select.select(*ranked, copy=False)
    return select.qualify(exp.and_(keep, enough) if lean and spec.min_doc_count > 1 else keep, copy=False)


def _order(
    node: Agg, spec: b.Terms, key: exp.Expr, compiler: MetricCompiler, metric_aggs: list[Agg]
) -> list[exp.Ordered]:
    order: list[exp.Ordered] = []
    by_name = {a.name: a for a in metric_aggs}
    for criterion in spec.order:
        if criterion.path == "_count":
            value: exp.Expr = exp.Count(this=exp.Star())
        elif criterion.path == "_key":
            value = key.copy()
        else:
            name, _, rest = criterion.path.partition(".")
            if "[" in name:
                name, _, rest = name.partition("[")
                rest = rest.rstrip("]")
            target = by_name.get(name)
            if target is None:
                raise BadRequest(
                    f"Invalid aggregation order path [{criterion.path}]. The path must point to a metric"
                    f" sub-aggregation of terms aggregation [{node.name}]"
                )
            plan = compiler.compile(target, f"o{len(order)}")
            value = compiler.order_expression(plan, rest or None)
        order.append(exp.Ordered(this=value, desc=criterion.desc, nulls_first=False))
    if not any(c.path == "_key" for c in spec.order):
        order.append(exp.Ordered(this=key.copy(), desc=False, nulls_first=False))
    return order

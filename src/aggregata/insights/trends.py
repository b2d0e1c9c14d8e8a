"""Trends: numbers of events (or actors, or property aggregates) per time bucket.

``TrendsService.trends`` parses the request into a plan (``insights/plan.py``), lets the
``pick_rollup`` pass choose raw events or a rollup, runs per series (and per period, with
``compare_to_previous``) a ranking of breakdown values, the per-bucket values and the
totals, then shapes the response: missing buckets are 0, breakdown values past the limit
are one ``$other`` series, ``cumulative`` runs a sum, and a ``formula`` combines series.

``total`` is the series' math over the whole date range (not a sum of buckets, which is
wrong for uniques and averages): events in the range, actors in the range, the average
over all events of the range, etc. For ``dau``/``wau``/``mau`` it is the actors in the
range; for a ``formula`` the formula applied to the series' totals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from aggregata.dsl.expression import compile_expression
from aggregata.insights.common import event_schema
from aggregata.insights.passes.pick_rollup import pick_rollup
from aggregata.insights.plan import (
    Period,
    SeriesPlan,
    TrendsPlan,
    TrendsRequest,
    formula_names,
    parse_trends,
    validate,
)
from aggregata.insights.rollups import RollupSpec, decode
from aggregata.insights.sources import OTHER, RawRelation, Relation, RollupRelation, Top
from aggregata.insights.trends_sql import Query, ranking, values
from aggregata.storage.engine import Engine

Row = dict[str, Any]
BreakdownValue = str | None | list[str | None]


class RollupCatalog(Protocol):
    def built(self, collection: str) -> RollupSpec | None: ...


def number(value: Any) -> int | float:
    """A SQL result as a JSON number: NULL (no rows) is 0, integral values are ints."""
    if value is None:
        return 0
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value  # type: ignore[no-any-return]


class TrendsService:
    """Runs trends requests on an engine; ``rollups`` says what rollups exist (optional)."""

    def __init__(
        self,
        engine: Engine,
        rollups: RollupCatalog | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.rollups = rollups
        self.clock = clock

    def plan(self, body: Any) -> TrendsPlan:
        """Parse and plan a request (public so tests can ask which source was chosen)."""
        req: TrendsRequest = validate(TrendsRequest, body)
        coll = self.engine.get_collection(req.collection)
        plan = parse_trends(req, event_schema(coll, req.actor), now=self.clock())
        built = self.rollups.built(coll.name) if self.rollups is not None and req.use_rollups else None
        return pick_rollup(plan, built)

    def trends(self, body: Any, *, force_raw: bool = False) -> dict[str, Any]:
        started = time.perf_counter()
        plan = self.plan(body)
        if force_raw:
            plan = pick_rollup(plan, None)
        rel = relation(plan)
        out: list[dict[str, Any]] = []
        for period in plan.periods:
            results = [self._series(rel, s, period) for s in plan.series]
            if plan.formula:
                results = [_formula(plan, results, period)]
            for group in results:
                for item in group:
                    if len(plan.periods) > 1:
                        item["compare"] = period.compare
                    out.append(item)
        took = int((time.perf_counter() - started) * 1000)
        return {"series": out, "source": plan.source.label, "took": took}

    def _run(self, query: Query) -> list[Row]:
        rows: list[Row] = self.engine.query(query.tree, query.params).to_pylist()
        return rows

    def _counted(
        self, rel: Relation, series: SeriesPlan, period: Period
    ) -> tuple[list[tuple[str, ...]], list[Row], dict[tuple[str, ...], int | float]] | None:
        """For counts (``total``), one query: the ranking and the totals are sums of the
        buckets. None when the breakdown has more values than its limit (then ``$other``
        needs the ranking first)."""
        if series.math != "total":
            return None
        plan = rel.plan
        n_keys = len(plan.breakdowns)
        per_bucket = self._run(values(rel, series, period, None, per_bucket=True))
        sums: dict[tuple[str, ...], int | float] = {}
        for row in per_bucket:
            key = tuple(row[f"_k{i}"] for i in range(n_keys))
            sums[key] = sums.get(key, 0) + number(row["v"])
        if not n_keys:
            return [()], per_bucket, sums
        if len(sums) > plan.breakdown_limit:
            return None
        return _ranked(sums), per_bucket, sums

    def _series(self, rel: Relation, series: SeriesPlan, period: Period) -> list[dict[str, Any]]:
        """One result per breakdown value (one in all without a breakdown)."""
        plan = rel.plan
        n_keys = len(plan.breakdowns)
        counted = self._counted(rel, series, period)
        if counted is not None:
            order, per_bucket, total = counted
        else:
            order, top = breakdown_order(self._run, rel, series, period)
            per_bucket = self._run(values(rel, series, period, top, per_bucket=True))
            totals = self._run(values(rel, series, period, top, per_bucket=False))
            total = {tuple(r[f"_k{i}"] for i in range(n_keys)): number(r["v"]) for r in totals}
        index = {b.key: i for i, b in enumerate(period.buckets)}
        data: dict[tuple[str, ...], list[int | float]] = {k: [0] * len(index) for k in order}
        for row in per_bucket:
            key = tuple(row[f"_k{i}"] for i in range(n_keys))
            slot = index.get(row["b"])
            if slot is not None and key in data:
                data[key][slot] = number(row["v"])
        labels = [b.label for b in period.buckets]
        out = []
        for key in order:
            points = data[key]
            if plan.cumulative:
                points = _running_sum(points)
            out.append(
                {
                    "name": series.name,
                    "breakdown_value": breakdown_value(key, n_keys),
                    "labels": labels,
                    "data": points,
                    "total": total.get(key, 0),
                }
            )
        return out


def _ranked(sums: dict[tuple[str, ...], int | float]) -> list[tuple[str, ...]]:
    """Keys by count, most first, ties by key: the order ``trends_sql.ranking`` gives."""
    return sorted(sums, key=lambda k: (-sums[k], tuple("" if x is None else x for x in k)))


def breakdown_order(
    run: Callable[[Query], list[Row]], rel: Relation, series: SeriesPlan, period: Period
) -> tuple[list[tuple[str, ...]], Top]:
    """The breakdown keys to report, most events first (``[()]`` without a breakdown), and
    the ``top`` values the rest is folded into ``"$other"`` against (None: no other)."""
    plan = rel.plan
    n_keys = len(plan.breakdowns)
    if not n_keys:
        return [()], None
    ranked = run(ranking(rel, series, period, plan.breakdown_limit))
    order = [tuple(r[f"_k{i}"] for i in range(n_keys)) for r in ranked]
    if len(order) <= plan.breakdown_limit:
        return order, None
    top = order[: plan.breakdown_limit]
    return [*top, tuple(OTHER for _ in range(n_keys))], list(top)


def relation(plan: TrendsPlan) -> Relation:
    source = plan.source
    if source.kind == "rollup" and source.spec is not None and source.grain is not None:
        return RollupRelation(plan, source.spec, source.grain)
    return RawRelation(plan)


def _running_sum(points: list[int | float]) -> list[int | float]:
    out: list[int | float] = []
    acc: int | float = 0
    for p in points:
        acc += p
        out.append(acc)
    return out


def breakdown_value(key: tuple[str, ...], n_keys: int) -> BreakdownValue:
    if n_keys == 0:
        return None
    if all(k == OTHER for k in key):
        return OTHER
    decoded = [decode(k) for k in key]
    return decoded[0] if n_keys == 1 else decoded


def _formula(plan: TrendsPlan, results: list[list[dict[str, Any]]], period: Period) -> list[dict[str, Any]]:
    """The formula per bucket and breakdown value, over the series it names (missing = 0)."""
    assert plan.formula is not None
    names = formula_names(plan)
    expression = compile_expression(plan.formula, allowed_names=set(names))
    by_value: dict[str, dict[int, dict[str, Any]]] = {}
    order: list[str] = []
    for index, group in enumerate(results):
        for item in group:
            ident = repr(item["breakdown_value"])
            if ident not in by_value:
                by_value[ident] = {}
                order.append(ident)
            by_value[ident][index] = item
    out = []
    for ident in order:
        found = by_value[ident]
        sample = next(iter(found.values()))
        series_data = {name: found[i]["data"] if i in found else None for name, i in names.items()}
        data = [
            expression.evaluate({n: (d[j] if d is not None else 0) for n, d in series_data.items()})
            for j in range(len(period.buckets))
        ]
        totals = {name: found[i]["total"] if i in found else 0 for name, i in names.items()}
        out.append(
            {
                "name": plan.formula,
                "breakdown_value": sample["breakdown_value"],
                "labels": sample["labels"],
                "data": data,
                "total": expression.evaluate(totals),
            }
        )
    return out

"""Run a search: parse → compile → execute on the engine → shape Elasticsearch's response."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aggregata.dsl.aggs import AggLimits, parse_aggs
from aggregata.dsl.search import SearchRequest, parse_search
from aggregata.model.mapping import ID_FIELD, Mapping
from aggregata.model.source import json_value, unflatten
from aggregata.search.aggregations import Executed, Shaper, aggregation_runs, bound_params, execute
from aggregata.search.pipeline import PIPELINE_TYPES, plan_pipelines
from aggregata.search.plans import PlanCache, Prepared, plan_key
from aggregata.sql.aggs.plan import AggPlan, plan_aggs
from aggregata.sql.dialects import render
from aggregata.sql.search import CompiledSearch, compile_search
from aggregata.storage.engine import Engine


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sort_value(value: Any) -> Any:
    """Sort values as Elasticsearch reports them: dates as epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


class SearchService:
    """Executes search requests; the clock is injected so tests can pin ``now``."""

    def __init__(
        self, engine: Engine, *, clock: Callable[[], datetime] = _utcnow, limits: AggLimits = AggLimits()
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.limits = limits
        self.plans = PlanCache()

    def search(self, collection: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """Run a search body: compiled afresh, or the plan compiled for the same body and
        mapping before (``search/plans.py``); either way its statements run now."""
        started = time.perf_counter()
        key = plan_key(collection, body)
        cached = self.plans.get(key) if key is not None else None
        if cached is not None:
            coll = self.engine.get_collection(collection)
            if cached.mapping is coll.mapping:
                return self._run(coll.name, cached, started, cached=True)
        request = parse_search(body)  # before the lookup: a bad body is a 400 for any index
        coll = self.engine.get_collection(collection)
        prepared = self._prepare(coll.name, coll.mapping, request)
        if key is not None:
            self.plans.put(key, prepared)
        return self._run(coll.name, prepared, started, cached=False)

    def _prepare(self, name: str, mapping: Mapping, request: SearchRequest) -> Prepared:
        """Parse the aggregations and compile every statement of ``request`` (no IO)."""
        aggs = (
            parse_aggs(request.aggs, limits=self.limits, pipeline_types=PIPELINE_TYPES)
            if request.aggs
            else ()
        )
        pipelines = plan_pipelines(request.aggs) if aggs else None  # a bad pipeline costs no query
        now = self.clock()
        compiled = compile_search(request, name, mapping, now=now)
        plan = None
        if aggs:
            plan = plan_aggs(
                aggs,
                name,
                mapping,
                params=compiled.params,
                now=now,
                where=compiled.where,
                limits=self.limits,
                count_hits=compiled.total is not None,
            )
        return Prepared(mapping, request, aggs, pipelines, compiled, plan)

    def _run(self, name: str, prepared: Prepared, started: float, *, cached: bool) -> dict[str, Any]:
        request, compiled, plan, aggs = prepared.request, prepared.compiled, prepared.plan, prepared.aggs
        pipelines = prepared.pipelines
        params = compiled.params.copy()  # the statements bind keys they choose into it
        timings: dict[str, float] = {"compile_ms": (time.perf_counter() - started) * 1000}
        hits: list[dict[str, Any]] = []
        if compiled.hits is not None:
            t0 = time.perf_counter()
            bound = bound_params(compiled.hits, params.values)
            rows = self.engine.query(compiled.hits, bound, timeout=request.timeout_s).to_pylist()
            timings["hits_ms"] = (time.perf_counter() - t0) * 1000
            hits = [self._hit(name, row, compiled.columns, compiled.sort_fields, request) for row in rows]
        result: dict[str, Any] | None = None
        executed = None
        if plan is not None:
            t0 = time.perf_counter()
            executed = execute(self.engine, plan, params, timeout=request.timeout_s, limits=self.limits)
            result = Shaper(name, plan, executed.rows, self.limits).response(aggs)
            if pipelines is not None:
                pipelines.apply(result)
            timings["aggs_ms"] = (time.perf_counter() - t0) * 1000
        response: dict[str, Any] = {"took": 0, "timed_out": False, "_shards": _SHARDS, "hits": {}}
        total = self._total(request, compiled, params.values, hits_total(plan, executed), timings)
        if total is not None:
            response["hits"]["total"] = total
        response["hits"]["max_score"] = None if request.sort or not hits else 1.0
        response["hits"]["hits"] = hits
        if result is not None:
            response["aggregations"] = result
        response["took"] = int((time.perf_counter() - started) * 1000)
        if request.profile:
            dialect = self.engine.dialect
            runs = list(aggregation_runs(executed, dialect)) if executed is not None else []
            ran = (compiled.hits, compiled.total if "total_ms" in timings else None)
            response["profile"] = {
                "dialect": dialect,
                "plan": "cached" if cached else "compiled",
                "sql": [render(t, dialect) for t in ran if t is not None] + [run["sql"] for run in runs],
                "params": {k: json_value(v) for k, v in params.values.items()},
                "timings": timings,
                "aggregations": runs,
            }
        return response

    def _total(
        self,
        request: SearchRequest,
        compiled: CompiledSearch,
        params: dict[str, Any],
        counted: int | None,
        timings: dict[str, float],
    ) -> dict[str, Any] | None:
        """``hits.total``: the count an aggregation statement made (``counted``), else its own statement."""
        if compiled.total is None:
            return None
        total = counted
        if total is None:
            t0 = time.perf_counter()
            bound = bound_params(compiled.total, params)
            table = self.engine.query(compiled.total, bound, timeout=request.timeout_s)
            total = int(table.column(0)[0].as_py())
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
        track = request.track_total_hits
        capped = track is not True and isinstance(track, int) and total > track
        return {"value": track if capped else total, "relation": "gte" if capped else "eq"}

    @staticmethod
    def _hit(
        index: str,
        row: dict[str, Any],
        columns: list[str],
        sort_fields: list[str],
        request: SearchRequest,
    ) -> dict[str, Any]:
        hit: dict[str, Any] = {
            "_index": index,
            "_id": row[ID_FIELD],
            "_score": None if request.sort else 1.0,
        }
        if request.source.enabled:
            hit["_source"] = unflatten({c: row[c] for c in columns})
        if request.sort:
            hit["sort"] = [_sort_value(row[f]) for f in sort_fields] + [row[ID_FIELD]]
        return hit


def hits_total(plan: AggPlan | None, executed: Executed | None) -> int | None:
    """The hit count an aggregation statement returned beside its buckets (``AggPlan.hits``).

    ``None`` when no statement counted them, or when the one that did returned no row (all
    the hits lack its key): then the count needs a statement of its own.
    """
    if plan is None or plan.hits is None or executed is None:
        return None
    statement, column = plan.hits
    rows = executed.rows[statement]
    return int(rows[0][column]) if rows else None


_SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}

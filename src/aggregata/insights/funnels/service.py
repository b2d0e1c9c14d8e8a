"""Run a funnel request: validate → plan → one query on the engine → shape the response."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aggregata.insights.common import event_schema
from aggregata.insights.funnels import views
from aggregata.insights.funnels.layers import Compiled
from aggregata.insights.funnels.models import FunnelRequest
from aggregata.insights.funnels.plan import FunnelPlan, plan_funnel
from aggregata.insights.plan import validate
from aggregata.storage.engine import Engine


@dataclass(frozen=True)
class View:
    query: Callable[[FunnelPlan], Compiled]
    shape: Callable[[FunnelPlan, list[dict[str, Any]]], dict[str, Any]]


VIEWS = {
    "steps": View(views.steps_query, views.steps_response),
    "time_to_convert": View(views.time_to_convert_query, views.time_to_convert_response),
    "trends": View(views.trends_query, views.trends_response),
}


class FunnelService:
    """Runs funnel requests on an engine; the clock is injected so tests can pin ``now``."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.clock = clock

    def plan(self, body: Any) -> FunnelPlan:
        req: FunnelRequest = validate(FunnelRequest, body)
        coll = self.engine.get_collection(req.collection)
        return plan_funnel(req, event_schema(coll, req.actor), now=self.clock())

    def compile(self, body: Any) -> Compiled:
        """The query a request runs (for tests and ``profile``-style inspection)."""
        plan = self.plan(body)
        return VIEWS[plan.req.funnel_viz].query(plan)

    def funnel(self, body: Any) -> dict[str, Any]:
        started = time.perf_counter()
        plan = self.plan(body)
        view = VIEWS[plan.req.funnel_viz]
        compiled = view.query(plan)
        rows: list[dict[str, Any]] = self.engine.query(compiled.tree, compiled.params).to_pylist()
        out = view.shape(plan, rows)
        out["took"] = int((time.perf_counter() - started) * 1000)
        return out

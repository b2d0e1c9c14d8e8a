"""``InsightsService``: every product-analytics question one engine answers, in one place.

A thin composition (routers and the CLI call it); each insight lives in its own module.
``clock`` gives the request instant, so relative dates (``-7d``) are testable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aggregata.insights.lifecycle import lifecycle
from aggregata.insights.rollup_service import RollupService
from aggregata.insights.stickiness import stickiness
from aggregata.insights.timeseries import distribution, time_series
from aggregata.insights.trends import TrendsService
from aggregata.storage.engine import Engine


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InsightsService:
    """Trends, stickiness, lifecycle and collection time series over one engine."""

    def __init__(
        self,
        engine: Engine,
        rollups: RollupService | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.rollups = rollups
        self.clock = clock
        self.trends_service = TrendsService(engine, rollups, clock=clock)

    def trends(self, body: Any) -> dict[str, Any]:
        return self.trends_service.trends(body)

    def stickiness(self, body: Any) -> dict[str, Any]:
        return stickiness(self.engine, body, now=self.clock())

    def lifecycle(self, body: Any) -> dict[str, Any]:
        return lifecycle(self.engine, body, now=self.clock())

    def time_series(self, collection: str, args: Mapping[str, str]) -> dict[str, Any]:
        return time_series(self.engine, collection, args, now=self.clock())

    def distribution(self, collection: str, field: str, args: Mapping[str, str]) -> dict[str, Any]:
        return distribution(self.engine, collection, field, args, now=self.clock())

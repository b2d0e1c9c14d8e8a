"""The services one running instance is made of, built from settings in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from aggregata.ingest.service import IngestService
from aggregata.insights.rollup_service import RollupService
from aggregata.insights.service import InsightsService
from aggregata.search.service import SearchService
from aggregata.settings import Settings
from aggregata.storage.duckdb import DuckDBEngine


@dataclass
class Services:
    settings: Settings
    engine: DuckDBEngine
    ingest: IngestService
    search: SearchService
    # Built from the engine when not given (tests pass their own, with a fixed clock).
    rollups: RollupService = field(default=None)  # type: ignore[assignment]
    insights: InsightsService = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rollups is None:
            self.rollups = RollupService(self.engine)
        if self.insights is None:
            self.insights = InsightsService(self.engine, self.rollups)

    def close(self) -> None:
        self.engine.close()


def build_services(settings: Settings) -> Services:
    engine = DuckDBEngine(
        settings.database_path,
        threads=settings.threads,
        memory_limit=settings.memory_limit,
        checkpoint_threshold=settings.checkpoint_threshold,
        query_timeout_s=settings.query_timeout_s,
    )
    services = Services(settings, engine, IngestService(engine), SearchService(engine))
    services.rollups.ensure_all_in_background()
    return services

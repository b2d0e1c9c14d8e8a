"""The services one running instance is made of, built from settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from aggregata.ingest.service import IngestService
from aggregata.search.service import SearchService
from aggregata.settings import Settings
from aggregata.storage.duckdb import DuckDBEngine


@dataclass
class Services:
    settings: Settings
    engine: DuckDBEngine
    ingest: IngestService
    search: SearchService

    def close(self) -> None:
        self.engine.close()


def build_services(settings: Settings) -> Services:
    engine = DuckDBEngine(
        settings.database_path,
        threads=settings.threads,
        memory_limit=settings.memory_limit,
        query_timeout_s=settings.query_timeout_s,
    )
    return Services(settings, engine, IngestService(engine), SearchService(engine))

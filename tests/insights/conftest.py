"""Fixtures for insight tests: generated events loaded once per module, and their oracle frame.

Loading a few thousand events takes a moment, so each module shares one store (the tests
only read it); tests that write get their own engine (``fresh``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from aggregata.api.app import create_app
from aggregata.demo.generate import generate_events
from aggregata.ingest.events import EVENT_MAPPING, EVENT_SETTINGS
from aggregata.ingest.service import IngestService
from aggregata.insights.rollup_service import RollupService
from aggregata.insights.service import InsightsService
from aggregata.search.service import SearchService
from aggregata.services import Services
from aggregata.settings import Settings
from aggregata.storage.duckdb import DuckDBEngine
from aggregata.storage.engine import EVENTS, Engine
from tests.backends import BACKENDS, open_engine
from tests.insights.oracle import events_frame

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AUTUMN_END = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)  # past Berlin's (Oct 25) and New York's (Nov 1) DST end
SPRING_END = datetime(2026, 4, 5, tzinfo=UTC)  # past New York's (Mar 8) and Berlin's (Mar 29) DST start
BREAKDOWNS = ["country", "browser"]


def make_events(n: int, *, seed: int, end: datetime, days: int, users: int) -> list[dict[str, Any]]:
    return list(generate_events(n, seed=seed, n_users=users, days=days, end=end))


def load(
    engine: Engine, name: str, events: list[dict[str, Any]], *, breakdowns: list[str] | None = None
) -> None:
    """Create an event collection with rollups over ``breakdowns`` and ingest ``events``."""
    settings: dict[str, Any] = {**EVENT_SETTINGS, "rollups": {"breakdowns": breakdowns or []}}
    engine.create_collection(name, EVENT_MAPPING, kind=EVENTS, settings=settings)
    ingest = IngestService(engine)
    for i in range(0, len(events), 2_000):
        result = ingest.ingest_events(events[i : i + 2_000], collection=name)
        assert not result.errors, result.errors[:3]


@pytest.fixture(scope="module")
def autumn_events() -> list[dict[str, Any]]:
    return make_events(6_000, seed=11, end=AUTUMN_END, days=40, users=300)


@pytest.fixture(scope="module")
def spring_events() -> list[dict[str, Any]]:
    return make_events(2_000, seed=12, end=SPRING_END, days=40, users=120)


def _store(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    autumn_events: list[dict[str, Any]],
    spring_events: list[dict[str, Any]],
) -> Iterator[tuple[Engine, RollupService]]:
    """A store with rollups (where the engine maintains them): ``events`` and ``spring``."""
    chdb_dir = request.getfixturevalue("chdb_dir") if backend == "clickhouse" else None
    engine = open_engine(backend, tmp_path_factory.mktemp("insights"), chdb_dir=chdb_dir)
    rollups = RollupService(engine)
    load(engine, "events", autumn_events, breakdowns=BREAKDOWNS)
    load(engine, "spring", spring_events, breakdowns=BREAKDOWNS)
    yield engine, rollups
    engine.close()


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    autumn_events: list[dict[str, Any]],
    spring_events: list[dict[str, Any]],
) -> Iterator[tuple[Engine, RollupService]]:
    """The module's store, once per backend (DuckDB, ClickHouse through chDB)."""
    yield from _store(request.param, tmp_path_factory, request, autumn_events, spring_events)


@pytest.fixture(scope="module")
def duck_store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    autumn_events: list[dict[str, Any]],
    spring_events: list[dict[str, Any]],
) -> Iterator[tuple[Engine, RollupService]]:
    yield from _store("duckdb", tmp_path_factory, request, autumn_events, spring_events)


@pytest.fixture(scope="module")
def insights(store: tuple[Engine, RollupService]) -> InsightsService:
    engine, rollups = store
    return InsightsService(engine, rollups, clock=lambda: NOW)


@pytest.fixture(scope="module")
def autumn(autumn_events: list[dict[str, Any]]) -> pd.DataFrame:
    return events_frame(autumn_events)


@pytest.fixture(scope="module")
def spring(spring_events: list[dict[str, Any]]) -> pd.DataFrame:
    return events_frame(spring_events)


@pytest.fixture
def fresh(backend: Engine) -> tuple[Engine, RollupService, InsightsService]:
    """An empty store with rollup maintenance, once per backend, for tests that write."""
    rollups = RollupService(backend)
    return backend, rollups, InsightsService(backend, rollups, clock=lambda: NOW)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, DuckDBEngine]]:
    """The HTTP app on a fresh store whose insights see the fixed clock ``NOW``."""
    engine = DuckDBEngine(tmp_path / "db.duckdb", threads=2)
    rollups = RollupService(engine)
    settings = Settings(data_dir=tmp_path, max_body_bytes=10_000_000)
    services = Services(
        settings,
        engine,
        IngestService(engine),
        SearchService(engine, clock=lambda: NOW),
        rollups=rollups,
        insights=InsightsService(engine, rollups, clock=lambda: NOW),
    )
    with TestClient(create_app(settings, services)) as client:
        yield client, engine
    engine.close()

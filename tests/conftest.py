"""Shared fixtures: real engines on temporary directories, the app over a real HTTP client."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aggregata.api.app import create_app
from aggregata.ingest.service import IngestService
from aggregata.search.service import SearchService
from aggregata.services import Services
from aggregata.settings import Settings
from aggregata.storage.duckdb import DuckDBEngine
from aggregata.storage.engine import Engine
from tests.backends import BACKENDS, chdb_available, new_database, open_engine

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def require_services() -> bool:
    """In CI (AGGREGATA_REQUIRE_SERVICES=1) a missing service fails instead of skipping."""
    return os.environ.get("AGGREGATA_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    if require_services():
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB data directory of this process (see ``tests/backends.py``)."""
    if not chdb_available():
        missing_service("chdb is not installed")
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each backend in turn; ClickHouse is skipped (or fails in CI) without chDB."""
    name: str = request.param
    return name


@pytest.fixture
def make_engine(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Engine]]:
    """Opens an engine on the current backend; each call reopens the same storage."""
    chdb_dir = request.getfixturevalue("chdb_dir") if backend_name == "clickhouse" else None
    database = new_database()
    opened: list[Engine] = []

    def make() -> Engine:
        eng = open_engine(backend_name, tmp_path, chdb_dir=chdb_dir, database=database)
        opened.append(eng)
        return eng

    yield make
    for eng in opened:
        eng.close()


@pytest.fixture
def backend(make_engine: Callable[[], Engine]) -> Engine:
    """A fresh engine, once per backend: take this fixture to run a test on both."""
    return make_engine()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(tmp_path / "db.duckdb", threads=2)
    yield eng
    eng.close()


@pytest.fixture
def services(tmp_path: Path, engine: DuckDBEngine) -> Services:
    settings = Settings(data_dir=tmp_path, max_body_bytes=1_000_000)
    return Services(settings, engine, IngestService(engine), SearchService(engine, clock=lambda: NOW))


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services.settings, services)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def which(cmd: str) -> str | None:
    return shutil.which(cmd)

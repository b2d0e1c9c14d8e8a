"""Shared fixtures: real engines on temporary directories, the app over a real HTTP client."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def require_services() -> bool:
    """In CI (AGGREGATA_REQUIRE_SERVICES=1) a missing service fails instead of skipping."""
    return os.environ.get("AGGREGATA_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    if require_services():
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


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

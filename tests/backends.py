"""Open real engines for tests on either backend: DuckDB, or ClickHouse through chDB.

A test opts in to running on both by taking the ``backend`` fixture (a fresh engine) or
``make_engine`` (a factory that can also reopen the same storage); a module-scoped fixture
calls ``open_engine`` itself with its own parametrization.

chDB embeds one ClickHouse server per process and refuses a second data directory, so
every ClickHouse engine of a test session lives in one directory (``chdb_dir``) and gets a
fresh *database* there instead of a fresh directory: engines stay independent and several
can be open at once.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from aggregata.storage.duckdb import DuckDBEngine
from aggregata.storage.engine import Engine

BACKENDS = ("duckdb", "clickhouse")

_databases = itertools.count()


def chdb_available() -> bool:
    try:
        import chdb  # noqa: F401
    except ImportError:
        return False
    return True


def new_database() -> str:
    """A ClickHouse database name no other engine of this test session uses."""
    return f"test_{next(_databases)}"


def open_engine(backend: str, directory: Path, *, chdb_dir: Path | None = None, database: str = "") -> Engine:
    """An engine on ``backend``: DuckDB in ``directory``, ClickHouse in ``database`` of ``chdb_dir``."""
    if backend == "duckdb":
        return DuckDBEngine(directory / "db.duckdb", threads=2)
    if backend == "clickhouse":
        from aggregata.storage.clickhouse import ClickHouseEngine

        if chdb_dir is None:
            raise ValueError("a ClickHouse engine needs the session's chdb_dir")
        return ClickHouseEngine(chdb_dir, database=database or new_database())
    raise ValueError(f"unknown backend [{backend}]")

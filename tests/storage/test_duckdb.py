"""The DuckDB engine: group commit, the id index, query timeouts, settings (the ``Engine``
contract itself is tested on both backends in ``test_engine.py``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlglot import exp

from aggregata.ingest.service import IngestService
from aggregata.storage.duckdb import DuckDBEngine
from aggregata.storage.engine import Collection, Transaction


def test_group_commit_many_concurrent_requests(engine: DuckDBEngine) -> None:
    ingest = IngestService(engine)
    ingest.ensure_collection("c")

    def run(k: int) -> None:
        for j in range(10):
            ingest.ingest("c", [{"_id": f"{k}-{j}-{i}", "v": i} for i in range(20)])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.count("c") == 8 * 10 * 20


class _FailOnce:
    """A write listener whose first commit fails: the rows of that write roll back."""

    def __init__(self) -> None:
        self.failed = False

    def inserted(self, tx: Transaction, coll: Collection, rows: exp.Expr, columns: list[str]) -> None:
        pass

    def removing(self, tx: Transaction, coll: Collection, rows: exp.Expr) -> None:
        pass

    def committing(self, tx: Transaction) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("listener failed")

    def dropped(self, tx: Transaction, name: str) -> None:
        pass

    def committed(self, tx: Transaction) -> None:
        pass

    def due(self, idle: bool) -> None:
        return None


def test_ids_stay_unique_across_reopen_delete_and_failed_writes(tmp_path: Path) -> None:
    """The id index is rebuilt on open, tolerates deleted ids, and forgets rolled-back rows."""
    path = tmp_path / "db.duckdb"
    engine = DuckDBEngine(path)
    IngestService(engine).ingest("c", [{"_id": str(i), "v": i} for i in range(10)])
    engine.close()
    engine = DuckDBEngine(path)
    ingest = IngestService(engine)
    again = ingest.ingest("c", [{"_id": "3", "v": 3}, {"_id": "10", "v": 10}])
    assert (again.stored, again.duplicates) == (1, 1)
    ingest.ingest("c", [], delete=["4"])
    back = ingest.ingest("c", [{"_id": "4", "v": 44}, {"_id": "5", "v": 5}])
    assert (back.stored, back.duplicates) == (1, 1)
    engine.add_listener(_FailOnce())
    with pytest.raises(RuntimeError):
        ingest.ingest("c", [{"_id": "11", "v": 11}])
    retried = ingest.ingest("c", [{"_id": "11", "v": 11}, {"_id": "12", "v": 12}])
    assert (retried.stored, retried.duplicates) == (2, 0)
    assert engine.count("c") == 13
    engine.close()


def test_query_past_its_timeout_is_cancelled(engine: DuckDBEngine) -> None:
    """The watchdog interrupts the query; the cursor then serves the next one normally."""
    from aggregata.errors import QueryTimeout

    slow = "SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3"
    started = time.perf_counter()
    with pytest.raises(QueryTimeout):
        engine.query_sql(slow, timeout=0.2)
    assert time.perf_counter() - started < 10
    assert engine.query_sql("SELECT 1 AS one", timeout=5).to_pylist() == [{"one": 1}]


def test_checkpoint_threshold_reaches_duckdb(tmp_path: Path) -> None:
    engine = DuckDBEngine(tmp_path / "db.duckdb", checkpoint_threshold="64MB")
    try:
        got = engine.query_sql("SELECT current_setting('checkpoint_threshold') AS t").to_pylist()
        assert got[0]["t"] == "61.0 MiB"  # 64 MB as DuckDB reports it
    finally:
        engine.close()


def test_results_come_the_same_through_the_public_api() -> None:
    """``arrow_result`` uses DuckDB's internal single submit where it exists and the public
    relation API where it does not: the same table either way (types, names, parameters)."""
    import duckdb

    from aggregata.storage.duckdb import arrow_result

    class PublicOnly:
        """A real cursor offering only DuckDB's public API, as a version without ``_submit``."""

        def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
            self.sql = cur.sql

    cur = duckdb.connect()
    sql = "SELECT $a::BIGINT AS n, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS t, [1, 2] AS l, NULL AS x"
    fast = arrow_result(cur, sql, {"a": 7})
    public = arrow_result(PublicOnly(cur), sql, {"a": 7})  # type: ignore[arg-type]
    assert fast.equals(public) and fast.schema == public.schema
    assert fast.to_pylist()[0]["n"] == 7

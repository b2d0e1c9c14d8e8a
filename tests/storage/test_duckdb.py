from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlglot import exp

from aggregata.errors import CollectionNotFound, Conflict
from aggregata.ingest.service import IngestService
from aggregata.model.mapping import FieldType, Mapping
from aggregata.storage.duckdb import DuckDBEngine
from aggregata.storage.engine import Collection, Engine, Transaction


def test_create_write_count_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    engine = DuckDBEngine(path)
    ingest = IngestService(engine)
    result = ingest.ingest("docs", [{"_id": "a", "n": 1}, {"_id": "b", "n": 2, "tags": ["x"]}])
    assert result.stored == 2
    engine.close()
    reopened = DuckDBEngine(path)
    assert reopened.count("docs") == 2
    assert reopened.get_collection("docs").mapping.resolve("tags").array
    reopened.close()


def test_retried_batch_is_stored_once(engine: DuckDBEngine) -> None:
    ingest = IngestService(engine)
    docs = [{"_id": str(i), "v": i} for i in range(100)]
    first = ingest.ingest("c", docs)
    second = ingest.ingest("c", [*docs, {"_id": "100", "v": 100}])
    assert (first.stored, first.duplicates) == (100, 0)
    assert (second.stored, second.duplicates) == (1, 100)
    assert engine.count("c") == 101


def test_schema_evolves_add_column_and_widen_to_array(engine: DuckDBEngine) -> None:
    ingest = IngestService(engine)
    ingest.ingest("c", [{"_id": "1", "t": "a"}])
    ingest.ingest("c", [{"_id": "2", "t": ["b", "c"], "new": 1.5}])
    ingest.ingest("c", [{"_id": "3", "items": [{"k": "x"}]}, {"_id": "4", "items": [{"k": "y", "q": 2}]}])
    mapping = engine.get_collection("c").mapping
    assert mapping.resolve("t").array and mapping.resolve("new").type is FieldType.DOUBLE
    nested = mapping.resolve("items").properties
    assert nested is not None and set(nested.fields) == {"k", "q"}
    rows = {r["_id"]: r for r in engine.query_sql('SELECT * FROM "c"').to_pylist()}
    assert rows["1"]["t"] == ["a"] and rows["2"]["t"] == ["b", "c"]
    assert rows["4"]["items"] == [{"k": "y", "q": 2}]


def test_concurrent_writers_conflicting_types_are_revalidated(engine: DuckDBEngine) -> None:
    """Two writers race to create field ``x`` with different types: one wins, the other's
    documents are re-validated and rejected with a reason, nothing is silently coerced."""
    ingest = IngestService(engine)
    engine.create_collection("c", Mapping())
    results = {}

    def run(name: str, value: object) -> None:
        results[name] = ingest.ingest("c", [{"_id": f"{name}-{i}", "x": value} for i in range(50)])

    threads = [threading.Thread(target=run, args=(n, v)) for n, v in (("num", 1), ("str", "s"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = results["num"].stored + results["str"].stored
    failed = len(results["num"].errors) + len(results["str"].errors)
    assert (stored, failed) == (50, 50)
    assert engine.count("c") == 50


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


def test_collection_lifecycle_errors(engine: DuckDBEngine) -> None:
    engine.create_collection("c", Mapping())
    with pytest.raises(Conflict):
        engine.create_collection("c", Mapping())
    engine.drop_collection("c")
    with pytest.raises(CollectionNotFound):
        engine.get_collection("c")


def test_same_id_in_two_concurrent_requests_is_stored_and_counted_once(engine: DuckDBEngine) -> None:
    ingest = IngestService(engine)
    ingest.ensure_collection("c")
    results = []
    barrier = threading.Barrier(6)

    def run() -> None:
        barrier.wait()
        results.append(ingest.ingest("c", [{"_id": "same", "v": 1}, {"_id": f"own-{threading.get_ident()}"}]))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.stored for r in results) == 7
    assert sum(r.duplicates for r in results) == 5
    assert engine.count("c") == 7


def test_long_column_widens_to_double_across_batches(backend: Engine) -> None:
    """Runs on both engines: ``ALTER`` to ``DOUBLE`` keeps every stored value."""
    engine = backend
    ingest = IngestService(engine)
    ingest.ingest("c", [{"_id": "1", "amount": 30}])
    result = ingest.ingest("c", [{"_id": "2", "amount": 29.9}])
    assert (result.stored, result.errors) == (1, [])
    assert engine.get_collection("c").mapping.resolve("amount").type is FieldType.DOUBLE
    rows = engine.query_sql('SELECT "_id", amount FROM "c" ORDER BY 1').to_pylist()
    assert rows == [{"_id": "1", "amount": 30.0}, {"_id": "2", "amount": 29.9}]


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

"""The ClickHouse engine (chDB): lifecycle, idempotent writes, schema evolution, reopen,
and results shaped like DuckDB's, checked against the DuckDB engine on the same documents."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from aggregata.errors import BadRequest, CollectionNotFound, Conflict, QueryTimeout
from aggregata.ingest.service import IngestService
from aggregata.model.mapping import FieldType, Mapping
from aggregata.search.service import SearchService
from aggregata.storage.duckdb import DuckDBEngine
from aggregata.storage.engine import Engine
from tests.backends import chdb_available, new_database
from tests.conftest import NOW, require_services

if not chdb_available() and not require_services():
    pytest.skip("chdb is not installed", allow_module_level=True)

from aggregata.storage.clickhouse import ClickHouseEngine

Opener = Callable[[], ClickHouseEngine]


@pytest.fixture
def open_ch(chdb_dir: Path) -> Iterator[Opener]:
    """Opens (and reopens) one fresh ClickHouse database; closes whatever was opened."""
    database = new_database()
    opened: list[ClickHouseEngine] = []

    def make() -> ClickHouseEngine:
        eng = ClickHouseEngine(chdb_dir, database=database)
        opened.append(eng)
        return eng

    yield make
    for eng in opened:
        eng.close()


@pytest.fixture
def ch(open_ch: Opener) -> ClickHouseEngine:
    return open_ch()


def _rows(engine: ClickHouseEngine | DuckDBEngine, name: str) -> list[dict[str, Any]]:
    return engine.query_sql(f'SELECT * FROM "{name}" ORDER BY "_id"').to_pylist()


def test_create_write_count_and_reopen(open_ch: Opener) -> None:
    engine = open_ch()
    ingest = IngestService(engine)
    result = ingest.ingest("docs", [{"_id": "a", "n": 1}, {"_id": "b", "n": 2, "tags": ["x"]}])
    assert result.stored == 2
    engine.update_settings("docs", {"retention_days": 7})
    engine.close()
    reopened = open_ch()
    assert reopened.count("docs") == 2
    coll = reopened.get_collection("docs")
    assert coll.mapping.resolve("tags").array
    assert coll.settings == {"retention_days": 7}


def test_retried_batch_is_stored_once(ch: ClickHouseEngine) -> None:
    ingest = IngestService(ch)
    docs = [{"_id": str(i), "v": i} for i in range(100)]
    first = ingest.ingest("c", docs)
    second = ingest.ingest("c", [*docs, {"_id": "100", "v": 100}])
    assert (first.stored, first.duplicates) == (100, 0)
    assert (second.stored, second.duplicates) == (1, 100)
    assert ch.count("c") == 101


def test_concurrent_retries_store_each_id_once(ch: ClickHouseEngine) -> None:
    ingest = IngestService(ch)
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
    assert ch.count("c") == 7


def test_schema_evolves_add_column_and_widen_to_array(ch: ClickHouseEngine) -> None:
    ingest = IngestService(ch)
    ingest.ingest("c", [{"_id": "1", "t": "a"}, {"_id": "0"}])
    ingest.ingest("c", [{"_id": "2", "t": ["b", "c"], "new": 1.5}])
    ingest.ingest("c", [{"_id": "3", "items": [{"k": "x"}]}, {"_id": "4", "items": [{"k": "y", "q": 2}]}])
    mapping = ch.get_collection("c").mapping
    assert mapping.resolve("t").array and mapping.resolve("new").type is FieldType.DOUBLE
    nested = mapping.resolve("items").properties
    assert nested is not None and set(nested.fields) == {"k", "q"}
    rows = {r["_id"]: r for r in _rows(ch, "c")}
    assert rows["1"]["t"] == ["a"] and rows["2"]["t"] == ["b", "c"] and rows["0"]["t"] is None
    assert rows["3"]["items"] == [{"k": "x", "q": None}]
    assert rows["4"]["items"] == [{"k": "y", "q": 2}]


def test_dotted_array_fields_are_independent(ch: ClickHouseEngine) -> None:
    """ClickHouse would treat ``user.tags`` and ``user.roles`` as one Nested structure
    (equal sizes enforced, new columns back-filled); stored names avoid the dot."""
    ingest = IngestService(ch)
    ingest.ingest("c", [{"_id": "1", "user": {"tags": ["a", "b", "c"], "roles": ["x"]}}])
    ingest.ingest("c", [{"_id": "2", "user": {"ids": [1, 2]}}])
    rows = {r["_id"]: r for r in _rows(ch, "c")}
    assert rows["1"] == {"_id": "1", "user.tags": ["a", "b", "c"], "user.roles": ["x"], "user.ids": None}
    assert rows["2"]["user.ids"] == [1, 2] and rows["2"]["user.tags"] is None


def test_values_read_back_as_duckdb_reads_them(ch: ClickHouseEngine, engine: DuckDBEngine) -> None:
    """Every field type round-trips to the same Python values on both engines."""
    mapping = Mapping.from_es(
        {"properties": {"loc": {"type": "geo_point"}, "vec": {"type": "dense_vector", "dims": 3}}}
    )
    docs = [
        {
            "_id": "full",
            "k": "Ünïcode 'quoted' \\ back",
            "n": -(2**63),
            "x": 0.1,
            "flag": False,
            "when": "2026-10-01T12:30:00.123456Z",
            "tags": ["red", "blue"],
            "user": {"country": "DE", "age": 33},
            "loc": {"lat": 52.5, "lon": 13.4},
            "vec": [0.5, -1.0, 2.0],
            "items": [{"sku": "a", "qty": 2, "at": "2026-01-01T00:00:00Z"}, {"sku": "b"}],
        },
        {"_id": "sparse", "k": "only"},
    ]
    for eng in (ch, engine):
        eng.create_collection("c", mapping)
        assert IngestService(eng).ingest("c", docs).stored == 2
    assert _rows(ch, "c") == _rows(engine, "c")
    search = {"query": {"match_all": {}}, "sort": ["_id"]}
    ch_hits = SearchService(ch, clock=lambda: NOW).search("c", search)["hits"]
    duck_hits = SearchService(engine, clock=lambda: NOW).search("c", search)["hits"]
    assert ch_hits == duck_hits


def test_case_insensitive_term_folds_unicode(ch: ClickHouseEngine) -> None:
    IngestService(ch).ingest("c", [{"_id": "1", "k": "ÄPFEL"}, {"_id": "2", "k": "apfel"}])
    query = {"query": {"term": {"k": {"value": "äpfel", "case_insensitive": True}}}}
    hits = SearchService(ch, clock=lambda: NOW).search("c", query)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]


def test_concurrent_writers_conflicting_types_are_revalidated(ch: ClickHouseEngine) -> None:
    ingest = IngestService(ch)
    ch.create_collection("c", Mapping())
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
    assert ch.count("c") == 50


def test_collection_lifecycle_errors(ch: ClickHouseEngine) -> None:
    ch.create_collection("c-1", Mapping())
    assert ch.create_collection("c-1", Mapping(), exist_ok=True).name == "c-1"
    with pytest.raises(Conflict):
        ch.create_collection("c-1", Mapping())
    ch.drop_collection("c-1")
    with pytest.raises(CollectionNotFound):
        ch.get_collection("c-1")
    with pytest.raises(CollectionNotFound):
        ch.count("c-1")
    ch.create_collection("c-1", Mapping())  # the name is free again at once
    assert ch.count("c-1") == 0


def test_query_timeout_is_cancelled(ch: ClickHouseEngine) -> None:
    slow = exp.select(exp.Count(this=exp.Star())).from_(
        exp.Table(this=exp.Anonymous(this="numbers", expressions=[exp.Literal.number(10**12)]))
    )
    with pytest.raises(QueryTimeout):
        ch.query(slow, timeout=0.2)
    assert ch.query_sql("SELECT 1 AS one", timeout=5).to_pylist() == [{"one": 1}]


def test_second_data_directory_is_refused(ch: ClickHouseEngine, tmp_path: Path) -> None:
    with pytest.raises(BadRequest) as info:
        ClickHouseEngine(tmp_path / "other")
    assert info.value.type == "store_locked_exception"


def test_database_name_is_validated(chdb_dir: Path) -> None:
    with pytest.raises(BadRequest):
        ClickHouseEngine(chdb_dir, database="x`; DROP")


def test_overwrite_and_delete_by_id_on_both_backends(backend: Engine) -> None:
    """The same write semantics on each backend: replaced, deleted, duplicate, new."""
    ingest = IngestService(backend)
    ingest.ingest("c", [{"_id": "a", "v": 1}, {"_id": "b", "v": 2}, {"_id": "c", "v": 3}])
    docs = [{"_id": "a", "v": 10}, {"_id": "b", "v": 20}, {"_id": "d", "v": 4}]
    result = ingest.ingest("c", docs, overwrite=["a", "x"], delete=["c", "zzz"])
    assert (result.stored, result.duplicate_ids) == (2, ["b"])
    assert (result.overwritten_ids, result.deleted_ids) == (["a"], ["c"])
    search = SearchService(backend, clock=lambda: NOW).search("c", {"sort": ["_id"]})
    assert [(h["_id"], h["_source"]["v"]) for h in search["hits"]["hits"]] == [("a", 10), ("b", 2), ("d", 4)]
    assert backend.count("c") == 3


def test_exists_on_list_valued_fields_on_both_backends(backend: Engine) -> None:
    """ClickHouse stores a missing vector or nested list as ``[]`` (arrays are never NULL)."""
    mapping = Mapping.from_es({"properties": {"vec": {"type": "dense_vector", "dims": 2}}})
    backend.create_collection("c", mapping)
    docs = [{"_id": "1", "vec": [1.0, 2.0], "items": [{"k": "a"}]}, {"_id": "2", "k": "x"}]
    IngestService(backend).ingest("c", docs)
    search = SearchService(backend, clock=lambda: NOW)
    for field in ("vec", "items"):
        hits = search.search("c", {"query": {"exists": {"field": field}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"], field

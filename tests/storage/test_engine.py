"""The ``Engine`` contract, run on every backend (the ``backend`` and ``make_engine`` fixtures):
lifecycle, idempotent writes, overwrite and delete, schema evolution, reopen."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from aggregata.errors import CollectionNotFound, Conflict
from aggregata.ingest.service import IngestService
from aggregata.model.mapping import FieldType, Mapping
from aggregata.search.service import SearchService
from aggregata.storage.engine import Engine
from tests.conftest import NOW


def test_create_write_count_and_reopen(make_engine: Callable[[], Engine]) -> None:
    engine = make_engine()
    ingest = IngestService(engine)
    result = ingest.ingest("docs", [{"_id": "a", "n": 1}, {"_id": "b", "n": 2, "tags": ["x"]}])
    assert result.stored == 2
    engine.update_settings("docs", {"retention_days": 7})
    engine.close()
    reopened = make_engine()
    assert reopened.count("docs") == 2
    coll = reopened.get_collection("docs")
    assert coll.mapping.resolve("tags").array
    assert coll.settings == {"retention_days": 7}


def test_retried_batch_is_stored_once(backend: Engine) -> None:
    ingest = IngestService(backend)
    docs = [{"_id": str(i), "v": i} for i in range(100)]
    first = ingest.ingest("c", docs)
    second = ingest.ingest("c", [*docs, {"_id": "100", "v": 100}])
    assert (first.stored, first.duplicates) == (100, 0)
    assert (second.stored, second.duplicates) == (1, 100)
    assert backend.count("c") == 101


def test_same_id_in_concurrent_requests_is_stored_and_counted_once(backend: Engine) -> None:
    ingest = IngestService(backend)
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
    assert backend.count("c") == 7


def test_concurrent_writers_conflicting_types_are_revalidated(backend: Engine) -> None:
    """Two writers race to create field ``x`` with different types: one wins, the other's
    documents are re-validated and rejected with a reason, nothing is silently coerced."""
    ingest = IngestService(backend)
    backend.create_collection("c", Mapping())
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
    assert backend.count("c") == 50


def test_collection_lifecycle_errors(backend: Engine) -> None:
    backend.create_collection("c-1", Mapping())
    assert backend.create_collection("c-1", Mapping(), exist_ok=True).name == "c-1"
    with pytest.raises(Conflict):
        backend.create_collection("c-1", Mapping())
    backend.drop_collection("c-1")
    with pytest.raises(CollectionNotFound):
        backend.get_collection("c-1")
    with pytest.raises(CollectionNotFound):
        backend.count("c-1")
    backend.create_collection("c-1", Mapping())  # the name is free again at once
    assert backend.count("c-1") == 0


def test_schema_evolves_add_column_and_widen_to_array(backend: Engine) -> None:
    ingest = IngestService(backend)
    ingest.ingest("c", [{"_id": "1", "t": "a"}, {"_id": "0"}])
    ingest.ingest("c", [{"_id": "2", "t": ["b", "c"], "new": 1.5}])
    ingest.ingest("c", [{"_id": "3", "items": [{"k": "x"}]}, {"_id": "4", "items": [{"k": "y", "q": 2}]}])
    mapping = backend.get_collection("c").mapping
    assert mapping.resolve("t").array and mapping.resolve("new").type is FieldType.DOUBLE
    nested = mapping.resolve("items").properties
    assert nested is not None and set(nested.fields) == {"k", "q"}
    rows = {r["_id"]: r for r in backend.query_sql('SELECT * FROM "c"').to_pylist()}
    assert rows["1"]["t"] == ["a"] and rows["2"]["t"] == ["b", "c"] and rows["0"]["t"] is None
    assert rows["3"]["items"] == [{"k": "x", "q": None}]
    assert rows["4"]["items"] == [{"k": "y", "q": 2}]


def test_long_column_widens_to_double_across_batches(backend: Engine) -> None:
    """``ALTER`` to ``DOUBLE`` keeps every stored value."""
    ingest = IngestService(backend)
    ingest.ingest("c", [{"_id": "1", "amount": 30}])
    result = ingest.ingest("c", [{"_id": "2", "amount": 29.9}])
    assert (result.stored, result.errors) == (1, [])
    assert backend.get_collection("c").mapping.resolve("amount").type is FieldType.DOUBLE
    rows = backend.query_sql('SELECT "_id", amount FROM "c" ORDER BY 1').to_pylist()
    assert rows == [{"_id": "1", "amount": 30.0}, {"_id": "2", "amount": 29.9}]


def test_overwrite_and_delete_by_id(backend: Engine) -> None:
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


def test_exists_on_list_valued_fields(backend: Engine) -> None:
    """ClickHouse stores a missing vector or nested list as ``[]`` (arrays are never NULL)."""
    mapping = Mapping.from_es({"properties": {"vec": {"type": "dense_vector", "dims": 2}}})
    backend.create_collection("c", mapping)
    docs = [{"_id": "1", "vec": [1.0, 2.0], "items": [{"k": "a"}]}, {"_id": "2", "k": "x"}]
    IngestService(backend).ingest("c", docs)
    search = SearchService(backend, clock=lambda: NOW)
    for field in ("vec", "items"):
        hits = search.search("c", {"query": {"exists": {"field": field}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"], field

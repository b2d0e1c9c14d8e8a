"""The ClickHouse engine (chDB): results shaped like DuckDB's, checked against the DuckDB
engine on the same documents, timeouts, and one data directory per process (the ``Engine``
contract itself is tested on both backends in ``test_engine.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from aggregata.errors import BadRequest, QueryTimeout
from aggregata.ingest.service import IngestService
from aggregata.model.mapping import Mapping
from aggregata.search.service import SearchService
from aggregata.storage.duckdb import DuckDBEngine
from tests.backends import chdb_available, new_database
from tests.conftest import NOW, require_services

if not chdb_available() and not require_services():
    pytest.skip("chdb is not installed", allow_module_level=True)

from aggregata.storage.clickhouse import ClickHouseEngine


@pytest.fixture
def ch(chdb_dir: Path) -> Iterator[ClickHouseEngine]:
    """A fresh ClickHouse database in the session's chDB directory."""
    eng = ClickHouseEngine(chdb_dir, database=new_database())
    yield eng
    eng.close()


def _rows(engine: ClickHouseEngine | DuckDBEngine, name: str) -> list[dict[str, Any]]:
    return engine.query_sql(f'SELECT * FROM "{name}" ORDER BY "_id"').to_pylist()


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

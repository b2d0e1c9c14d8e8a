"""The columnar fast path stores exactly what the per-document path stores, or declines."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from aggregata.ingest.service import IngestService
from aggregata.model.columnar import Decline, columnar_batch, flatten, read_ndjson
from aggregata.model.mapping import Mapping
from aggregata.storage.duckdb import DuckDBEngine

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def counter(prefix: str) -> Any:
    it = itertools.count()
    return lambda: f"{prefix}{next(it)}"


@pytest.fixture(autouse=True)
def _close_engines() -> Any:
    opened.clear()
    yield
    for engine in opened:
        engine.close()


opened: list[DuckDBEngine] = []


def service(path: Path) -> IngestService:
    engine = DuckDBEngine(path)
    opened.append(engine)
    return IngestService(
        engine,
        id_factory=counter("id-"),
        event_id_factory=counter("00000000-0000-4000-8000-0000000"),
        clock=lambda: NOW,
    )


def snapshot(svc: IngestService, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    engine = svc.engine
    assert isinstance(engine, DuckDBEngine)
    rows = engine.query_sql(f'SELECT * FROM "{name}" ORDER BY "_id"').to_pylist()
    return engine.get_collection(name).mapping.to_json(), rows


def random_doc(rng: random.Random, i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if rng.random() < 0.7:
        doc["_id"] = f"d{i}" if rng.random() < 0.95 else f"d{i - 1}"
    choices: dict[str, Any] = {
        "k": lambda: rng.choice(["a", "b", "2024-01-01T00:00:00Z"]),
        "n": lambda: rng.choice([1, 2, -3, 2.5, "x"]),
        "f": lambda: rng.uniform(-1, 1),
        "b": lambda: rng.random() < 0.5,
        "when": lambda: rng.choice(["2026-10-01T10:00:00Z", "2026-10-01T10:00:00.123+02:00", "2026-10-01"]),
        "tags": lambda: rng.sample(["x", "y", "z"], rng.randint(0, 3)),
        "user": lambda: {"country": rng.choice(["DE", "US"]), "age": rng.randint(1, 90)},
        "nothing": lambda: None,
    }
    for key, make in choices.items():
        if rng.random() < 0.6:
            doc[key] = make()
    return doc


@pytest.mark.parametrize("seed", range(40))
def test_documents_fast_and_slow_paths_agree(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    batches = [[random_doc(rng, i + 100 * b) for i in range(rng.randint(1, 30))] for b in range(3)]
    fast, slow = service(tmp_path / "fast.duckdb"), service(tmp_path / "slow.duckdb")
    for docs in batches:
        body = b"\n".join(orjson.dumps(d) for d in docs)
        a = fast.ingest_body("c", body, "application/x-ndjson")
        b = slow.ingest("c", docs)
        assert (a.stored, a.duplicates, [e.position for e in a.errors]) == (
            b.stored,
            b.duplicates,
            [e.position for e in b.errors],
        )
    assert snapshot(fast, "c") == snapshot(slow, "c")


def random_event(rng: random.Random, i: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": rng.choice(["pageview", "signup"]),
        "distinct_id": f"u{rng.randint(1, 9)}",
    }
    if rng.random() < 0.9:
        event["timestamp"] = rng.choice(["2026-10-01T10:00:00.000Z", "2026-10-02T23:59:59.999+05:30"])
    if rng.random() < 0.8:
        event["uuid"] = f"00000000-0000-4000-8000-{i:012d}"
    if rng.random() < 0.8:
        event["properties"] = {"country": rng.choice(["DE", "US"]), "price": rng.choice([1.5, 2.25])}
    if rng.random() < 0.03:
        event["distinct_id"] = rng.choice([7, "", None])
    return event


@pytest.mark.parametrize("seed", range(20))
def test_events_fast_and_slow_paths_agree(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    fast, slow = service(tmp_path / "fast.duckdb"), service(tmp_path / "slow.duckdb")
    for b in range(3):
        events = [random_event(rng, i + 100 * b) for i in range(rng.randint(1, 40))]
        body = b"\n".join(orjson.dumps(e) for e in events)
        a = fast.ingest_body("events", body, "application/x-ndjson", events=True)
        r = slow.ingest_events(events)
        assert (a.stored, a.duplicates, len(a.errors)) == (r.stored, r.duplicates, len(r.errors))
    assert snapshot(fast, "events") == snapshot(slow, "events")


def test_fast_path_takes_clean_batches_and_declines_ambiguous_ones() -> None:
    clean = b'{"_id": "1", "a": "x", "n": 1, "d": "2026-01-01T00:00:00Z"}\n{"_id": "2", "a": "y", "n": 2}\n'
    batch = columnar_batch(flatten(read_ndjson(clean, Mapping())), Mapping(), new_id=counter("g"))
    assert batch.size == 2 and {f.name for f in batch.changed} == {"a", "n", "d"}
    for body in (
        b'{"n": 1}\n{"n": 1.5}\n',  # integer first, then a fraction: the first document decides
        b'{"a": "2026-01-01T00:00:00Z"}\n{"a": "x"}\n',  # date-looking and plain strings
        b'{"a": 1}\n{"a": "x"}\n',  # type conflict
        b'{"_id": "1"}\n{"_id": "1"}\n',  # duplicate ids within the batch
        b"{not json}\n",
    ):
        with pytest.raises(Decline):
            columnar_batch(flatten(read_ndjson(body, Mapping())), Mapping(), new_id=counter("g"))

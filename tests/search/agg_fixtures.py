"""Documents, collections and comparisons shared by the aggregation oracle tests.

The documents are generated with a seeded ``random.Random``: missing fields, arrays,
negative numbers, nested objects, booleans and dates spread over both daylight-saving
changes of 2026 in Europe and North America (so calendar buckets in Europe/Berlin and
America/New_York cross them). Special collections cover one document, no documents, and a
mapped field that no document has.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregata.ingest.service import IngestService
from aggregata.model.mapping import Mapping
from aggregata.search.service import SearchService
from aggregata.storage.engine import Engine
from tests.backends import open_engine
from tests.conftest import NOW
from tests.search.agg_oracle import Oracle

MAPPING = {
    "properties": {
        "k": {"type": "keyword"},
        "n": {"type": "long"},
        "x": {"type": "double"},
        "tags": {"type": "keyword", "array": True},
        "nums": {"type": "long", "array": True},
        "flag": {"type": "boolean"},
        "when": {"type": "date"},
        "none": {"type": "keyword"},
        "user": {"properties": {"country": {"type": "keyword"}, "age": {"type": "long"}}},
        "comments": {
            "type": "nested",
            "properties": {"author": {"type": "keyword"}, "stars": {"type": "long"}},
        },
    }
}
TYPES = {
    "k": "keyword",
    "n": "long",
    "x": "double",
    "tags": "keyword",
    "nums": "long",
    "flag": "boolean",
    "when": "date",
    "none": "keyword",
    "user.country": "keyword",
    "user.age": "long",
    "comments.author": "keyword",
    "comments.stars": "long",
}

# Windows around the 2026 DST changes: US 03-08 and 11-01, EU 03-29 and 10-25.
_WINDOWS = [
    (datetime(2026, 3, 1, tzinfo=UTC), 40),
    (datetime(2026, 10, 18, tzinfo=UTC), 20),
]


def generate(n: int = 500, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        doc: dict[str, Any] = {"_id": f"d{i:04d}"}
        if rng.random() < 0.85:
            doc["k"] = rng.choice(["a", "b", "c", "A", "d e", "é", "b2", "zz"])
        if rng.random() < 0.8:
            doc["n"] = rng.randint(-60, 60)
        if rng.random() < 0.75:
            doc["x"] = round(rng.uniform(-100, 100), 3)
        if rng.random() < 0.6:
            doc["tags"] = rng.sample(["red", "green", "blue", "x", "y"], rng.randint(1, 3))
            if rng.random() < 0.2:
                doc["tags"].append(doc["tags"][0])  # a repeated value counts once per document
        if rng.random() < 0.5:
            doc["nums"] = [rng.randint(-20, 20) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.6:
            doc["flag"] = rng.random() < 0.4
        if rng.random() < 0.9:
            start, days = rng.choice(_WINDOWS)
            moment = start + timedelta(minutes=rng.randint(0, days * 24 * 60))
            doc["when"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if rng.random() < 0.6:
            doc["user"] = {"country": rng.choice(["DE", "US", "FR", "JP"])}
            if rng.random() < 0.7:
                doc["user"]["age"] = rng.randint(10, 90)
        if rng.random() < 0.5:
            doc["comments"] = [
                {
                    "author": rng.choice(["ann", "bob", "cid"]),
                    **({"stars": rng.randint(1, 5)} if rng.random() < 0.8 else {}),
                }
                for _ in range(rng.randint(1, 3))
            ]
        docs.append(doc)
    return docs


COLLECTIONS = {
    "docs": generate(),
    "single": [
        {
            "_id": "only",
            "k": "a",
            "n": 5,
            "x": 2.5,
            "tags": ["red"],
            "nums": [3],
            "flag": True,
            "when": "2026-03-29T00:30:00Z",
            "user": {"country": "DE", "age": 30},
            "comments": [{"author": "ann", "stars": 4}],
        }
    ],
    "empty": [],
    # A bucket without values beside negative sums (a sum of nothing is 0, not last).
    "sums": [
        {"_id": "s1", "k": "pos", "n": 5},
        {"_id": "s2", "k": "neg", "n": -3},
        {"_id": "s3", "k": "neg", "n": -1},
        {"_id": "s4", "k": "none"},
        {"_id": "s5", "k": "none", "x": 1.5},
    ],
    # Berlin's autumn change: 02:00-03:00 local happens twice (00:00-01:00Z CEST, 01:00-02:00Z CET);
    # New York's: 01:00-02:00 local twice (05:00-06:00Z EDT, 06:00-07:00Z EST).
    "dst": [
        {"_id": f"t{i}", "when": w}
        for i, w in enumerate(
            [
                "2026-10-24T23:59:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T01:45:00Z",
                "2026-10-25T02:00:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-01T06:30:00Z",
                "2026-11-01T07:00:00Z",
            ]
        )
    ],
}


class Loaded:
    """A backend with every test collection loaded, and the oracle's view of the same data."""

    def __init__(self, engine: Engine, backend: str) -> None:
        self.engine = engine
        self.backend = backend
        self.service = SearchService(engine, clock=lambda: NOW)

    def search(
        self, collection: str, aggs: dict[str, Any], query: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"size": 0, "aggs": aggs}
        if query is not None:
            body["query"] = query
        result: dict[str, Any] = self.service.search(collection, body)["aggregations"]
        return result

    def oracle(
        self, collection: str, aggs: dict[str, Any], query: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        from tests.search.oracle import matches

        docs = COLLECTIONS[collection]
        chosen = [d for d in docs if matches(query, d)]
        return Oracle(docs, TYPES, NOW).run(aggs, chosen)


def load(backend: str, directory: Path, chdb_dir: Path | None) -> Iterator[Loaded]:
    engine = open_engine(backend, directory, chdb_dir=chdb_dir)
    ingest = IngestService(engine)
    for name, docs in COLLECTIONS.items():
        engine.create_collection(name, Mapping.from_es(MAPPING))
        if docs:
            result = ingest.ingest(name, docs)
            assert result.stored == len(docs), result.errors[:3]
    yield Loaded(engine, backend)
    engine.close()


def loaded_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    chdb_dir = request.getfixturevalue("chdb_dir") if request.param == "clickhouse" else None
    yield from load(request.param, tmp_path_factory.mktemp("aggs"), chdb_dir)


def assert_close(actual: Any, expected: Any, path: str = "$", rel: float = 1e-9) -> None:
    """Structural equality; floats within ``rel`` (exact-valued math in another order)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}", rel)
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{path}: {len(actual)} items != {len(expected)}: {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{path}[{i}]", rel)
        return
    if isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, (int, float)), f"{path}: {actual!r} is not a number"
        assert math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-9), (
            f"{path}: {actual!r} != {expected!r}"
        )
        return
    assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r} != {expected!r}"

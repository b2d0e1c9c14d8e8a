"""Every query clause of the search skeleton against the plain-Python oracle, on each backend."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aggregata.demo.generate import generate_products
from aggregata.ingest.service import IngestService
from aggregata.search.service import SearchService
from tests.backends import BACKENDS, open_engine
from tests.conftest import NOW
from tests.search.oracle import matches


def handmade(n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    """Documents with missing fields, arrays, negatives, objects and boundary values."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        doc: dict[str, Any] = {"_id": f"d{i}"}
        if rng.random() < 0.8:
            doc["n"] = rng.randint(-50, 50)
        if rng.random() < 0.7:
            doc["x"] = round(rng.uniform(-10, 10), 2)
        if rng.random() < 0.6:
            doc["k"] = rng.choice(["a", "b", "c", "A", "d e"])
        if rng.random() < 0.5:
            doc["tags"] = rng.sample(["red", "green", "blue", "x"], rng.randint(1, 3))
        if rng.random() < 0.5:
            doc["flag"] = rng.random() < 0.5
        if rng.random() < 0.7:
            doc["when"] = f"2026-10-{rng.randint(1, 31):02d}T{rng.randint(0, 23):02d}:00:00Z"
        if rng.random() < 0.5:
            doc["user"] = {"country": rng.choice(["DE", "US", "FR"]), "age": rng.randint(10, 80)}
        docs.append(doc)
    return docs


QUERIES: list[dict[str, Any]] = [
    {"match_all": {}},
    {"match_none": {}},
    {"term": {"k": "a"}},
    {"term": {"k": {"value": "A"}}},
    {"term": {"n": 0}},
    {"term": {"n": "7"}},
    {"term": {"flag": True}},
    {"term": {"tags": "red"}},
    {"term": {"user.country": "DE"}},
    {"term": {"unmapped": "x"}},
    {"terms": {"k": ["a", "b", "zzz"]}},
    {"terms": {"tags": ["green", "x"]}},
    {"terms": {"n": [1, 2, 3, -4]}},
    {"range": {"n": {"gte": -5, "lt": 5}}},
    {"range": {"n": {"gt": -5, "lte": 5}}},
    {"range": {"x": {"gt": 0}}},
    {"range": {"x": {"lte": -9.5}}},
    {"range": {"k": {"gte": "b"}}},
    {"range": {"when": {"gte": "2026-10-10T00:00:00Z", "lt": "2026-10-20T00:00:00Z"}}},
    {"range": {"user.age": {"gte": 18, "lte": 30}}},
    {"exists": {"field": "n"}},
    {"exists": {"field": "tags"}},
    {"exists": {"field": "user"}},
    {"exists": {"field": "nope"}},
    {"ids": {"values": ["d1", "d2", "d399", "missing"]}},
    {"bool": {"must": [{"term": {"k": "a"}}], "filter": [{"range": {"n": {"gte": 0}}}]}},
    {"bool": {"must_not": [{"term": {"k": "a"}}]}},
    {"bool": {"must_not": [{"range": {"n": {"gte": 0}}}, {"exists": {"field": "x"}}]}},
    {"bool": {"should": [{"term": {"k": "a"}}, {"term": {"k": "b"}}]}},
    {
        "bool": {
            "should": [
                {"term": {"k": "a"}},
                {"term": {"tags": "red"}},
                {"range": {"n": {"gt": 10}}},
            ],
            "minimum_should_match": 2,
        }
    },
    {
        "bool": {
            "should": [
                {"term": {"k": "a"}},
                {"term": {"tags": "red"}},
                {"range": {"n": {"gt": 10}}},
            ],
            "minimum_should_match": "-1",
        }
    },
    {
        "bool": {
            "should": [
                {"term": {"k": "a"}},
                {"term": {"tags": "red"}},
                {"range": {"n": {"gt": 10}}},
            ],
            "minimum_should_match": "66%",
        }
    },
    {"bool": {"filter": {"exists": {"field": "x"}}, "should": [{"term": {"k": "zzz"}}]}},
    {
        "bool": {
            "filter": {"exists": {"field": "x"}},
            "should": [{"term": {"k": "zzz"}}],
            "minimum_should_match": 1,
        }
    },
    {
        "bool": {
            "must": [
                {
                    "bool": {
                        "should": [
                            {"term": {"flag": False}},
                            {"bool": {"must_not": {"exists": {"field": "flag"}}}},
                        ]
                    }
                }
            ],
            "must_not": [{"terms": {"tags": ["blue"]}}],
        }
    },
    {"bool": {}},
]


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    chdb_dir = request.getfixturevalue("chdb_dir") if request.param == "clickhouse" else None
    engine = open_engine(request.param, tmp_path_factory.mktemp("q"), chdb_dir=chdb_dir)
    ingest = IngestService(engine)
    docs = handmade()
    products = list(generate_products(600, seed=3))
    assert ingest.ingest("docs", docs).stored == len(docs)
    assert ingest.ingest("products", products).stored == len(products)
    yield SearchService(engine, clock=lambda: NOW), docs, products
    engine.close()


def _ids(service: SearchService, name: str, query: dict[str, Any]) -> set[str]:
    body = {"query": query, "size": 10_000, "_source": False, "track_total_hits": True}
    response = service.search(name, body)
    hits = {h["_id"] for h in response["hits"]["hits"]}
    assert response["hits"]["total"] == {"value": len(hits), "relation": "eq"}
    return hits


@pytest.mark.parametrize("query", QUERIES, ids=[str(q)[:60] for q in QUERIES])
def test_handmade_documents(loaded: Any, query: dict[str, Any]) -> None:
    service, docs, _ = loaded
    expected = {d["_id"] for d in docs if matches(query, d)}
    assert _ids(service, "docs", query) == expected


PRODUCT_QUERIES: list[dict[str, Any]] = [
    {"term": {"category": "Electronics"}},
    {"terms": {"brand": ["Acme", "Globex", "Initech"]}},
    {"range": {"price": {"gte": 20, "lt": 100}}},
    {"range": {"rating": {"gt": 4.0}}},
    {"range": {"created_date": {"gte": "2026-01-01", "lt": "2026-06-01T00:00:00Z"}}},
    {"term": {"in_stock": False}},
    {
        "bool": {
            "filter": [{"term": {"in_stock": True}}, {"range": {"stock_quantity": {"lte": 10}}}],
            "must_not": [{"term": {"category": "Books"}}],
        }
    },
    {"bool": {"should": [{"term": {"category": "Toys"}}, {"range": {"price": {"gt": 500}}}]}},
]


@pytest.mark.parametrize("query", PRODUCT_QUERIES, ids=[str(q)[:60] for q in PRODUCT_QUERIES])
def test_generated_products(loaded: Any, query: dict[str, Any]) -> None:
    service, _, products = loaded
    expected = {p["_id"] for p in products if matches(query, p)}
    assert _ids(service, "products", query) == expected


def test_date_math_range_uses_injected_now(loaded: Any) -> None:
    service, docs, _ = loaded
    # NOW is 2026-11-01T12:00Z; now-14d/d rounds down to 2026-10-18T00:00Z for gte,
    # and lt now-7d/d rounds down to 2026-10-25T00:00Z.
    query = {"range": {"when": {"gte": "now-14d/d", "lt": "now-7d/d"}}}
    oracle = {"range": {"when": {"gte": "2026-10-18T00:00:00Z", "lt": "2026-10-25T00:00:00Z"}}}
    expected = {d["_id"] for d in docs if matches(oracle, d)}
    assert expected and _ids(service, "docs", query) == expected
    # lte rounds up to the end of the day: everything on 2026-10-25 is included.
    query = {"range": {"when": {"gt": "now-8d/d", "lte": "now-7d/d"}}}
    oracle = {"range": {"when": {"gte": "2026-10-25T00:00:00Z", "lt": "2026-10-26T00:00:00Z"}}}
    expected = {d["_id"] for d in docs if matches(oracle, d)}
    assert expected and _ids(service, "docs", query) == expected


def test_sort_from_size_and_source(loaded: Any) -> None:
    service, docs, _ = loaded
    body = {
        "query": {"exists": {"field": "n"}},
        "sort": [{"n": "desc"}, "_id"],
        "from": 5,
        "size": 7,
        "_source": ["n", "user.*"],
    }
    response = service.search("docs", body)
    expected = sorted((d for d in docs if "n" in d), key=lambda d: (-d["n"], d["_id"]))[5:12]
    hits = response["hits"]["hits"]
    assert [h["_id"] for h in hits] == [d["_id"] for d in expected]
    for hit, doc in zip(hits, expected, strict=True):
        want = {"n": doc["n"], **({"user": doc["user"]} if "user" in doc else {})}
        assert hit["_source"] == want
        assert hit["sort"][0] == doc["n"]


def test_missing_values_sort_last_both_directions(loaded: Any) -> None:
    service, _docs, _ = loaded
    for order in ("asc", "desc"):
        response = service.search("docs", {"sort": [{"x": order}], "size": 400, "_source": ["x"]})
        values = [h["_source"].get("x") for h in response["hits"]["hits"]]
        present = [v for v in values if v is not None]
        assert values[: len(present)] == sorted(present, reverse=order == "desc")
        assert all(v is None for v in values[len(present) :])


def test_track_total_hits_cap(loaded: Any) -> None:
    service, _, _ = loaded
    response = service.search("docs", {"size": 0, "track_total_hits": 100})
    assert response["hits"]["total"] == {"value": 100, "relation": "gte"}
    response = service.search("docs", {"size": 0, "track_total_hits": False})
    assert "total" not in response["hits"]

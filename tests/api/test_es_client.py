"""The Elasticsearch-compatible API as real clients use it: opensearch-py, sync and async.

One real server process per module (``aggregata serve`` on a free port, temporary data
directory), reached over HTTP by the unmodified client with ``/es`` as its URL prefix.
Every number is checked against plain Python over the same generated documents.

Aggregations are being built in the search service; their tests skip only while the
service answers exactly "aggregations are not supported yet", and must pass after that.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from opensearchpy import (
    AIOHttpConnection,
    AsyncOpenSearch,
    ConflictError,
    NotFoundError,
    OpenSearch,
    RequestError,
    Search,
    helpers,
)
from opensearchpy._async.helpers.search import AsyncSearch

from tests.test_server_process import Server

pytestmark = pytest.mark.slow

CATEGORIES = ("Books", "Garden", "Sports", "Toys")
MAPPINGS = {
    "properties": {
        "name": {"type": "keyword"},
        "category": {"type": "keyword"},
        "price": {"type": "double"},
        "stock": {"type": "integer"},
        "in_stock": {"type": "boolean"},
        "created": {"type": "date"},
    }
}
AGGS_PENDING = "aggregations are not supported yet"
T = TypeVar("T")


def products(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stock = rng.randint(0, 40)
        out.append(
            {
                "_id": f"p-{i:04d}",
                "name": f"product {i}",
                "category": rng.choice(CATEGORIES),
                "price": round(rng.uniform(1, 200), 2),
                "stock": stock,
                "in_stock": stock > 0,
                "created": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z",
            }
        )
    return out


DOCS = products(300)


def source(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


def agg_oracle(docs: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Terms on category with the average price per bucket, in plain Python."""
    prices: dict[str, list[float]] = defaultdict(list)
    for d in docs:
        prices[d["category"]].append(d["price"])
    return {k: (len(v), sum(v) / len(v)) for k, v in prices.items()}


def unless_aggs_pending(run: Callable[[], T]) -> T:
    """Run an aggregation request; skip only on the service's "not supported yet" answer."""
    try:
        return run()
    except RequestError as exc:
        if exc.status_code == 400 and exc.info["error"]["reason"] == AGGS_PENDING:
            pytest.skip("aggregations are not implemented in the search service yet")
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("es") / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def es(server: Server) -> Iterator[OpenSearch]:
    client = OpenSearch(hosts=[server.url + "/es"], timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="module")
def shop(es: OpenSearch) -> str:
    """A ``shop`` index created with explicit mappings and filled with ``helpers.bulk``."""
    es.indices.create(index="shop", body={"mappings": MAPPINGS, "settings": {"number_of_shards": 1}})
    actions = [{"_index": "shop", "_id": d["_id"], "_source": source(d)} for d in DOCS]
    ok, errors = helpers.bulk(es, actions, chunk_size=1000)
    assert (ok, errors) == (len(DOCS), [])
    return "shop"


def test_info_and_ping(es: OpenSearch) -> None:
    info = es.info()
    assert info["version"]["number"].startswith("8.")
    assert info["tagline"] == "You Know, for Search" and info["cluster_name"]
    assert es.ping() is True


def test_index_lifecycle(es: OpenSearch) -> None:
    assert es.indices.exists(index="life") is False
    created = es.indices.create(index="life", body={"mappings": MAPPINGS})
    assert created == {"acknowledged": True, "shards_acknowledged": True, "index": "life"}
    assert es.indices.exists(index="life") is True
    mapping = es.indices.get_mapping(index="life")
    assert mapping["life"]["mappings"]["properties"]["price"] == {"type": "double"}
    assert mapping["life"]["mappings"]["properties"]["stock"] == {"type": "long"}
    assert es.indices.get(index="life")["life"]["settings"]["index"]["number_of_shards"] == "1"
    with pytest.raises(RequestError) as exists:
        es.indices.create(index="life")
    assert exists.value.error == "resource_already_exists_exception"
    assert es.indices.delete(index="life") == {"acknowledged": True}
    with pytest.raises(NotFoundError) as missing:
        es.indices.get(index="life")
    assert missing.value.error == "index_not_found_exception"
    assert missing.value.info["error"]["root_cause"][0]["resource.id"] == "life"


def test_document_crud(es: OpenSearch) -> None:
    first = es.index(index="crud", id="1", body={"title": "one", "n": 1}, refresh=True)
    assert (first["result"], first["_id"], first["_index"]) == ("created", "1", "crud")
    again = es.index(index="crud", id="1", body={"title": "uno"})
    assert again["result"] == "updated"
    got = es.get(index="crud", id="1")
    assert got["found"] is True and got["_source"] == {"title": "uno"}  # overwritten whole
    assert es.exists(index="crud", id="1") is True
    assert es.exists(index="crud", id="2") is False
    with pytest.raises(ConflictError) as conflict:
        es.create(index="crud", id="1", body={"title": "dup"})
    assert conflict.value.error == "version_conflict_engine_exception"
    auto = es.index(index="crud", body={"title": "auto"})
    assert auto["result"] == "created" and es.get(index="crud", id=auto["_id"])["_source"]["title"] == "auto"
    updated = es.update(index="crud", id="1", body={"doc": {"n": 5}})
    assert updated["result"] == "updated"
    assert es.get(index="crud", id="1")["_source"] == {"title": "uno", "n": 5}
    with pytest.raises(NotFoundError):
        es.get(index="crud", id="missing")
    assert es.delete(index="crud", id="1")["result"] == "deleted"
    with pytest.raises(NotFoundError):
        es.delete(index="crud", id="1")
    with pytest.raises(RequestError) as bad:
        es.index(index="crud", id="3", body={"n": "not a number"})
    assert bad.value.error == "mapper_parsing_exception"


def test_bulk_results_and_count(es: OpenSearch, shop: str) -> None:
    assert es.count(index=shop)["count"] == len(DOCS)
    expected = sum(1 for d in DOCS if d["category"] == "Toys")
    assert es.count(index=shop, body={"query": {"term": {"category": "Toys"}}})["count"] == expected
    assert es.indices.refresh(index=shop)["_shards"]["failed"] == 0
    ok, errors = helpers.bulk(
        es,
        [
            {"_index": "bulkerr", "_id": "a", "_source": {"n": 1}},
            {"_index": "bulkerr", "_id": "b", "_source": {"n": "x"}},
        ],
        raise_on_error=False,
    )
    assert ok == 1 and len(errors) == 1
    (item,) = errors
    assert item["index"]["status"] == 400 and item["index"]["error"]["type"] == "mapper_parsing_exception"


def test_search_with_the_dsl(es: OpenSearch, shop: str) -> None:
    s = (
        Search(using=es, index=shop)
        .filter("term", category="Sports")
        .query("range", price={"gte": 50})
        .sort("-price")
        .extra(track_total_hits=True)
    )
    response = s[0:5].execute()
    matching = sorted(
        (d for d in DOCS if d["category"] == "Sports" and d["price"] >= 50), key=lambda d: -d["price"]
    )
    assert response.hits.total.value == len(matching)
    assert [h.meta.id for h in response] == [d["_id"] for d in matching[:5]]
    assert [h.price for h in response] == [d["price"] for d in matching[:5]]
    page = s[5:10].execute()
    assert [h.meta.id for h in page] == [d["_id"] for d in matching[5:10]]
    out_of_stock = Search(using=es, index=shop).filter("term", in_stock=False).count()
    assert out_of_stock == sum(1 for d in DOCS if not d["in_stock"])


def test_aggregations_with_the_dsl(es: OpenSearch, shop: str) -> None:
    s = Search(using=es, index=shop).extra(size=0)
    s.aggs.bucket("by_cat", "terms", field="category").metric("avg_price", "avg", field="price")
    response = unless_aggs_pending(s.execute)
    buckets = response.aggregations.by_cat.buckets
    got = {b.key: (b.doc_count, b.avg_price.value) for b in buckets}
    oracle = agg_oracle(DOCS)
    assert set(got) == set(oracle)
    for key, (count, avg) in oracle.items():
        assert got[key][0] == count
        assert got[key][1] == pytest.approx(avg, rel=1e-9)
    counts = [b.doc_count for b in buckets]
    assert counts == sorted(counts, reverse=True)


def test_filtered_aggregation_with_the_dsl(es: OpenSearch, shop: str) -> None:
    s = Search(using=es, index=shop).filter("range", price={"lt": 100}).extra(size=0)
    s.aggs.bucket("by_cat", "terms", field="category").metric("avg_price", "avg", field="price")
    response = unless_aggs_pending(s.execute)
    oracle = agg_oracle([d for d in DOCS if d["price"] < 100])
    got = {b.key: (b.doc_count, b.avg_price.value) for b in response.aggregations.by_cat.buckets}
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in oracle.items()}
    for key, (_, avg) in oracle.items():
        assert got[key][1] == pytest.approx(avg, rel=1e-9)


def test_cat_health_and_errors(es: OpenSearch, shop: str) -> None:
    rows = es.cat.indices(index=shop, format="json")
    assert rows[0]["index"] == shop and rows[0]["docs.count"] == str(len(DOCS))
    assert shop in es.cat.indices(v=True)
    assert es.cluster.health()["status"] == "green"
    with pytest.raises(RequestError) as bad:
        es.search(index=shop, body={"query": {"bogus": {}}})
    assert bad.value.error == "parsing_exception"
    with pytest.raises(NotFoundError) as missing:
        es.search(index="no-such-index", body={})
    assert missing.value.error == "index_not_found_exception"


@pytest.fixture
async def aes(server: Server) -> AsyncIterator[AsyncOpenSearch]:
    client = AsyncOpenSearch(hosts=[server.url + "/es"], connection_class=AIOHttpConnection, timeout=30)
    yield client
    await client.close()


async def test_async_client(aes: AsyncOpenSearch) -> None:
    info = await aes.info()
    assert info["version"]["number"].startswith("8.")
    await aes.indices.create(index="async-shop", body={"mappings": MAPPINGS})
    docs = products(120, seed=11)
    actions = [{"_index": "async-shop", "_id": d["_id"], "_source": source(d)} for d in docs]
    ok, errors = await helpers.async_bulk(aes, actions)
    assert (ok, errors) == (len(docs), [])
    doc = await aes.get(index="async-shop", id=docs[0]["_id"])
    assert doc["_source"]["name"] == docs[0]["name"]
    assert (await aes.count(index="async-shop"))["count"] == len(docs)
    garden = [d for d in docs if d["category"] == "Garden"]
    found = await aes.search(
        index="async-shop", body={"query": {"term": {"category": "Garden"}}, "size": 200, "sort": ["_id"]}
    )
    assert [h["_id"] for h in found["hits"]["hits"]] == sorted(d["_id"] for d in garden)
    with pytest.raises(ConflictError):
        await aes.create(index="async-shop", id=docs[0]["_id"], body={"name": "again"})


async def test_async_aggregations(aes: AsyncOpenSearch) -> None:
    docs = products(80, seed=3)
    actions = [{"_index": "async-aggs", "_id": d["_id"], "_source": source(d)} for d in docs]
    assert (await helpers.async_bulk(aes, actions))[0] == len(docs)
    s = AsyncSearch(using=aes, index="async-aggs").extra(size=0)
    s.aggs.bucket("by_cat", "terms", field="category").metric("avg_price", "avg", field="price")
    try:
        response = await s.execute()
    except RequestError as exc:
        if exc.status_code == 400 and exc.info["error"]["reason"] == AGGS_PENDING:
            pytest.skip("aggregations are not implemented in the search service yet")
        raise
    oracle = agg_oracle(docs)
    got = {b.key: (b.doc_count, b.avg_price.value) for b in response.aggregations.by_cat.buckets}
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in oracle.items()}
    for key, (_, avg) in oracle.items():
        assert got[key][1] == pytest.approx(avg, rel=1e-9)


def test_server_log_is_clean(server: Server) -> None:
    """No request of this module made the server log a traceback (a 500 is a bug)."""
    log = Path(server.data_dir).parent / "server.log"
    assert "Traceback" not in log.read_text()

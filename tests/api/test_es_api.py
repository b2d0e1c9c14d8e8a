"""The Elasticsearch-compatible API over HTTP: exact response shapes, statuses and semantics.

Bodies are compared with what Elasticsearch 8 returns for the same requests; where
Aggregata differs on purpose (versions are not tracked, one shard) the test says so.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from aggregata.ingest.bulk import index_uuid
from aggregata.model.documents import prepare_documents
from aggregata.model.mapping import Mapping
from aggregata.services import Services
from aggregata.storage.duckdb import DuckDBEngine, _WriteRequest
from aggregata.storage.engine import WriteResult

SHARDS = {"total": 1, "successful": 1, "failed": 0}
NDJSON = {"content-type": "application/x-ndjson"}


def ndjson(*lines: Any) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def written(result: str, index: str, id_: str) -> dict[str, Any]:
    """A successful single-document write response (versions are not tracked: always 1)."""
    return {
        "_index": index,
        "_id": id_,
        "_version": 1,
        "result": result,
        "_shards": SHARDS,
        "_seq_no": 0,
        "_primary_term": 1,
    }


def es_error(r: Any, status: int, type_: str) -> dict[str, Any]:
    """Assert Elasticsearch's error shape and return the error object."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status
    error = body["error"]
    assert error["type"] == type_, body
    assert error["root_cause"] == [{k: v for k, v in error.items() if k != "root_cause"}]
    assert r.headers["x-elastic-product"] == "Elasticsearch"
    return dict(error)


def ids(client: TestClient, index: str) -> list[str]:
    hits = client.post(f"/es/{index}/_search", json={"size": 100, "sort": ["_id"]}).json()["hits"]
    return [h["_id"] for h in hits["hits"]]


def sources(client: TestClient, index: str) -> dict[str, Any]:
    hits = client.post(f"/es/{index}/_search", json={"size": 100}).json()["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


# -- cluster ---------------------------------------------------------------------------------


def test_cluster_info_ping_and_product_header(client: TestClient) -> None:
    r = client.get("/es/")
    body = r.json()
    assert r.headers["x-elastic-product"] == "Elasticsearch"
    assert body["version"]["number"].split(".")[0] == "8"
    assert body["version"]["build_flavor"] == "default"
    assert body["tagline"] == "You Know, for Search" and body["cluster_name"] == "aggregata"
    head = client.head("/es/")
    assert head.status_code == 200 and head.content == b""
    assert client.get("/es").json() == body


def test_cluster_health(client: TestClient) -> None:
    client.put("/es/a")
    health = client.get("/es/_cluster/health?wait_for_status=yellow&timeout=1s").json()
    assert health["status"] == "green" and health["active_primary_shards"] == 1
    assert client.get("/es/_cluster/health/a").json()["active_shards"] == 1
    es_error(client.get("/es/_cluster/health/zzz"), 404, "index_not_found_exception")


def test_cat_indices_text_and_json(client: TestClient) -> None:
    client.post("/es/_bulk", content=ndjson({"index": {"_index": "big"}}, {"n": 1}) * 12)
    client.post("/es/_bulk", content=ndjson({"index": {"_index": "small"}}, {"n": 1}))
    rows = client.get("/es/_cat/indices?format=json").json()
    assert [(r["index"], r["docs.count"], r["health"], r["uuid"]) for r in rows] == [
        ("big", "12", "green", index_uuid("big")),
        ("small", "1", "green", index_uuid("small")),
    ]
    text = client.get("/es/_cat/indices?v&h=index,docs.count&s=docs.count:desc").text
    assert text.splitlines() == ["index docs.count", "big           12", "small          1"]
    assert client.get("/es/_cat/indices").text.splitlines()[0].split()[:3] == ["green", "open", "big"]
    assert [r["index"] for r in client.get("/es/_cat/indices/sm*?format=json").json()] == ["small"]
    es_error(client.get("/es/_cat/indices/nope"), 404, "index_not_found_exception")
    es_error(client.get("/es/_cat/indices?format=yaml"), 400, "illegal_argument_exception")
    es_error(client.get("/es/_cat/indices?h=bogus"), 400, "illegal_argument_exception")


# -- indices ---------------------------------------------------------------------------------


def test_create_index_and_read_it_back(client: TestClient) -> None:
    body = {
        "settings": {"number_of_shards": 3, "index": {"refresh_interval": "1s"}},
        "mappings": {
            "_meta": {"owner": "x"},
            "properties": {
                "price": {"type": "float"},
                "user": {"properties": {"name": {"type": "keyword"}}},
            },
        },
    }
    r = client.put("/es/shop", json=body)
    assert r.status_code == 200
    assert r.json() == {"acknowledged": True, "shards_acknowledged": True, "index": "shop"}
    mappings = {
        "properties": {"price": {"type": "double"}, "user": {"properties": {"name": {"type": "keyword"}}}}
    }
    assert client.get("/es/shop/_mapping").json() == {"shop": {"mappings": mappings}}
    assert client.get("/es/_mapping").json() == {"shop": {"mappings": mappings}}
    got = client.get("/es/shop").json()["shop"]
    assert got["mappings"] == mappings and got["aliases"] == {}
    assert got["settings"]["index"]["uuid"] == index_uuid("shop")
    assert client.head("/es/shop").status_code == 200
    error = es_error(client.put("/es/shop", json={}), 400, "resource_already_exists_exception")
    assert error["index"] == "shop" and error["index_uuid"] == index_uuid("shop")
    assert client.delete("/es/shop").json() == {"acknowledged": True}
    missing = client.head("/es/shop")
    assert missing.status_code == 404 and missing.content == b""
    error = es_error(client.get("/es/shop"), 404, "index_not_found_exception")
    assert error["reason"] == "no such index [shop]"
    assert (error["index"], error["resource.id"], error["resource.type"]) == (
        "shop",
        "shop",
        "index_or_alias",
    )
    es_error(client.delete("/es/shop"), 404, "index_not_found_exception")


def test_empty_index_has_empty_mappings(client: TestClient) -> None:
    assert client.put("/es/empty").status_code == 200
    assert client.get("/es/empty/_mapping").json() == {"empty": {"mappings": {}}}


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        ({"mappings": {"properties": {"x": {"type": "ip"}}}}, 400, "mapper_parsing_exception"),
        ({"mappings": {"dynamic": False}}, 400, "mapper_parsing_exception"),
        ({"mappings": {"dynamic_templates": []}}, 400, "mapper_parsing_exception"),
        ({"mapping": {}}, 400, "parsing_exception"),
        ({"aliases": {"x": {}}}, 400, "illegal_argument_exception"),
        ([1], 400, "parsing_exception"),
    ],
)
def test_create_index_rejects(client: TestClient, body: Any, status: int, type_: str) -> None:
    es_error(client.put("/es/bad", json=body), status, type_)
    assert client.head("/es/bad").status_code == 404


def test_invalid_index_name_and_unreadable_body(client: TestClient) -> None:
    es_error(client.put("/es/Upper"), 400, "invalid_index_name_exception")
    r = client.put("/es/x", content=b"{nope", headers={"content-type": "application/json"})
    es_error(r, 400, "x_content_parse_exception")


def test_strict_mapping_rejects_undeclared_fields(client: TestClient) -> None:
    client.put("/es/strict", json={"mappings": {"dynamic": "strict", "properties": {"a": {"type": "long"}}}})
    assert client.get("/es/strict/_mapping").json()["strict"]["mappings"]["dynamic"] == "strict"
    assert client.put("/es/strict/_doc/1", json={"a": 1}).status_code == 201
    es_error(client.put("/es/strict/_doc/2", json={"a": 1, "b": 2}), 400, "mapper_parsing_exception")
    # Relaxing the mapping through _mapping lets the field in.
    assert client.put("/es/strict/_mapping", json={"dynamic": True}).json() == {"acknowledged": True}
    assert client.put("/es/strict/_doc/2", json={"a": 1, "b": 2}).status_code == 201


def test_put_mapping_adds_fields_and_refuses_type_changes(client: TestClient) -> None:
    client.put("/es/m", json={"mappings": {"properties": {"a": {"type": "long"}}}})
    r = client.put("/es/m/_mapping", json={"properties": {"b": {"type": "keyword"}, "a": {"type": "long"}}})
    assert r.json() == {"acknowledged": True}
    props = client.get("/es/m/_mapping").json()["m"]["mappings"]["properties"]
    assert props == {"a": {"type": "long"}, "b": {"type": "keyword"}}
    error = es_error(
        client.put("/es/m/_mapping", json={"properties": {"a": {"type": "keyword"}}}),
        400,
        "illegal_argument_exception",
    )
    assert "cannot be changed from type [long] to [keyword]" in error["reason"]
    es_error(
        client.put("/es/m/_mapping", json={"properties": {"a": {"properties": {"x": {"type": "long"}}}}}),
        400,
        "illegal_argument_exception",
    )
    assert client.put("/es/m/_doc/1", json={"a": 1, "b": "x"}).status_code == 201


def test_refresh_is_a_no_op_but_checks_the_index(client: TestClient) -> None:
    client.put("/es/r")
    assert client.post("/es/r/_refresh").json() == {"_shards": SHARDS}
    assert client.post("/es/_refresh").status_code == 200
    es_error(client.post("/es/zz/_refresh"), 404, "index_not_found_exception")


# -- single documents ------------------------------------------------------------------------


def test_index_creates_then_overwrites_whole_document(client: TestClient) -> None:
    r = client.put("/es/docs/_doc/1?refresh=true", json={"a": 1, "b": "x"})
    assert r.status_code == 201
    assert r.json() == {**written("created", "docs", "1"), "forced_refresh": True}
    r = client.post("/es/docs/_doc/1", json={"a": 2})
    assert r.status_code == 200 and r.json() == written("updated", "docs", "1")
    got = client.get("/es/docs/_doc/1").json()
    assert got == {
        "_index": "docs",
        "_id": "1",
        "_version": 1,
        "_seq_no": 0,
        "_primary_term": 1,
        "found": True,
        "_source": {"a": 2},  # "b" is gone: index replaces the document, it does not merge
    }
    assert client.get("/es/docs/_count").json()["count"] == 1


def test_create_refuses_existing_ids(client: TestClient) -> None:
    assert client.put("/es/c/_create/1", json={"a": 1}).status_code == 201
    error = es_error(client.put("/es/c/_create/1", json={"a": 2}), 409, "version_conflict_engine_exception")
    assert error["reason"] == "[1]: version conflict, document already exists (current version [1])"
    assert (error["index"], error["shard"], error["index_uuid"]) == ("c", "0", index_uuid("c"))
    es_error(
        client.put("/es/c/_doc/1?op_type=create", json={"a": 3}), 409, "version_conflict_engine_exception"
    )
    assert client.get("/es/c/_doc/1").json()["_source"] == {"a": 1}
    assert client.put("/es/c/_doc/2?op_type=create", json={"a": 3}).status_code == 201


def test_auto_ids_are_fresh(client: TestClient) -> None:
    first = client.post("/es/auto/_doc", json={"a": 1})
    second = client.post("/es/auto/_doc", json={"a": 1})
    assert first.status_code == second.status_code == 201
    assert first.json()["result"] == "created" and first.json()["_id"] != second.json()["_id"]
    assert sorted(ids(client, "auto")) == sorted([first.json()["_id"], second.json()["_id"]])


def test_ids_with_slashes_and_unicode(client: TestClient) -> None:
    assert client.put("/es/u/_doc/a%2Fb", json={"a": 1}).json()["_id"] == "a/b"
    assert client.put("/es/u/_doc/%C3%A9t%C3%A9", json={"a": 1}).json()["_id"] == "été"
    assert client.get("/es/u/_doc/a%2Fb").json()["found"] is True
    assert sorted(ids(client, "u")) == ["a/b", "été"]


@pytest.mark.parametrize(
    ("body", "type_"),
    [
        ({"a": "text into long"}, "mapper_parsing_exception"),
        ({"_id": "x", "a": 1}, "mapper_parsing_exception"),
        ([1, 2], "mapper_parsing_exception"),
        (None, "action_request_validation_exception"),
    ],
)
def test_bad_documents_are_400(client: TestClient, body: Any, type_: str) -> None:
    client.put("/es/bad/_doc/0", json={"a": 1})
    r = client.put("/es/bad/_doc/1", content=b"" if body is None else orjson.dumps(body))
    es_error(r, 400, type_)
    assert ids(client, "bad") == ["0"]


@pytest.mark.parametrize("param", ["if_seq_no=1", "version=3", "pipeline=p", "bogus=1", "refresh=sometimes"])
def test_unsupported_or_unknown_parameters_are_refused(client: TestClient, param: str) -> None:
    r = client.put(f"/es/p/_doc/1?{param}", json={"a": 1})
    es_error(r, 400, "illegal_argument_exception")
    assert client.head("/es/p").status_code == 404


def test_get_head_source_and_delete(client: TestClient) -> None:
    client.put("/es/g/_doc/1", json={"a": 1, "b": {"c": "x", "d": 2}})
    assert client.get("/es/g/_doc/1?_source_includes=b.c").json()["_source"] == {"b": {"c": "x"}}
    assert client.get("/es/g/_doc/1?_source=a").json()["_source"] == {"a": 1}
    assert "_source" not in client.get("/es/g/_doc/1?_source=false").json()
    assert client.get("/es/g/_source/1").json() == {"a": 1, "b": {"c": "x", "d": 2}}
    assert client.head("/es/g/_doc/1").status_code == 200
    assert client.head("/es/g/_doc/2").status_code == 404
    assert client.head("/es/nope/_doc/1").status_code == 404
    missing = client.get("/es/g/_doc/2")
    assert missing.status_code == 404 and missing.json() == {"_index": "g", "_id": "2", "found": False}
    es_error(client.get("/es/g/_source/2"), 404, "resource_not_found_exception")
    es_error(client.get("/es/nope/_doc/1"), 404, "index_not_found_exception")
    deleted = client.delete("/es/g/_doc/1")
    assert deleted.status_code == 200 and deleted.json() == written("deleted", "g", "1")
    again = client.delete("/es/g/_doc/1")
    assert again.status_code == 404 and again.json() == written("not_found", "g", "1")
    es_error(client.delete("/es/nope/_doc/1"), 404, "index_not_found_exception")
    assert client.head("/es/nope").status_code == 404  # a delete does not create the index


def test_update_merges_and_upserts(client: TestClient) -> None:
    client.put("/es/up/_doc/1", json={"a": 1, "obj": {"x": 1, "y": 2}, "tags": ["p", "q"]})
    r = client.post("/es/up/_update/1", json={"doc": {"obj": {"y": 3, "z": 4}, "tags": ["r"]}})
    assert r.status_code == 200 and r.json() == written("updated", "up", "1")
    expected = {"a": 1, "obj": {"x": 1, "y": 3, "z": 4}, "tags": ["r"]}
    assert client.get("/es/up/_doc/1").json()["_source"] == expected
    noop = client.post("/es/up/_update/1", json={"doc": {"a": 1}})
    assert noop.status_code == 200
    assert noop.json()["result"] == "noop" and noop.json()["_shards"]["total"] == 0
    error = es_error(
        client.post("/es/up/_update/2", json={"doc": {"a": 1}}), 404, "document_missing_exception"
    )
    assert error["reason"] == "[2]: document missing"
    created = client.post("/es/up/_update/2", json={"doc": {"a": 5}, "doc_as_upsert": True})
    assert created.status_code == 201 and created.json()["result"] == "created"
    upsert = client.post("/es/up/_update/3", json={"doc": {"a": 5}, "upsert": {"a": 0}})
    assert upsert.status_code == 201
    assert client.get("/es/up/_doc/3").json()["_source"] == {"a": 0}
    es_error(
        client.post("/es/up/_update/1", json={"script": {"source": "x"}}), 400, "illegal_argument_exception"
    )
    es_error(client.post("/es/up/_update/1", json={"doc": {"a": "x"}}), 400, "mapper_parsing_exception")
    es_error(client.post("/es/up/_update/1", json={"dok": {}}), 400, "x_content_parse_exception")
    assert client.get("/es/up/_doc/1").json()["_source"] == expected


# -- bulk ------------------------------------------------------------------------------------


def test_bulk_items_exactly_as_elasticsearch(client: TestClient) -> None:
    client.put("/es/b/_doc/old", json={"n": 0})
    body = ndjson(
        {"index": {"_id": "1"}},
        {"n": 1},
        {"create": {"_id": "old"}},
        {"n": 2},
        {"index": {"_id": "old"}},
        {"n": 3},
        {"index": {"_id": "bad"}},
        {"n": "x"},
        {"delete": {"_id": "missing"}},
        {"update": {"_id": "1"}},
        {"doc": {"m": 1}},
        {"index": {"_index": "other", "_id": "o"}},
        {"v": 1},
        {"index": {"_index": "Bad-Name", "_id": "z"}},
        {"v": 1},
    )
    r = client.post("/es/b/_bulk", content=body, headers=NDJSON)
    assert r.status_code == 200
    out = r.json()
    assert out["errors"] is True and isinstance(out["took"], int)
    items = out["items"]
    ok = {"_version": 1, "_shards": SHARDS, "_seq_no": 0, "_primary_term": 1}
    assert items[0] == {"index": {"_index": "b", "_id": "1", **ok, "result": "created", "status": 201}}
    conflict = items[1]["create"]
    assert (conflict["status"], conflict["error"]["type"]) == (409, "version_conflict_engine_exception")
    assert set(conflict) == {"_index", "_id", "status", "error"}
    assert items[2] == {"index": {"_index": "b", "_id": "old", **ok, "result": "updated", "status": 200}}
    assert items[3]["index"]["status"] == 400
    assert items[3]["index"]["error"]["type"] == "mapper_parsing_exception"
    assert "cannot hold 'x'" in items[3]["index"]["error"]["reason"]
    assert items[4] == {
        "delete": {"_index": "b", "_id": "missing", **ok, "result": "not_found", "status": 404}
    }
    assert items[5] == {"update": {"_index": "b", "_id": "1", **ok, "result": "updated", "status": 200}}
    assert items[6]["index"]["_index"] == "other" and items[6]["index"]["status"] == 201
    assert items[7]["index"]["status"] == 400
    assert items[7]["index"]["error"]["type"] == "invalid_index_name_exception"
    assert sources(client, "b") == {"1": {"n": 1, "m": 1}, "old": {"n": 3}}
    assert sources(client, "other") == {"o": {"v": 1}}


def test_bulk_without_failures_and_not_found_deletes_has_no_errors(client: TestClient) -> None:
    body = ndjson({"index": {"_index": "q", "_id": "1"}}, {"n": 1}, {"delete": {"_index": "q", "_id": "2"}})
    out = client.post("/es/_bulk", content=body).json()
    assert out["errors"] is False
    assert [next(iter(i.values()))["status"] for i in out["items"]] == [201, 404]


def test_bulk_operations_on_one_id_apply_in_order(client: TestClient) -> None:
    body = ndjson(
        {"index": {"_id": "x"}},
        {"v": 1},
        {"delete": {"_id": "x"}},
        {"create": {"_id": "x"}},
        {"v": 2},
        {"create": {"_id": "x"}},
        {"v": 3},
        {"update": {"_id": "x"}},
        {"doc": {"w": 4}},
        {"index": {"_id": "y"}},
        {"v": 9},
    )
    items = client.post("/es/seq/_bulk", content=body).json()["items"]
    outcomes = [(op, v["status"], v.get("result")) for i in items for op, v in i.items()]
    assert outcomes == [
        ("index", 201, "created"),
        ("delete", 200, "deleted"),
        ("create", 201, "created"),
        ("create", 409, None),
        ("update", 200, "updated"),
        ("index", 201, "created"),
    ]
    assert sources(client, "seq") == {"x": {"v": 2, "w": 4}, "y": {"v": 9}}


def test_bulk_stores_many_documents_in_one_write(client: TestClient, services: Services) -> None:
    calls: list[int] = []
    original = services.engine.write

    def counting(*args: Any, **kwargs: Any) -> WriteResult:
        calls.append(args[1].size)
        return original(*args, **kwargs)

    services.engine.write = counting  # type: ignore[method-assign]
    body = b"".join(ndjson({"index": {"_id": str(i)}}, {"n": i, "even": i % 2 == 0}) for i in range(2000))
    out = client.post("/es/many/_bulk", content=body).json()
    assert out["errors"] is False and len(out["items"]) == 2000
    assert calls == [2000]
    assert client.get("/es/many/_count?q=even:true").json()["count"] == 1000
    calls.clear()
    again = client.post("/es/many/_bulk", content=body).json()
    assert {i["index"]["result"] for i in again["items"]} == {"updated"} and calls == [2000]
    assert client.get("/es/many/_count").json()["count"] == 2000


@pytest.mark.parametrize(
    ("body", "type_", "reason"),
    [
        (b'{"foo": {}}\n', "illegal_argument_exception", "but found [foo]"),
        (b'{"index": {}, "delete": {}}\n{}\n', "illegal_argument_exception", "Malformed action"),
        (b'{"index": {"_id": "1", "_type": "doc"}}\n{}\n', "illegal_argument_exception", "unknown parameter"),
        (b'{"index": {"if_seq_no": 1}}\n{}\n', "illegal_argument_exception", "not supported"),
        (b"{nope\n", "x_content_parse_exception", "Malformed action"),
        (b'{"index": {"_index": "i"}}\n', "illegal_argument_exception", "not followed by a document"),
        (b'{"delete": {"_index": "i"}}\n', "action_request_validation_exception", "id is missing"),
        (b'{"index": {"_id": "1"}}\n{}\n', "action_request_validation_exception", "index is missing"),
        (b"\n\n", "action_request_validation_exception", "no requests added"),
    ],
)
def test_malformed_bulk_requests_fail_whole(client: TestClient, body: bytes, type_: str, reason: str) -> None:
    error = es_error(client.post("/es/_bulk", content=body), 400, type_)
    assert reason in error["reason"]
    assert client.get("/es/_cat/indices?format=json").json() == []


def test_bulk_item_level_failures(client: TestClient) -> None:
    body = (
        ndjson({"index": {"_id": "1"}})
        + b"{broken json\n"
        + ndjson(
            {"index": {"_id": "2"}},
            [1, 2],
            {"index": {"_id": "3"}},
            {"_id": "3", "a": 1},
            {"update": {"_id": "4"}},
            {"doc": {"a": 1}},
            {"update": {"_id": "5"}},
            {"script": "ctx._source.a = 1"},
            {"delete": {"_index": "absent", "_id": "1"}},
            {"index": {"_id": "6"}},
            {"a": 6},
        )
    )
    items = client.post("/es/it/_bulk", content=body).json()["items"]
    got = [(v["status"], v.get("error", {}).get("type")) for i in items for v in i.values()]
    assert got == [
        (400, "mapper_parsing_exception"),
        (400, "mapper_parsing_exception"),
        (400, "mapper_parsing_exception"),
        (404, "document_missing_exception"),
        (400, "illegal_argument_exception"),
        (404, "index_not_found_exception"),
        (201, None),
    ]
    assert ids(client, "it") == ["6"]
    assert client.head("/es/absent").status_code == 404


def test_bulk_update_with_upsert_creates_the_index(client: TestClient) -> None:
    body = ndjson({"update": {"_index": "ups", "_id": "1"}}, {"doc": {"a": 1}, "upsert": {"a": 0}})
    items = client.post("/es/_bulk", content=body).json()["items"]
    assert items[0]["update"]["status"] == 201
    assert sources(client, "ups") == {"1": {"a": 0}}


# -- search and count ------------------------------------------------------------------------


@pytest.fixture
def catalog(client: TestClient) -> list[dict[str, Any]]:
    docs = [
        {"_id": f"d{i}", "cat": ["a", "b", "c"][i % 3], "price": float(i), "name": f"item {i}"}
        for i in range(20)
    ]
    lines = [
        x for d in docs for x in ({"index": {"_id": d["_id"]}}, {k: v for k, v in d.items() if k != "_id"})
    ]
    assert client.post("/es/cat/_bulk", content=ndjson(*lines)).json()["errors"] is False
    return docs


def test_search_body_and_url_parameters(client: TestClient, catalog: list[dict[str, Any]]) -> None:
    body = {"query": {"term": {"cat": "a"}}, "sort": [{"price": "desc"}], "size": 2}
    hits = client.post("/es/cat/_search", json=body).json()["hits"]
    a_docs = sorted((d for d in catalog if d["cat"] == "a"), key=lambda d: -d["price"])
    assert hits["total"] == {"value": len(a_docs), "relation": "eq"}
    assert [h["_id"] for h in hits["hits"]] == [d["_id"] for d in a_docs[:2]]
    # URL parameters win over the body.
    url = "/es/cat/_search?size=3&from=1&sort=price:asc&_source=price&rest_total_hits_as_int=true"
    res = client.post(url, json=body).json()
    by_price = sorted((d for d in catalog if d["cat"] == "a"), key=lambda d: d["price"])
    assert [h["_id"] for h in res["hits"]["hits"]] == [d["_id"] for d in by_price[1:4]]
    assert res["hits"]["total"] == len(a_docs)
    assert res["hits"]["hits"][0]["_source"] == {"price": by_price[1]["price"]}
    assert client.get("/es/cat/_search?source=" + orjson.dumps(body).decode()).json()["hits"] == hits


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("*", lambda d: True),
        ("cat:a", lambda d: d["cat"] == "a"),
        ("cat:a AND price:3", lambda d: d["cat"] == "a" and d["price"] == 3),
        ("cat:a OR cat:b", lambda d: d["cat"] in ("a", "b")),
        ("cat:a cat:c", lambda d: d["cat"] in ("a", "c")),
        ('name:"item 7"', lambda d: d["name"] == "item 7"),
        ("name:*", lambda d: True),
    ],
)
def test_q_parameter(client: TestClient, catalog: list[dict[str, Any]], q: str, expected: Any) -> None:
    res = client.get("/es/cat/_search", params={"q": q, "size": 50}).json()
    assert sorted(h["_id"] for h in res["hits"]["hits"]) == sorted(d["_id"] for d in catalog if expected(d))
    count = client.get("/es/cat/_count", params={"q": q}).json()
    assert count == {
        "count": sum(1 for d in catalog if expected(d)),
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
    }


@pytest.mark.parametrize("q", ["price:[1 TO 3]", "cat:a AND cat:b OR cat:c", "free text"])
def test_q_outside_the_supported_syntax_is_400(
    client: TestClient, catalog: list[dict[str, Any]], q: str
) -> None:
    es_error(client.get("/es/cat/_search", params={"q": q}), 400, "illegal_argument_exception")


def test_count_and_search_errors(client: TestClient, catalog: list[dict[str, Any]]) -> None:
    assert (
        client.post("/es/cat/_count", json={"query": {"range": {"price": {"gte": 15}}}}).json()["count"] == 5
    )
    es_error(client.post("/es/cat/_count", json={"size": 1}), 400, "parsing_exception")
    es_error(client.post("/es/cat/_search", json={"query": {"nope": {}}}), 400, "parsing_exception")
    es_error(client.post("/es/cat/_search", json={"highlight": {}}), 400, "parsing_exception")
    es_error(client.post("/es/cat/_search?scroll=1m", json={}), 400, "illegal_argument_exception")
    es_error(client.post("/es/cat/_search?size=ten", json={}), 400, "illegal_argument_exception")
    es_error(client.post("/es/cat,other/_search", json={}), 400, "illegal_argument_exception")
    es_error(client.post("/es/_search", json={}), 400, "illegal_argument_exception")
    es_error(client.post("/es/nope/_search", json={}), 404, "index_not_found_exception")
    es_error(client.post("/es/nope/_count"), 404, "index_not_found_exception")


def test_filter_path_and_pretty(client: TestClient, catalog: list[dict[str, Any]]) -> None:
    r = client.get("/es/cat/_search?size=2&sort=_id&filter_path=hits.hits._id,hits.total.value")
    assert r.json() == {"hits": {"total": {"value": 20}, "hits": [{"_id": "d0"}, {"_id": "d1"}]}}
    r = client.get("/es/cat/_search?size=1&filter_path=-hits.hits,-_shards,-took")
    assert r.json() == {
        "timed_out": False,
        "hits": {"total": {"value": 20, "relation": "eq"}, "max_score": 1.0},
    }
    r = client.get("/es/cat/_search?size=1&sort=_id&filter_path=**._id")
    assert r.json() == {"hits": {"hits": [{"_id": "d0"}]}}
    pretty = client.get("/es/cat/_count?pretty")
    assert pretty.text.startswith('{\n  "count": 20') and pretty.headers["x-elastic-product"]


# -- errors ----------------------------------------------------------------------------------


def test_errors_under_es_use_elasticsearch_shape_and_others_do_not(client: TestClient) -> None:
    es_error(client.delete("/es/"), 405, "method_not_allowed")
    es_error(client.get("/es/a/b/c/d"), 404, "not_found")
    native = client.get("/v1/collections/nope").json()
    assert native == {
        "error": {"type": "index_not_found_exception", "reason": "no such collection [nope]"},
        "status": 404,
    }


def test_body_over_the_limit_is_413_in_elasticsearch_shape(client: TestClient) -> None:
    big = ndjson({"index": {"_index": "big"}}, {"v": "x" * 2_000_000})
    es_error(client.post("/es/_bulk", content=big), 413, "content_too_long_exception")


# -- the engine write path behind overwrite and delete ---------------------------------------


def _request(engine: DuckDBEngine, name: str, docs: list[dict[str, Any]], **kw: Any) -> _WriteRequest:
    coll = engine.get_collection(name)
    batch = prepare_documents(docs, coll.mapping, new_id=lambda: "unused")
    return _WriteRequest(name, batch, None, **kw)


def test_group_commit_applies_requests_in_order(engine: DuckDBEngine) -> None:
    """Appends, overwrites and deletes grouped into one transaction act as if run one by one."""
    engine.create_collection("g", Mapping())
    engine.write("g", prepare_documents([{"_id": "s", "v": 0}], Mapping(), new_id=str))
    group = [
        _request(engine, "g", [{"_id": "a", "v": 1}, {"_id": "s", "v": 1}]),
        _request(engine, "g", [{"_id": "a", "v": 2}], overwrite=frozenset({"a"})),
        _request(engine, "g", [{"_id": "a", "v": 3}]),
        _request(engine, "g", [], delete=("s", "zz")),
        _request(engine, "g", [{"_id": "s", "v": 4}]),
    ]
    engine._commit_group(group)
    results = [r.future.result() for r in group]
    assert [(r.inserted, r.duplicate_ids, r.overwritten_ids, r.deleted_ids) for r in results] == [
        (1, ["s"], [], []),
        (1, [], ["a"], []),
        (0, ["a"], [], []),
        (0, [], [], ["s"]),
        (1, [], [], []),
    ]
    rows = engine.query_sql('SELECT _id, v FROM "g" ORDER BY _id').to_pylist()
    assert rows == [{"_id": "a", "v": 2}, {"_id": "s", "v": 4}]

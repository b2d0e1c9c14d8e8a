"""The HTTP API as a client uses it: status codes, bodies and the error shape."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["engine"] == "duckdb" and body["version"]
    assert "data_dir" in body


def test_collection_lifecycle_with_mapping(client: TestClient) -> None:
    r = client.put(
        "/v1/collections/shop",
        json={
            "mappings": {
                "properties": {
                    "price": {"type": "double"},
                    "user": {"properties": {"id": {"type": "keyword"}}},
                }
            }
        },
    )
    assert r.status_code == 201, r.text
    assert client.put("/v1/collections/shop", json={}).status_code == 409
    got = client.get("/v1/collections/shop").json()
    assert got["count"] == 0
    assert got["mappings"]["properties"]["user"]["properties"]["id"] == {"type": "keyword"}
    assert client.get("/v1/collections").json()["collections"] == [
        {"name": "shop", "kind": "documents", "count": 0}
    ]
    assert (
        client.get("/v1/collections/shop/_mapping").json()["shop"]["mappings"]["properties"]["price"]["type"]
        == "double"
    )
    assert client.delete("/v1/collections/shop").json() == {"acknowledged": True}
    r = client.get("/v1/collections/shop")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "index_not_found_exception"


def test_json_array_partial_failure_keeps_good_documents(client: TestClient) -> None:
    docs = [{"_id": "1", "n": 1}, {"_id": "2", "n": "two"}, "not an object", {"_id": "3", "n": 3}]
    body = client.post("/v1/collections/c/documents", json=docs).json()
    assert body["stored"] == 2 and body["failed"] == 2 and body["errors"] is True
    assert [i["position"] for i in body["items"]] == [1, 2]
    assert "cannot hold 'two'" in body["items"][0]["error"]["reason"]
    hits = client.post("/v1/collections/c/_search", json={"sort": ["_id"]}).json()["hits"]
    assert [h["_id"] for h in hits["hits"]] == ["1", "3"]


def test_ndjson_with_a_bad_line_and_retry(client: TestClient) -> None:
    lines = b'{"_id": "a", "v": 1}\n{not json}\n\n{"_id": "b", "v": 2}\n'
    headers = {"content-type": "application/x-ndjson"}
    first = client.post("/v1/collections/n/documents", content=lines, headers=headers).json()
    assert (first["stored"], first["failed"], first["items"][0]["position"]) == (2, 1, 1)
    retry = client.post("/v1/collections/n/documents", content=lines, headers=headers).json()
    assert (retry["stored"], retry["duplicates"]) == (0, 2)
    assert client.get("/v1/collections/n").json()["count"] == 2


def test_unreadable_body_is_400(client: TestClient) -> None:
    r = client.post(
        "/v1/collections/c/documents",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "x_content_parse_exception"


def test_body_over_limit_is_413(client: TestClient) -> None:
    big = orjson.dumps([{"v": "x" * 1000} for _ in range(2000)])
    r = client.post("/v1/collections/c/documents", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "content_too_long_exception"


def test_events_capture_enrichment_and_idempotency(client: TestClient) -> None:
    event = {
        "event": "purchase",
        "distinct_id": "u1",
        "timestamp": "2026-11-01T13:30:00Z",
        "properties": {"country": "DE", "price": 9.5},
        "uuid": "0b6a3f0e-8a8e-4a43-9a59-3c1f3f4d2b11",
    }
    batch = {"batch": [event, {"event": "pageview", "distinct_id": 7}, {"distinct_id": "u2"}]}
    body = client.post("/v1/events", json=batch).json()
    assert (body["stored"], body["failed"]) == (2, 1)
    assert "[event] is required" in body["items"][0]["error"]["reason"]
    again = client.post("/v1/events", json=event).json()
    assert (again["stored"], again["duplicates"]) == (0, 1)
    hits = client.post(
        "/v1/collections/events/_search", json={"query": {"ids": {"values": [event["uuid"]]}}}
    ).json()
    src = hits["hits"]["hits"][0]["_source"]
    assert src["properties"] == {"country": "DE", "price": 9.5}
    assert src["hour_of_day"] == 13 and src["day_of_week"] == 7
    assert src["timestamp"] == "2026-11-01T13:30:00.000Z" and "received_at" in src
    other = client.post(
        "/v1/collections/events/_search", json={"query": {"term": {"distinct_id": "7"}}}
    ).json()
    assert other["hits"]["total"]["value"] == 1


def test_search_errors_name_the_problem(client: TestClient) -> None:
    client.post("/v1/collections/s/documents", json=[{"a": 1}])
    cases = [
        ({"query": {"bogus": {}}}, "unknown query [bogus]"),
        ({"query": {"term": {"a": 1, "b": 2}}}, "multiple fields"),
        ({"sizee": 3}, "unknown key [sizee]"),
        ({"size": -1}, "size"),
        ({"from": 9999, "size": 10}, "Result window is too large"),
        ({"sort": [{"nope": "asc"}]}, "No mapping found for [nope]"),
        ({"query": {"range": {"a": {"gte": "abc"}}}}, "failed to parse [abc]"),
    ]
    for body, message in cases:
        r = client.post("/v1/collections/s/_search", json=body)
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["error"]["reason"], (body, r.json())


def test_hostile_collection_and_field_names(client: TestClient) -> None:
    r = client.put('/v1/collections/a";drop', json={})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_index_name_exception"
    body = client.post("/v1/collections/h/documents", json=[{'a"; DROP TABLE h; --': 1, "ok": 2}]).json()
    assert body["failed"] == 1 and "invalid field name" in body["items"][0]["error"]["reason"]
    r = client.post("/v1/collections/h/_search", json={"query": {"term": {'a"; DROP TABLE h; --': 1}}})
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 0


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/health",
        "/v1/events",
        "/v1/collections/{name}/documents",
        "/v1/collections/{name}/_search",
    ):
        assert path in paths
    assert "example" in str(paths["/v1/collections/{name}/_search"])
    assert client.get("/docs").status_code == 200

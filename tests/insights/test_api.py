"""The insight endpoints over HTTP: trends, stickiness, lifecycle, time series, distribution."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from aggregata.storage.duckdb import DuckDBEngine

Api = tuple[TestClient, DuckDBEngine]


def _events(n: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 10, 20, tzinfo=UTC)
    return [
        {
            "event": rng.choice(["view", "view", "click"]),
            "distinct_id": f"u{rng.randrange(40)}",
            "timestamp": (start + timedelta(minutes=rng.randrange(10 * 24 * 60))).isoformat(),
            "properties": {"country": rng.choice(["DE", "FR", "US", None]), "amount": rng.randrange(100)},
        }
        for _ in range(n)
    ]


def _create_events(client: TestClient) -> None:
    body = {"kind": "events", "settings": {"rollups": {"breakdowns": ["country"]}}}
    assert client.put("/v1/collections/events", json=body).status_code == 201


def test_trends_over_http_from_rollups(api: Api) -> None:
    client, _ = api
    _create_events(client)
    events = _events(500)
    assert client.post("/v1/events", json=events).json()["stored"] == 500
    body = {
        "series": [{"event": "view", "math": "total"}, {"event": "view", "math": "unique_actors"}],
        "date_from": "2026-10-20",
        "date_to": "2026-10-29",
        "breakdown": "country",
    }
    response = client.post("/v1/insights/trends", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["source"] == "rollup:day"
    assert isinstance(out["took"], int)
    views = [e for e in events if e["event"] == "view"]
    counts = Counter(e["properties"]["country"] for e in views)
    actors: dict[Any, set[str]] = {}
    for e in views:
        actors.setdefault(e["properties"]["country"], set()).add(e["distinct_id"])
    totals = {(s["name"], s["breakdown_value"]): s["total"] for s in out["series"]}
    assert {k[1]: v for k, v in totals.items() if k[0] == "A"} == dict(counts)
    assert {k[1]: v for k, v in totals.items() if k[0] == "B"} == {c: len(a) for c, a in actors.items()}
    day = [e for e in views if e["timestamp"].startswith("2026-10-21") and e["properties"]["country"] == "DE"]
    series = next(s for s in out["series"] if s["name"] == "A" and s["breakdown_value"] == "DE")
    assert series["labels"][1] == "2026-10-21T00:00:00+00:00"
    assert series["data"][1] == len(day)


def test_an_event_is_in_trends_when_its_post_returns(api: Api) -> None:
    client, _ = api
    _create_events(client)
    body = {"series": [{"event": "signup"}], "date_from": "2026-10-31", "date_to": "2026-11-01"}
    for i in range(3):
        event = {"event": "signup", "distinct_id": f"x{i}", "timestamp": "2026-11-01T09:30:00Z"}
        assert client.post("/v1/events", json=event).status_code == 200
        out = client.post("/v1/insights/trends", json=body).json()
        assert (out["source"], out["series"][0]["data"]) == ("rollup:day", [0, i + 1])
        raw = client.post("/v1/insights/trends", json={**body, "actor": "distinct_id"}).json()
        assert (raw["source"], raw["series"][0]["data"]) == ("raw", [0, i + 1])


def test_errors_are_400_with_reasons(api: Api) -> None:
    client, _ = api
    _create_events(client)
    cases = [
        ({"series": [{"math": "nope"}]}, "unknown math [nope]"),
        ({"series": [{}], "date_from": "2026-10-05", "date_to": "2026-10-01"}, "before"),
        ({"series": [{}], "breakdown_limit": 0}, "breakdown_limit"),
    ]
    for body, reason in cases:
        response = client.post("/v1/insights/trends", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert reason in error["reason"]
    assert client.post("/v1/insights/trends", content=b"{nope").status_code == 400
    missing = client.post("/v1/insights/trends", json={"collection": "nothing", "series": [{}]})
    assert missing.status_code == 404


def test_stickiness_and_lifecycle_over_http(api: Api) -> None:
    client, _ = api
    _create_events(client)
    events = _events(300, seed=9)
    client.post("/v1/events", json=events)
    body = {"series": [{"event": "click"}], "date_from": "2026-10-20", "date_to": "2026-10-29"}
    sticky = client.post("/v1/insights/stickiness", json=body).json()["series"][0]
    days: dict[str, set[str]] = {}
    for e in events:
        if e["event"] == "click" and e["timestamp"] < "2026-10-30":
            days.setdefault(e["distinct_id"], set()).add(e["timestamp"][:10])
    histogram = Counter(len(d) for d in days.values())
    assert sticky["data"] == [histogram.get(i, 0) for i in range(1, 11)]
    life = client.post("/v1/insights/lifecycle", json=body).json()["series"]
    assert [s["status"] for s in life] == ["new", "returning", "resurrecting", "dormant"]
    active = sum(life[0]["data"]) + sum(life[1]["data"]) + sum(life[2]["data"])
    per_day = {
        (e["distinct_id"], e["timestamp"][:10])
        for e in events
        if e["event"] == "click" and e["timestamp"] < "2026-10-30"
    }
    assert active == len(per_day)


def _orders(n: int) -> list[dict[str, Any]]:
    rng = random.Random(3)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return [
        {
            "_id": f"o{i}",
            "created": (start + timedelta(minutes=rng.randrange(5 * 24 * 60))).isoformat(),
            "total": rng.randrange(1, 500) / 4,
            "status": rng.choice(["paid", "paid", "refunded", "open"]),
            **({"tags": rng.sample(["a", "b", "c"], rng.randrange(1, 3))} if i % 3 else {}),
        }
        for i in range(n)
    ]


def test_time_series_of_any_collection(api: Api) -> None:
    client, _ = api
    orders = _orders(400)
    assert client.post("/v1/collections/orders/documents", json=orders).json()["stored"] == 400
    params = {"field": "created", "interval": "day", "date_from": "2026-10-01", "date_to": "2026-10-05"}
    out = client.get("/v1/collections/orders/time-series", params=params).json()
    by_day = Counter(o["created"][:10] for o in orders)
    assert out["labels"][0] == "2026-10-01T00:00:00+00:00"
    assert out["data"] == [by_day[f"2026-10-0{d}"] for d in range(1, 6)]
    assert out["total"] == 400

    paid = [o for o in orders if o["status"] == "paid"]
    q = {**params, "math": "p95", "value_field": "total", "filter.status": "paid"}
    out = client.get("/v1/collections/orders/time-series", params=q).json()
    first_day = sorted(o["total"] for o in paid if o["created"].startswith("2026-10-01"))
    assert abs(out["data"][0] - statistics.quantiles(first_day, n=20, method="inclusive")[-1]) < 1e-9
    q = {**params, "math": "sum", "value_field": "total", "interval": "hour", "timezone": "Asia/Kolkata"}
    out = client.get("/v1/collections/orders/time-series", params=q).json()
    assert out["labels"][0] == "2026-10-01T00:00:00+05:30"
    in_kolkata = [o for o in orders if "2026-09-30T18:30" <= o["created"] < "2026-10-05T18:30"]
    assert abs(out["total"] - sum(o["total"] for o in in_kolkata)) < 1e-6

    bad = client.get("/v1/collections/orders/time-series", params={"math": "nope", "value_field": "total"})
    assert bad.status_code == 400
    assert client.get("/v1/collections/orders/time-series", params={"field": "status"}).status_code == 400


def test_distribution(api: Api) -> None:
    client, _ = api
    orders = _orders(300)
    client.post("/v1/collections/orders/documents", json=orders)
    out = client.get("/v1/collections/orders/distribution/status", params={"size": 2}).json()
    counts = Counter(o["status"] for o in orders)
    top = counts.most_common(2)
    assert [(v["value"], v["count"]) for v in out["values"]] == top
    assert out["values"][0]["percent"] == round(100 * top[0][1] / 300, 4)
    assert (out["total"], out["missing"], out["other"]) == (300, 0, 300 - sum(c for _, c in top))

    tags = client.get("/v1/collections/orders/distribution/tags").json()
    tag_counts = Counter(t for o in orders for t in o.get("tags", []))
    assert {v["value"]: v["count"] for v in tags["values"]} == dict(tag_counts)
    assert tags["missing"] == sum(1 for o in orders if "tags" not in o)
    filtered = client.get(
        "/v1/collections/orders/distribution/status", params={"filter.status": "open"}
    ).json()
    assert filtered["values"] == [{"value": "open", "count": counts["open"], "percent": 100.0}]
    unknown = client.get("/v1/collections/orders/distribution/nope").json()
    assert (unknown["values"], unknown["missing"]) == ([], 300)

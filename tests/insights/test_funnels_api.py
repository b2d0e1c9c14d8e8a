"""``POST /v1/insights/funnels`` over HTTP: answers, bad input as 400s, and linear SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlglot import exp

from aggregata.ingest.events import EVENT_MAPPING, EVENT_SETTINGS
from aggregata.insights.funnels import FunnelService
from aggregata.sql.lists import ListSelect, ListZipMap
from aggregata.storage.engine import EVENTS, Engine

STEPS = [{"event": "pageview", "name": "Visited"}, {"event": "signup"}, {"event": "purchase"}]
BODY: dict[str, Any] = {
    "steps": STEPS,
    "window": {"value": 7, "unit": "day"},
    "date_from": "2026-10-01",
    "date_to": "2026-10-31",
}


def _events() -> list[dict[str, Any]]:
    day = "2026-10-{:02d}T{}Z"
    rows = [
        ("u1", "pageview", day.format(3, "10:00:00"), {"browser": "Chrome"}),
        ("u1", "signup", day.format(3, "10:05:00"), {}),
        ("u1", "purchase", day.format(4, "10:05:00"), {}),
        ("u2", "pageview", day.format(5, "09:00:00"), {"browser": "Safari"}),
        ("u2", "signup", day.format(20, "09:00:00"), {}),  # after the 7-day window
        ("u3", "pageview", day.format(6, "08:00:00"), {"browser": "Safari"}),
        ("u3", "signup", day.format(6, "08:00:30"), {}),
    ]
    return [{"distinct_id": a, "event": e, "timestamp": t, "properties": p} for a, e, t, p in rows]


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    stored = client.post("/v1/events", json=_events()).json()
    assert stored["stored"] == 7, stored
    return client


def test_funnel_over_http(loaded: TestClient) -> None:
    r = loaded.post("/v1/insights/funnels", json=BODY)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(s["index"], s["name"], s["event"], s["count"]) for s in out["steps"]] == [
        (0, "Visited", "pageview", 3),
        (1, "signup", "signup", 2),
        (2, "purchase", "purchase", 1),
    ]
    first, second, third = out["steps"]
    assert first["conversion_from_previous"] == 1.0 and first["avg_time_from_previous_s"] is None
    assert second["conversion_from_previous"] == pytest.approx(2 / 3) and second["drop_off"] == 1
    assert second["avg_time_from_previous_s"] == 165.0 and second["median_time_from_previous_s"] == 165.0
    assert (
        third["conversion_from_first"] == pytest.approx(1 / 3)
        and third["avg_time_from_previous_s"] == 86400.0
    )
    assert isinstance(out["took"], int) and "breakdowns" not in out


def test_breakdown_and_views_over_http(loaded: TestClient) -> None:
    out = loaded.post("/v1/insights/funnels", json={**BODY, "breakdown": "browser"}).json()
    assert [(b["breakdown_value"], [s["count"] for s in b["steps"]]) for b in out["breakdowns"]] == [
        ("Safari", [2, 1, 0]),
        ("Chrome", [1, 1, 1]),
    ]
    ttc = loaded.post(
        "/v1/insights/funnels", json={**BODY, "funnel_viz": "time_to_convert", "to_step": 1, "bins": 2}
    ).json()
    assert ttc["actors"] == 2 and [b["count"] for b in ttc["bins"]] == [1, 1]
    trends = loaded.post("/v1/insights/funnels", json={**BODY, "funnel_viz": "trends", "to_step": 1}).json()
    assert len(trends["trends"]) == 31
    assert [(p["date"][:10], p["entered"], p["converted"]) for p in trends["trends"] if p["entered"]] == [
        ("2026-10-03", 1, 1),
        ("2026-10-05", 1, 0),
        ("2026-10-06", 1, 1),
    ]


def test_unknown_event_is_an_empty_funnel(loaded: TestClient) -> None:
    body = {**BODY, "steps": [{"event": "pageview"}, {"event": "no-such-event"}]}
    out = loaded.post("/v1/insights/funnels", json=body).json()
    assert [s["count"] for s in out["steps"]] == [3, 0]
    none = loaded.post(
        "/v1/insights/funnels", json={**body, "steps": [{"event": "x"}, {"event": "y"}]}
    ).json()
    assert [(s["count"], s["conversion_from_first"]) for s in none["steps"]] == [(0, 0.0), (0, 0.0)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"window": {"value": 0, "unit": "day"}}, "must be positive"),
        ({"window": {"value": -3, "unit": "hour"}}, "must be positive"),
        ({"window": {"value": 2, "unit": "year"}}, "window.unit"),
        ({"window": {"value": 400, "unit": "day"}}, "at most 366 days"),
        ({"steps": [{"event": "pageview"}] * 21}, "at most 20"),
        ({"steps": [{"event": "pageview"}]}, "at least 2"),
        ({"date_from": "2026-10-10", "date_to": "2026-10-01"}, "before [date_from]"),
        ({"exclusions": [{"event": "logout", "from_step": 1, "to_step": 1}]}, "from_step < to_step"),
        ({"exclusions": [{"event": "logout", "from_step": 0, "to_step": 3}]}, "from_step < to_step"),
        ({"order": "unordered", "exclusions": [{"event": "logout"}]}, "exclusions need an order"),
        ({"order": "unordered", "steps": [{"event": "a"}, {"event": "a"}]}, "cannot repeat a step"),
        ({"order": "sideways"}, "order"),
        ({"funnel_viz": "trends", "breakdown": "browser"}, "breakdown is supported"),
        ({"funnel_viz": "time_to_convert", "from_step": 2, "to_step": 1}, "from_step < to_step"),
        ({"bins": 0}, "bins"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        (
            {
                "steps": [
                    {"event": "a", "filters": [{"property": "p", "operator": "between", "value": 1}]},
                    {},
                ]
            },
            "between",
        ),
        ({"windw": {"value": 1}}, "windw"),
    ],
)
def test_bad_requests_are_400(loaded: TestClient, change: dict[str, Any], reason: str) -> None:
    r = loaded.post("/v1/insights/funnels", json={**BODY, **change})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == 400 and reason in body["error"]["reason"], body


def test_unknown_collection_is_404_and_not_json_is_400(client: TestClient) -> None:
    r = client.post("/v1/insights/funnels", json={**BODY, "collection": "nope"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "index_not_found_exception"
    assert client.post("/v1/insights/funnels", json=[1, 2]).status_code == 400


# A short range packs each event into one integer at any number of steps (sql/elements.py);
# a breakdown sorts tuples instead. Each shape must grow linearly on its own.
SHAPES = {
    "packed": {"date_from": "2026-10-30", "date_to": "2026-10-31", "window": {"value": 1, "unit": "hour"}},
    "tuples": {"breakdown": "browser"},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_work_grows_linearly_with_steps(backend: Engine, order: str, shape: str) -> None:
    """A constant number of list operations (gathers, maps) per step: no self-join or expression per pair of
    steps (PostHog's SQL funnels grew exponentially). Layers re-list the columns they pass
    on, so only references to columns may grow faster; they cost nothing to execute."""
    backend.create_collection("events", EVENT_MAPPING, kind=EVENTS, settings=dict(EVENT_SETTINGS))
    service = FunnelService(backend, clock=lambda: datetime(2026, 11, 1, tzinfo=UTC))

    def operations(n: int) -> tuple[int, int]:
        body = {**BODY, **SHAPES[shape], "steps": [{"event": f"e{k}"} for k in range(n)], "order": order}
        tree = service.compile(body).tree
        gathers = sum(1 for _ in tree.find_all(ListSelect, ListZipMap))
        work = sum(1 for node in tree.walk() if not isinstance(node, (exp.Column, exp.Identifier)))
        return gathers, work

    (m4, w4), (m12, w12), (m20, w20) = operations(4), operations(12), operations(20)
    assert m20 - m12 == m12 - m4 == {"ordered": 24, "strict": 32, "unordered": 16}[order]
    assert w20 - w12 == pytest.approx(w12 - w4, rel=0.05)
    body = {**BODY, **SHAPES[shape], "steps": [{"event": f"e{k}"} for k in range(20)], "order": order}
    out = service.funnel(body)
    assert len(out["steps"]) == 20 and out["steps"][0]["count"] == 0

"""Retention on DuckDB and ClickHouse against a brute-force oracle, hand-built cases and HTTP.

The oracle walks each actor's events in plain Python: local calendar periods from
``zoneinfo``, first-ever or every start period as cohorts, return periods after them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from aggregata.demo.generate import generate_events
from aggregata.ingest.service import IngestService
from aggregata.insights.retention import RetentionService
from tests.backends import BACKENDS, open_engine
from tests.insights.funnel_oracle import matcher

END = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)  # Berlin's DST ends on Oct 25, New York's on Nov 1
NOW = datetime(2026, 11, 1, 20, 0, tzinfo=UTC)


def _period_start(when: datetime, period: str, tz: ZoneInfo) -> date:
    day = when.astimezone(tz).date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next(start: date, period: str) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def oracle(raw: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    """Cohorts and the overall curve, straight from the definition."""
    tz, period, n = ZoneInfo(body.get("timezone", "UTC")), body.get("period", "day"), body["periods"]
    first_day = date.fromisoformat(body["date_from"])
    end = datetime.combine(date.fromisoformat(body["date_to"]) + timedelta(days=1), datetime.min.time(), tz)
    cohorts = [_period_start(datetime.combine(first_day, datetime.min.time(), tz), period, tz)]
    while datetime.combine(_next(cohorts[-1], period), datetime.min.time(), tz) < end:
        cohorts.append(_next(cohorts[-1], period))
    index = {c: i for i, c in enumerate(cohorts)}
    start_m, return_m = matcher(body["start_event"]), matcher(body["return_event"])
    keep = matcher({"filters": body.get("filters", [])})
    members: dict[date, set[str]] = defaultdict(set)
    returns: dict[str, set[date]] = defaultdict(set)
    firsts: dict[str, date] = {}
    for e in raw:
        when = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        ev = {"event": e["event"], "properties": e.get("properties") or {}}
        if when >= end or not keep(ev):
            continue
        p, actor = _period_start(when, period, tz), e["distinct_id"]
        if start_m(ev):
            firsts[actor] = min(firsts.get(actor, p), p)
            if body.get("retention_type") == "recurring" and p in index:
                members[p].add(actor)
        if return_m(ev) and p >= cohorts[0]:
            returns[actor].add(p)
    if body.get("retention_type") != "recurring":
        for actor, p in firsts.items():
            if p in index:
                members[p].add(actor)
    rows, sums, sizes = [], [0] * n, [0] * n
    for i, c in enumerate(cohorts):
        later = [c]
        while len(later) < min(n, len(cohorts) - i):
            later.append(_next(later[-1], period))
        retained = [len(members[c])] + [sum(1 for a in members[c] if p in returns[a]) for p in later[1:]]
        for k, count in enumerate(retained):
            sums[k], sizes[k] = sums[k] + count, sizes[k] + retained[0]
        rows.append({"cohort": c.isoformat(), "size": retained[0], "retained": retained})
    overall = [100.0 * s / z if z else 0.0 for s, z in zip(sums, sizes, strict=True)][: min(n, len(cohorts))]
    return {"cohorts": rows, "overall": overall}


def _check(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert [(c["cohort"], c["size"], c["retained"]) for c in got["cohorts"]] == [
        (c["cohort"], c["size"], c["retained"]) for c in want["cohorts"]
    ]
    for c in got["cohorts"]:
        assert c["percentages"] == pytest.approx(
            [100.0 * r / c["size"] if c["size"] else 0.0 for r in c["retained"]], abs=0.006
        )
    assert got["overall"] == pytest.approx(want["overall"], abs=0.006)


@pytest.fixture(scope="module")
def raw_events() -> list[dict[str, Any]]:
    return list(generate_events(5_000, seed=33, n_users=250, days=60, end=END))


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, raw_events: list[dict[str, Any]]
) -> Iterator[RetentionService]:
    backend: str = request.param
    chdb_dir = request.getfixturevalue("chdb_dir") if backend == "clickhouse" else None
    engine = open_engine(backend, tmp_path_factory.mktemp(backend), chdb_dir=chdb_dir)
    ingest = IngestService(engine)
    assert not ingest.ingest_events(raw_events, collection="events").errors
    ingest.ingest_events(DST_EVENTS, collection="dst")
    yield RetentionService(engine, clock=lambda: NOW)
    engine.close()


PV, SIGNUP, BUY = ({"event": e} for e in ("pageview", "signup", "purchase"))
CASES: dict[str, dict[str, Any]] = {
    "daily-first-time": {"start_event": PV, "return_event": PV, "periods": 8},
    "daily-recurring": {"start_event": PV, "return_event": PV, "periods": 8, "retention_type": "recurring"},
    "weekly-signup-purchase": {"start_event": SIGNUP, "return_event": BUY, "period": "week", "periods": 5},
    "weekly-berlin-recurring": {
        "start_event": {"event": "pageview", "filters": [{"property": "path", "value": "/pricing"}]},
        "return_event": PV,
        "period": "week",
        "periods": 4,
        "retention_type": "recurring",
        "timezone": "Europe/Berlin",
    },
    "monthly-new-york": {
        "start_event": PV,
        "return_event": {"event": None},
        "period": "month",
        "periods": 3,
        "timezone": "America/New_York",
        "filters": [{"property": "country", "operator": "neq", "value": "US"}],
    },
}
RANGES = {
    "day": ("2026-10-15", "2026-10-31"),
    "week": ("2026-09-14", "2026-11-01"),
    "month": ("2026-09-01", "2026-11-01"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_oracle(name: str, service: RetentionService, raw_events: list[dict[str, Any]]) -> None:
    body = dict(CASES[name])
    body["date_from"], body["date_to"] = RANGES[body.get("period", "day")]
    out = service.retention(body)
    want = oracle(raw_events, body)
    _check(out, want)
    assert sum(c["size"] for c in want["cohorts"]) > 0 and isinstance(out["took"], int)


def test_breakdown_partitions_the_cohorts(
    service: RetentionService, raw_events: list[dict[str, Any]]
) -> None:
    body = {
        **CASES["daily-first-time"],
        "date_from": "2026-10-15",
        "date_to": "2026-10-31",
        "breakdown": "browser",
    }
    out = service.retention(body)
    _check(out, oracle(raw_events, body))
    browsers = {e["properties"].get("browser") for e in raw_events}
    assert {b["breakdown_value"] for b in out["breakdowns"]} <= browsers
    for i, cohort in enumerate(out["cohorts"]):  # every actor has one value: the parts add up
        parts = [b["cohorts"][i]["retained"] for b in out["breakdowns"]]
        assert [sum(col) for col in zip(*parts, strict=True)] == cohort["retained"]
    # each browser's table is the oracle's on that browser's actors (browser is per user here)
    one = out["breakdowns"][0]["breakdown_value"]
    mine = [e for e in raw_events if e["properties"].get("browser") == one]
    _check(out["breakdowns"][0], oracle(mine, body))


# Europe/Berlin: Oct 25 2026 has 25 hours. Events near local midnights on both sides.
DST_EVENTS = [
    {"event": "a", "distinct_id": "x", "timestamp": "2026-10-24T22:30:00Z"},  # Oct 25 00:30 CEST
    {"event": "a", "distinct_id": "x", "timestamp": "2026-10-25T22:30:00Z"},  # Oct 25 23:30 CET
    {"event": "a", "distinct_id": "x", "timestamp": "2026-10-25T23:30:00Z"},  # Oct 26 00:30 CET
    {"event": "a", "distinct_id": "y", "timestamp": "2026-10-24T21:30:00Z"},  # Oct 24 23:30 CEST
    {"event": "a", "distinct_id": "y", "timestamp": "2026-10-24T22:10:00Z"},  # Oct 25 00:10 CEST
]


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        # x: Oct 25 (twice), Oct 26; y: Oct 24, Oct 25.
        ("Europe/Berlin", [("2026-10-24", [1, 1, 0]), ("2026-10-25", [1, 1]), ("2026-10-26", [0])]),
        # UTC: x: Oct 24, Oct 25 (twice); y: Oct 24 (twice).
        ("UTC", [("2026-10-24", [2, 1, 0]), ("2026-10-25", [0, 0]), ("2026-10-26", [0])]),
    ],
)
def test_day_boundaries_follow_the_time_zone(
    tz: str, expected: list[tuple[str, list[int]]], service: RetentionService
) -> None:
    body = {
        "collection": "dst",
        "start_event": {"event": "a"},
        "return_event": {"event": "a"},
        "periods": 3,
        "timezone": tz,
        "date_from": "2026-10-24",
        "date_to": "2026-10-26",
    }
    out = service.retention(body)
    assert [(c["cohort"], c["retained"]) for c in out["cohorts"]] == expected
    _check(out, oracle(DST_EVENTS, body))


def test_over_http(client: TestClient) -> None:
    events = [
        {"event": "signup", "distinct_id": "u1", "timestamp": "2026-10-01T10:00:00Z"},
        {"event": "visit", "distinct_id": "u1", "timestamp": "2026-10-02T10:00:00Z"},
        {"event": "visit", "distinct_id": "u1", "timestamp": "2026-10-04T10:00:00Z"},
        {"event": "signup", "distinct_id": "u2", "timestamp": "2026-10-02T09:00:00Z"},
        {"event": "visit", "distinct_id": "u2", "timestamp": "2026-10-03T09:00:00Z"},
        {"event": "signup", "distinct_id": "u3", "timestamp": "2026-10-02T11:00:00Z"},
    ]
    assert client.post("/v1/events", json=events).json()["stored"] == 6
    body = {
        "start_event": {"event": "signup"},
        "return_event": {"event": "visit"},
        "periods": 4,
        "date_from": "2026-10-01",
        "date_to": "2026-10-04",
    }
    r = client.post("/v1/insights/retention", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(c["cohort"], c["size"], c["retained"]) for c in out["cohorts"]] == [
        ("2026-10-01", 1, [1, 1, 0, 1]),
        ("2026-10-02", 2, [2, 1, 0]),
        ("2026-10-03", 0, [0, 0]),
        ("2026-10-04", 0, [0]),
    ]
    assert out["cohorts"][1]["percentages"] == [100.0, 50.0, 0.0]
    assert out["overall"] == [100.0, pytest.approx(66.67), 0.0, 100.0]
    unknown = client.post("/v1/insights/retention", json={**body, "start_event": {"event": "nope"}}).json()
    assert [c["size"] for c in unknown["cohorts"]] == [0, 0, 0, 0] and unknown["overall"][0] == 0.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"periods": 0}, "periods"),
        ({"periods": 101}, "periods"),
        ({"period": "hour"}, "period"),
        ({"retention_type": "sometimes"}, "retention_type"),
        ({"date_from": "2026-10-05", "date_to": "2026-10-01"}, "before [date_from]"),
        ({"start_event": {"event": "a", "extra": 1}}, "start_event.extra"),
        ({"timezone": "Nowhere/Else"}, "unknown time zone"),
    ],
)
def test_bad_requests_are_400(client: TestClient, change: dict[str, Any], reason: str) -> None:
    client.post("/v1/events", json=[{"event": "a", "distinct_id": "u", "timestamp": "2026-10-01T00:00:00Z"}])
    body = {
        "start_event": {"event": "a"},
        "return_event": {"event": "a"},
        "date_from": "2026-10-01",
        **change,
    }
    r = client.post("/v1/insights/retention", json=body)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]["reason"]

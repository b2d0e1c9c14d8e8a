"""Funnels on generated events, on DuckDB and ClickHouse, against the brute-force oracle.

The demo generator's sessions run pageview → signup → add_to_cart → purchase with drop-off,
logouts and searches in between, so ordered, strict and unordered funnels, exclusions and
breakdowns all have non-trivial answers. Every count must match the oracle exactly; times
(means and medians of microsecond gaps) to float precision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aggregata.demo.generate import generate_events
from aggregata.ingest.service import IngestService
from aggregata.insights.funnels import FunnelService
from aggregata.insights.funnels.models import UNIT_SECONDS
from tests.backends import BACKENDS, open_engine
from tests.insights import funnel_oracle as oracle

END = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)  # past Berlin's DST end (Oct 25)
NOW = datetime(2026, 11, 2, tzinfo=UTC)
RANGE = {"date_from": "2026-10-06", "date_to": "2026-10-27"}


@pytest.fixture(scope="module")
def raw_events() -> list[dict[str, Any]]:
    return list(generate_events(5_000, seed=21, n_users=220, days=30, end=END))


@pytest.fixture(scope="module")
def events(raw_events: list[dict[str, Any]]) -> list[oracle.Event]:
    return oracle.oracle_events(raw_events)


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, raw_events: list[dict[str, Any]]
) -> Iterator[FunnelService]:
    backend: str = request.param
    chdb_dir = request.getfixturevalue("chdb_dir") if backend == "clickhouse" else None
    engine = open_engine(backend, tmp_path_factory.mktemp(backend), chdb_dir=chdb_dir)
    ingest = IngestService(engine)
    for i in range(0, len(raw_events), 2_500):
        assert not ingest.ingest_events(raw_events[i : i + 2_500], collection="events").errors
    yield FunnelService(engine, clock=lambda: NOW)
    engine.close()


def _funnel(body: dict[str, Any], events: list[oracle.Event]) -> tuple[oracle.Funnel, list[oracle.Event]]:
    """The oracle's view of a request: matchers, window, entry range, breakdown, buckets."""
    tz = ZoneInfo(body.get("timezone", "UTC"))
    start = datetime.fromisoformat(body["date_from"]).replace(tzinfo=tz)
    last_day = date.fromisoformat(body["date_to"]) + timedelta(days=1)  # date_to's whole day is in
    end = datetime.combine(last_day, time(), tz)
    window = body.get("window", {"value": 14, "unit": "day"})
    prop = body.get("breakdown")
    f = oracle.Funnel(
        steps=[oracle.matcher(s) for s in body["steps"]],
        window_us=window["value"] * UNIT_SECONDS[window["unit"]] * 1_000_000,
        start_us=oracle.epoch_us(start.isoformat()),
        end_us=oracle.epoch_us(end.isoformat()),
        order=body.get("order", "ordered"),
        exclusions=[(oracle.matcher(x), x["from_step"], x["to_step"]) for x in body.get("exclusions", [])],
        breakdown=(lambda e: e["properties"].get(prop)) if prop else None,
        bucket=lambda us: datetime.fromtimestamp(us / 1e6, tz).date(),
    )
    keep = oracle.matcher({"filters": body.get("filters", [])})
    return f, [e for e in events if keep(e)]


def _assert_steps(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [s["count"] for s in got] == [s["count"] for s in want]
    for g, w in zip(got, want, strict=True):
        for key in ("conversion_from_previous", "conversion_from_first", "drop_off"):
            assert g[key] == pytest.approx(w[key]), key
        for key in ("avg_time_from_previous_s", "median_time_from_previous_s"):
            assert (g[key] is None) == (w[key] is None), key
            if w[key] is not None:
                assert g[key] == pytest.approx(w[key], rel=1e-9), key


PV, SIGNUP, CART, BUY = ({"event": e} for e in ("pageview", "signup", "add_to_cart", "purchase"))
SIGNUP_PAGE = {"event": "pageview", "filters": [{"property": "path", "operator": "eq", "value": "/signup"}]}
DAY = {"value": 1, "unit": "day"}

CASES: dict[str, dict[str, Any]] = {
    "ordered": {"steps": [PV, SIGNUP, CART, BUY], "window": DAY},
    "ordered-filters": {"steps": [SIGNUP_PAGE, SIGNUP, BUY], "window": {"value": 3, "unit": "hour"}},
    "repeated-steps": {"steps": [PV, PV, PV, SIGNUP], "window": {"value": 30, "unit": "minute"}},
    "long": {
        "steps": [PV, SIGNUP, PV, CART, PV, BUY, PV, CART, PV, BUY],
        "window": {"value": 2, "unit": "week"},
    },
    "repeated-later": {"steps": [PV, SIGNUP, PV, PV, CART], "window": DAY},
    "repeated-three": {"steps": [PV, CART, PV, PV, PV, BUY], "window": {"value": 3, "unit": "day"}},
    "strict": {"steps": [SIGNUP_PAGE, SIGNUP, PV], "order": "strict", "window": DAY},
    "strict-long": {"steps": [PV, PV, CART, PV, BUY], "order": "strict", "window": DAY},
    "unordered": {"steps": [BUY, CART, SIGNUP], "order": "unordered", "window": {"value": 2, "unit": "day"}},
    "exclusions": {
        "steps": [PV, SIGNUP, CART, BUY],
        "window": {"value": 3, "unit": "day"},
        "exclusions": [
            {"event": "logout", "from_step": 1, "to_step": 3},
            {"event": "search", "from_step": 0, "to_step": 1},
        ],
    },
    "strict-exclusion": {
        "steps": [PV, CART, PV, BUY],
        "order": "strict",
        "exclusions": [{"event": "logout", "from_step": 0, "to_step": 3}],
    },
    "global-filter": {
        "steps": [PV, SIGNUP, BUY],
        "filters": [{"property": "browser", "operator": "neq", "value": "Chrome"}],
        "window": {"value": 6, "unit": "hour"},
    },
    "berlin": {"steps": [PV, CART, BUY], "timezone": "Europe/Berlin", "window": DAY},
}


@pytest.mark.parametrize("name", list(CASES))
def test_steps_match_the_oracle(name: str, service: FunnelService, events: list[oracle.Event]) -> None:
    body = {**RANGE, **CASES[name]}
    f, evs = _funnel(body, events)
    results = list(oracle.actor_results(evs, f).values())
    out = service.funnel(body)
    _assert_steps(out["steps"], oracle.summary(results, len(body["steps"])))
    assert out["steps"][0]["count"] > 0 and isinstance(out["took"], int)


@pytest.mark.parametrize("name", ["ordered", "unordered", "exclusions", "strict", "repeated-steps"])
def test_breakdown_matches_the_oracle(name: str, service: FunnelService, events: list[oracle.Event]) -> None:
    body = {**RANGE, **CASES[name], "breakdown": "browser", "breakdown_limit": 500}
    f, evs = _funnel(body, events)
    results = oracle.actor_results(evs, f)
    groups: dict[Any, list[oracle.ActorResult]] = defaultdict(list)
    for r in results.values():
        groups[r.value].append(r)
    out = service.funnel(body)
    _assert_steps(out["steps"], oracle.summary(list(results.values()), len(body["steps"])))
    got = {b["breakdown_value"]: b["steps"] for b in out["breakdowns"]}
    assert set(got) == set(groups)
    for value, steps in got.items():
        _assert_steps(steps, oracle.summary(groups[value], len(body["steps"])))
    counts = [b["steps"][0]["count"] for b in out["breakdowns"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == out["steps"][0]["count"]
    assert out["breakdowns_truncated"] is False


def test_breakdown_limit_keeps_the_largest(service: FunnelService) -> None:
    body = {**RANGE, **CASES["ordered"], "breakdown": "path", "breakdown_limit": 2}
    out = service.funnel(body)
    full = service.funnel({**body, "breakdown_limit": 1000})
    assert out["breakdowns"] == full["breakdowns"][:2] and out["breakdowns_truncated"] is True


@pytest.mark.parametrize(
    ("name", "span"), [("ordered", (0, 3)), ("exclusions", (1, 2)), ("unordered", (0, 1))]
)
def test_time_to_convert_matches_the_oracle(
    name: str, span: tuple[int, int], service: FunnelService, events: list[oracle.Event]
) -> None:
    bins = 7
    body = {**RANGE, **CASES[name], "funnel_viz": "time_to_convert", "from_step": span[0], "to_step": span[1]}
    body["bins"] = bins
    f, evs = _funnel(body, events)
    times = oracle.conversion_times(list(oracle.actor_results(evs, f).values()), *span)
    out = service.funnel(body)
    assert out["actors"] == len(times) > 0
    assert out["average_time_s"] == pytest.approx(sum(times) / len(times), rel=1e-9)
    lo_us, hi_us = round(min(times) * 1e6), round(max(times) * 1e6)
    span_us = max(hi_us - lo_us, 1)
    want = [0] * bins
    for t in times:
        want[min((round(t * 1e6) - lo_us) * bins // span_us, bins - 1)] += 1
    assert [b["count"] for b in out["bins"]] == want
    assert out["bins"][0]["from_s"] == pytest.approx(min(times)) and out["bins"][-1]["to_s"] == pytest.approx(
        max(times)
    )


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
def test_trends_match_the_oracle(tz: str, service: FunnelService, events: list[oracle.Event]) -> None:
    body = {
        "steps": [PV, CART, BUY],
        "window": DAY,
        "funnel_viz": "trends",
        "interval": "day",
        "timezone": tz,
        "date_from": "2026-10-20",
        "date_to": "2026-10-31",
        "exclusions": [{"event": "logout", "from_step": 1, "to_step": 2}],
    }
    f, evs = _funnel(body, events)
    results = oracle.actor_results(evs, f).values()
    entered: dict[Any, int] = defaultdict(int)
    converted: dict[Any, int] = defaultdict(int)
    for r in results:
        for day, level in r.buckets.items():
            entered[day] += level > 0
            converted[day] += level > 2
    out = service.funnel(body)
    days = [datetime.fromisoformat(p["date"]).date() for p in out["trends"]]
    assert days[0].isoformat() == "2026-10-20" and days[-1].isoformat() == "2026-10-31" and len(days) == 12
    assert [p["entered"] for p in out["trends"]] == [entered[d] for d in days]
    assert [p["converted"] for p in out["trends"]] == [converted[d] for d in days]
    assert sum(entered.values()) > 0 and sum(converted.values()) > 0

"""Funnels on hand-built cases where the definition is easy to get wrong, on both engines.

Each case states its expected answer (worked out by hand from docs/insights.md) and is also
checked against the brute-force oracle, so the oracle itself is tested on the same cases:
equal timestamps, repeated steps, the window's end, strict-order interruptions, exclusions,
actors entering twice, the entry date range, unordered steps, breakdown ties, a day that
is 25 hours long (DST) and the time-to-convert bins.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregata.ingest.service import IngestService
from aggregata.insights.funnels import FunnelService
from tests.backends import BACKENDS, open_engine
from tests.insights import funnel_oracle as oracle

T0 = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, tzinfo=UTC)
RANGE = {"date_from": "2026-10-01", "date_to": "2026-10-31"}
HOUR = {"value": 1, "unit": "hour"}
A, B, C, X = ({"event": e} for e in ("a", "b", "c", "x"))


def ev(actor: str, event: str, minutes: float, *, at: datetime = T0, **props: Any) -> dict[str, Any]:
    when = at + timedelta(minutes=minutes)
    return {
        "event": event,
        "distinct_id": actor,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "properties": props,
    }


# name → (events, request, expected step counts, expected mean seconds from previous step)
CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any], list[int], list[float | None]]] = {
    "equal-timestamps": (
        [ev("p", "a", 0), ev("p", "b", 0), ev("q", "a", 0), ev("q", "b", 0), ev("q", "b", 1)],
        {"steps": [A, B]},  # a later step must be strictly later: q converts at +1 min only
        [2, 1],
        [None, 60.0],
    ),
    "repeated-steps": (
        [ev("x", "a", 0), ev("y", "a", 0), ev("y", "a", 0), ev("z", "a", 0), ev("z", "a", 1 / 60)],
        {"steps": [A, A]},  # one event cannot be both steps; equal times are not "later"
        [3, 1],
        [None, 1.0],
    ),
    "one-event-two-conditions": (
        [ev("x", "a", 0, path="/p"), ev("y", "a", 0, path="/p"), ev("y", "a", 2)],
        {"steps": [{"event": "a", "filters": [{"property": "path", "value": "/p"}]}, A]},
        [2, 1],
        [None, 120.0],
    ),
    "window-end-is-inclusive": (
        [ev("p", "a", 0), ev("p", "b", 60), ev("q", "a", 0), ev("q", "b", 60 + 1 / 60_000)],
        {"steps": [A, B], "window": HOUR},  # q's b is one millisecond too late
        [2, 1],
        [None, 3600.0],
    ),
    "strict-interruptions": (
        [
            *[ev("s1", e, m) for e, m in (("a", 0), ("x", 1), ("b", 2), ("c", 3))],
            *[ev("s2", e, m) for e, m in (("a", 0), ("b", 1), ("x", 2), ("c", 3))],
            *[ev("s3", e, m) for e, m in (("a", 0), ("b", 1), ("c", 3))],
            *[ev("s4", e, m) for e, m in (("a", 0), ("x", 0), ("b", 1))],  # x at a's time: not between
            *[ev("s5", e, m) for e, m in (("a", 0), ("x", 1), ("b", 1))],  # x at b's time: not between
        ],
        {"steps": [A, B, C], "order": "strict"},
        [5, 4, 1],
        [None, 60.0, 120.0],
    ),
    "ordered-ignores-interruptions": (
        [*[ev("s1", e, m) for e, m in (("a", 0), ("x", 1), ("b", 2), ("c", 3))]],
        {"steps": [A, B, C]},
        [1, 1, 1],
        [None, 120.0, 60.0],
    ),
    "exclusions": (
        [
            *[ev("e1", e, m) for e, m in (("a", 0), ("x", 1), ("b", 2))],  # disqualified: not counted
            *[ev("e2", e, m) for e, m in (("a", 0), ("b", 1), ("x", 2))],  # x after step 1: fine
            *[ev("e3", e, m) for e, m in (("a", 0), ("x", 1), ("a", 2), ("b", 3))],  # 2nd attempt ok
            *[ev("e4", e, m) for e, m in (("a", 0), ("x", 1))],  # no b, x in the window: disqualified
            *[ev("e5", e, m) for e, m in (("a", 0), ("x", 90))],  # x after the window: counts at a
            *[ev("e6", e, m) for e, m in (("x", 0), ("a", 0), ("b", 1))],  # x at a's time: not between
        ],
        {"steps": [A, B], "window": HOUR, "exclusions": [{"event": "x", "from_step": 0, "to_step": 1}]},
        [4, 3],
        [None, 60.0],
    ),
    "exclusion-between-later-steps": (
        [
            *[ev("f1", e, m) for e, m in (("a", 0), ("x", 1), ("b", 2), ("c", 3))],  # x before step 1
            *[ev("f2", e, m) for e, m in (("a", 0), ("b", 1), ("x", 2), ("c", 3))],  # x between 1 and 2
            *[ev("f3", e, m) for e, m in (("a", 0), ("b", 1), ("c", 3), ("x", 4))],  # x after step 2
        ],
        {"steps": [A, B, C], "window": HOUR, "exclusions": [{"event": "x", "from_step": 1, "to_step": 2}]},
        [2, 2, 2],
        [None, 90.0, 90.0],
    ),
    "latest-entry-is-chosen": (
        [
            *[ev("l1", e, m) for e, m in (("a", 0), ("a", 10), ("b", 15))],
            *[ev("l2", e, m) for e, m in (("a", 0), ("a", 24 * 60), ("b", 24 * 60 + 1))],
        ],
        {"steps": [A, B], "window": HOUR},
        [2, 2],
        [None, 180.0],  # (5 min + 1 min) / 2
    ),
    "entry-date-range": (
        [
            ev("r1", "a", -1, at=datetime(2026, 10, 10, tzinfo=UTC)),  # entry the day before
            ev("r1", "b", 10, at=datetime(2026, 10, 10, tzinfo=UTC)),
            ev("r2", "a", -10, at=datetime(2026, 10, 11, tzinfo=UTC)),  # entry at 23:50 of the last day
            ev("r2", "b", 20, at=datetime(2026, 10, 11, tzinfo=UTC)),  # step after date_to: counts
        ],
        {"steps": [A, B], "window": HOUR, "date_from": "2026-10-10", "date_to": "2026-10-10"},
        [1, 1],
        [None, 1800.0],
    ),
    "unordered": (
        [
            *[ev("u1", e, m) for e, m in (("c", 0), ("a", 10), ("b", 20))],
            *[ev("u2", e, m) for e, m in (("b", 0), ("b", 5))],
            *[ev("u3", e, m) for e, m in (("a", 0), ("c", 70))],  # c outside a's window, and a before c
        ],
        {"steps": [A, B, C], "order": "unordered", "window": HOUR},
        [3, 1, 1],
        [None, 600.0, 600.0],
    ),
    # Runs of entries shrink to their last (elements.py, compact.py): the entry before
    # a step-1 event at the same time as a later entry must survive.
    "runs-of-entries": (
        [
            *[ev("k1", e, m) for e, m in (("a", 0), ("a", 10), ("a", 20), ("b", 25), ("c", 30))],
            *[ev("k2", e, m) for e, m in (("a", 0), ("a", 5), ("a", 5), ("b", 5), ("c", 70))],
            *[ev("k3", "a", m) for m in range(6)],
        ],
        {"steps": [A, B, C], "window": HOUR},
        [3, 2, 1],
        [None, 300.0, 300.0],
    ),
    # Runs of a repeated step keep what an attempt can walk through: a → b → a → a → c.
    "runs-of-repeated-steps": (
        [
            *[
                ev("w1", e, m)
                for e, m in (("a", 0), ("b", 1), ("a", 2), ("a", 3), ("a", 4), ("a", 5), ("c", 6))
            ],
            *[ev("w2", e, m) for e, m in (("a", 0), ("b", 1), ("a", 2), ("a", 2), ("a", 3), ("c", 4))],
            *[ev("w3", e, m) for e, m in (("b", 0), ("a", 1), ("a", 1.5), ("a", 2), ("a", 2.5), ("a", 3))],
            *[ev("w3", e, m) for e, m in (("b", 4), ("a", 5))],
        ],
        {"steps": [A, B, A, A, C], "window": HOUR},
        [3, 3, 3, 2, 2],
        [None, 60.0, 60.0, 60.0, 120.0],
    ),
    "unknown-event": (
        [ev("p", "a", 0)],
        {"steps": [A, {"event": "never"}], "breakdown": "nothing"},
        [1, 0],
        [None, None],
    ),
}


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunnelService]:
    """One engine per backend with one collection per case (``c_<n>``)."""
    backend: str = request.param
    chdb_dir = request.getfixturevalue("chdb_dir") if backend == "clickhouse" else None
    engine = open_engine(backend, tmp_path_factory.mktemp(backend), chdb_dir=chdb_dir)
    ingest = IngestService(engine)
    for i, (events, _, _, _) in enumerate([*CASES.values(), (BREAKDOWN_TIE, {}, [], []), (DST, {}, [], [])]):
        assert not ingest.ingest_events(events, collection=f"c_{i}").errors
    yield FunnelService(engine, clock=lambda: NOW)
    engine.close()


def _oracle(events: list[dict[str, Any]], body: dict[str, Any]) -> list[oracle.ActorResult]:
    start = datetime.fromisoformat(body["date_from"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(body["date_to"]).replace(tzinfo=UTC) + timedelta(days=1)
    window = body.get("window", {"value": 14, "unit": "day"})
    seconds = {"hour": 3600, "day": 86400}[window["unit"]] * window["value"]
    f = oracle.Funnel(
        steps=[oracle.matcher(s) for s in body["steps"]],
        window_us=seconds * 1_000_000,
        start_us=oracle.epoch_us(start.isoformat()),
        end_us=oracle.epoch_us(end.isoformat()),
        order=body.get("order", "ordered"),
        exclusions=[(oracle.matcher(x), x["from_step"], x["to_step"]) for x in body.get("exclusions", [])],
    )
    return list(oracle.actor_results(oracle.oracle_events(events), f).values())


@pytest.mark.parametrize("name", list(CASES))
def test_case(name: str, service: FunnelService) -> None:
    events, request, counts, means = CASES[name]
    body = {**RANGE, **request, "collection": _collection(name)}
    out = service.funnel(body)
    assert [s["count"] for s in out["steps"]] == counts
    assert [s["avg_time_from_previous_s"] for s in out["steps"]] == pytest.approx(means)
    want = oracle.summary(_oracle(events, body), len(counts))
    assert [s["count"] for s in want] == counts
    assert [s["avg_time_from_previous_s"] for s in want] == pytest.approx(means)


BREAKDOWN_TIE = [
    ev("t1", "a", 0, browser="b"),
    ev("t1", "a", 0, browser="a"),
    ev("t1", "a", 0),
    ev("t1", "b", 1),
    ev("t2", "a", 0),
    ev("t3", "a", 0, browser="a"),
    ev("t3", "a", 30, browser="c"),  # the latest entry reaching the best level decides
    ev("t3", "b", 31),
]


def test_breakdown_value_comes_from_the_chosen_entry(service: FunnelService) -> None:
    body = {**RANGE, "steps": [A, B], "window": HOUR, "breakdown": "browser"}
    out = service.funnel({**body, "collection": f"c_{len(CASES)}"})
    got = {b["breakdown_value"]: [s["count"] for s in b["steps"]] for b in out["breakdowns"]}
    assert got == {"b": [1, 1], "c": [1, 1], None: [1, 0]}
    assert [b["breakdown_value"] for b in out["breakdowns"]] == ["b", "c", None]  # ties: by value, null last


# Berlin's clocks go back at 01:00 UTC on 2026-10-25: that local day has 25 hours.
DST = [
    ev("d1", "a", 0, at=datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),  # 00:30 CEST, Oct 25
    ev("d1", "b", 30, at=datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),
    ev("d2", "a", 0, at=datetime(2026, 10, 25, 22, 30, tzinfo=UTC)),  # 23:30 CET, Oct 25
    ev("d3", "a", 0, at=datetime(2026, 10, 25, 23, 30, tzinfo=UTC)),  # 00:30 CET, Oct 26
    ev("d3", "b", 5, at=datetime(2026, 10, 25, 23, 30, tzinfo=UTC)),
    ev("d4", "a", 0, at=datetime(2026, 10, 24, 21, 30, tzinfo=UTC)),  # 23:30 CEST, Oct 24
]


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/Berlin", {"2026-10-24": (1, 0), "2026-10-25": (2, 1), "2026-10-26": (1, 1)}),
        ("UTC", {"2026-10-24": (2, 1), "2026-10-25": (2, 1), "2026-10-26": (0, 0)}),
    ],
)
def test_trends_buckets_follow_the_local_day(
    tz: str, expected: dict[str, tuple[int, int]], service: FunnelService
) -> None:
    body = {
        "collection": f"c_{len(CASES) + 1}",
        "steps": [A, B],
        "window": HOUR,
        "funnel_viz": "trends",
        "timezone": tz,
        "date_from": "2026-10-24",
        "date_to": "2026-10-26",
    }
    out = service.funnel(body)
    got = {p["date"][:10]: (p["entered"], p["converted"]) for p in out["trends"]}
    assert got == expected
    rates = {p["date"][:10]: p["conversion_rate"] for p in out["trends"]}
    assert rates["2026-10-25"] == 50.0 and (tz == "UTC" or rates["2026-10-24"] == 0.0)


def _collection(case: str) -> str:
    return f"c_{list(CASES).index(case)}"


def test_time_to_convert_bins(service: FunnelService) -> None:
    body = {**RANGE, "steps": [A, B, C], "window": HOUR, "funnel_viz": "time_to_convert", "bins": 3}
    single = service.funnel({**body, "collection": _collection("ordered-ignores-interruptions")})
    assert single["actors"] == 1 and [b["count"] for b in single["bins"]] == [1, 0, 0]
    assert single["bins"][0]["from_s"] == 180.0 and single["average_time_s"] == 180.0
    # s1, s2 and s3 (ordered, so interruptions do not matter) go a → c in 180 s; s4, s5 never.
    same = service.funnel({**body, "collection": _collection("strict-interruptions")})
    assert same["actors"] == 3 and [b["count"] for b in same["bins"]] == [3, 0, 0]
    # 60 s and 300 s: three bins of 80 s, the last one closed.
    spread = service.funnel({**body, "steps": [A, B], "collection": _collection("latest-entry-is-chosen")})
    assert [b["count"] for b in spread["bins"]] == [1, 0, 1]
    assert [(b["from_s"], b["to_s"]) for b in spread["bins"]] == [
        (60.0, 140.0),
        (140.0, 220.0),
        (220.0, 300.0),
    ]
    empty = service.funnel({**body, "collection": _collection("unknown-event")})
    assert empty["actors"] == 0 and empty["bins"] == [] and empty["average_time_s"] is None

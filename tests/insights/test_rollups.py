"""Rollups: the planner's choice, rollup answers equal raw answers, and maintenance on writes.

Counts must match raw events exactly; unique actors within the sketch's error bound
(``hll.ERROR_BOUND`` relative, and at least 1 for tiny counts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlglot import exp

from aggregata.ingest.service import IngestService
from aggregata.insights import hll
from aggregata.insights.rollup_service import RollupService
from aggregata.insights.service import InsightsService
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.duckdb import DuckDBEngine
from tests.insights.conftest import load

UNIQUE = {"unique_actors", "dau", "wau", "mau"}


def close_enough(rollup: float, raw: float, math: str) -> bool:
    if math not in UNIQUE:
        return rollup == raw
    return abs(rollup - raw) <= max(1.0, hll.ERROR_BOUND * raw)


def both(insights: InsightsService, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    svc = insights.trends_service
    return svc.trends(body), svc.trends(body, force_raw=True)


def assert_same(rollup: dict[str, Any], raw: dict[str, Any], maths: list[str]) -> None:
    assert raw["source"] == "raw"
    assert len(rollup["series"]) == len(raw["series"])
    for r, x in zip(rollup["series"], raw["series"], strict=True):
        math = maths[0] if len(maths) == 1 else maths[0 if r["name"] == "A" else 1]
        assert (r["name"], r["breakdown_value"], r["labels"]) == (
            x["name"],
            x["breakdown_value"],
            x["labels"],
        )
        bad = [
            (i, a, b)
            for i, (a, b) in enumerate(zip(r["data"], x["data"], strict=True))
            if not close_enough(a, b, math)
        ]
        assert not bad, (math, bad[:5])
        assert close_enough(r["total"], x["total"], math)


# -- the planner's choice ---------------------------------------------------------------------

SOURCES = [
    ({"interval": "day", "date_from": "-14d"}, "rollup:day"),
    ({"interval": "month", "date_from": "-60d"}, "rollup:day"),
    ({"interval": "hour", "date_from": "-2d"}, "rollup:hour"),
    ({"interval": "day", "date_from": "-14d", "timezone": "Europe/Berlin"}, "rollup:hour"),
    ({"interval": "week", "date_from": "-30d", "timezone": "America/New_York"}, "rollup:hour"),
    ({"interval": "day", "date_from": "-14d", "timezone": "Asia/Kolkata"}, "raw"),  # +05:30
    ({"interval": "minute", "date_from": "-1h"}, "raw"),
    ({"interval": "day", "date_from": "2026-10-01T10:30:00"}, "raw"),  # not on an hour
    ({"interval": "day", "date_from": "2026-10-01T10:00:00"}, "rollup:hour"),
    ({"breakdown": "country"}, "rollup:day"),
    ({"breakdown": ["browser", "country"]}, "rollup:day"),
    ({"breakdown": "device"}, "raw"),  # not a rollup breakdown
    ({"filters": [{"property": "country", "operator": "in", "value": ["DE", "FR"]}]}, "rollup:day"),
    (
        {
            "filters": [
                {
                    "or": [
                        {"property": "browser", "value": "Chrome"},
                        {"property": "country", "operator": "is_not_set"},
                    ]
                }
            ]
        },
        "rollup:day",
    ),
    ({"filters": [{"property": "country", "operator": "icontains", "value": "d"}]}, "raw"),
    ({"filters": [{"property": "device", "value": "mobile"}]}, "raw"),
    ({"actor": "session_id"}, "raw"),
    ({"series": [{"math": "sum", "math_property": "price"}]}, "raw"),
    ({"series": [{"math": "unique_actors"}], "display": "cumulative"}, "raw"),
    ({"series": [{"math": "total"}], "display": "cumulative"}, "rollup:day"),
    ({"series": [{"math": "mau"}, {"math": "total"}], "compare_to_previous": True}, "rollup:day"),
    ({"use_rollups": False}, "raw"),
]


@pytest.mark.parametrize(("extra", "source"), SOURCES)
def test_planner_picks_the_covering_rollup(
    insights: InsightsService, extra: dict[str, Any], source: str
) -> None:
    body = {"series": [{"event": "pageview"}], **extra}
    assert insights.trends_service.plan(body).source.label == source


# -- rollup answers equal raw answers ----------------------------------------------------------

CASES = [
    ("day", "UTC", "2026-10-01", "2026-10-31"),
    ("week", "UTC", "2026-09-28", "2026-11-01"),
    ("month", "UTC", "2026-09-01", "2026-11-01"),
    ("hour", "UTC", "2026-10-30T00:00:00", "2026-10-31T12:00:00"),
    ("day", "Europe/Berlin", "2026-10-15", "2026-10-31"),
    ("hour", "Europe/Berlin", "2026-10-24T20:00:00", "2026-10-25T06:00:00"),
    ("week", "America/New_York", "2026-10-05", "2026-11-01"),
    ("day", "America/New_York", "2026-10-25", "2026-11-01"),
]


@pytest.mark.parametrize(("interval", "tz", "date_from", "date_to"), CASES)
@pytest.mark.parametrize("math", ["total", "unique_actors", "dau", "wau", "mau"])
def test_rollup_equals_raw(
    insights: InsightsService, interval: str, tz: str, date_from: str, date_to: str, math: str
) -> None:
    body = {
        # Over all events, uniques read the ``_actors`` sketches (one per bucket).
        "series": [{"event": "pageview", "math": math}, {"event": None, "math": math}],
        "interval": interval,
        "timezone": tz,
        "date_from": date_from,
        "date_to": date_to,
    }
    rollup, raw = both(insights, body)
    assert rollup["source"].startswith("rollup:")
    assert_same(rollup, raw, [math])


@pytest.mark.parametrize("math", ["total", "unique_actors", "wau"])
def test_rollup_equals_raw_with_breakdowns_and_filters(insights: InsightsService, math: str) -> None:
    body = {
        "series": [
            {
                "event": "pageview",
                "math": math,
                "filters": [{"property": "browser", "operator": "neq", "value": "Safari"}],
            }
        ],
        "filters": [{"property": "country", "operator": "not_in", "value": ["US"]}],
        "breakdown": ["country", "browser"],
        "breakdown_limit": 5,
        "date_from": "2026-10-01",
        "date_to": "2026-10-31",
        "compare_to_previous": True,
    }
    rollup, raw = both(insights, body)
    assert rollup["source"] == "rollup:day"
    assert [s["breakdown_value"] for s in rollup["series"]][-1] == "$other"
    assert_same(rollup, raw, [math])


# -- maintenance on writes ---------------------------------------------------------------------


def _event(
    i: int, ts: str, *, event: str = "view", actor: str | None = None, country: str = "DE"
) -> dict[str, Any]:
    return {
        "uuid": f"00000000-0000-4000-8000-{i:012d}",
        "event": event,
        "distinct_id": actor or f"u{i % 7}",
        "timestamp": ts,
        "properties": {"country": country},
    }


def _day(insights: InsightsService, math: str = "total", **extra: Any) -> dict[str, Any]:
    body = {
        "series": [{"event": "view", "math": math}],
        "date_from": "2026-10-30",
        "date_to": "2026-10-31",
        **extra,
    }
    return insights.trends_service.trends(body)


def test_writes_are_in_the_rollups_when_committed(fresh: Any) -> None:
    engine, _rollups, insights = fresh
    load(engine, "events", [], breakdowns=["country"])
    ingest = IngestService(engine)
    ingest.ingest_events([_event(i, f"2026-10-30T0{i % 9}:15:00Z") for i in range(20)])
    out = _day(insights, breakdown="country")
    assert out["source"] == "rollup:day"
    assert out["series"][0]["data"] == [20, 0]

    ingest.ingest_events([_event(100, "2026-10-31T10:00:00Z", country="FR")])  # one event: visible at once
    out = _day(insights, breakdown="country")
    assert {s["breakdown_value"]: s["data"] for s in out["series"]} == {"DE": [20, 0], "FR": [0, 1]}

    again = ingest.ingest_events(
        [_event(100, "2026-10-31T10:00:00Z", country="FR"), _event(5, "2026-10-30T05:15:00Z")]
    )
    assert again.duplicates == 2
    assert _day(insights)["series"][0]["data"] == [20, 1]  # retries count once

    uniques = _day(insights, "unique_actors")
    assert uniques["source"] == "rollup:day"
    assert uniques["series"][0]["data"] == [7, 1]


def test_an_instant_in_the_last_half_millisecond_stays_in_its_hour(fresh: Any) -> None:
    """Buckets round instants down to the millisecond (``EpochMillis``), in both paths."""
    engine, _rollups, insights = fresh
    load(engine, "events", [_event(0, "2026-10-30T08:00:00Z")], breakdowns=["country"])  # builds
    IngestService(engine).ingest_events([_event(1, "2026-10-30T09:59:59.9995Z")])
    body = {
        "series": [{"event": "view"}],
        "interval": "hour",
        "date_from": "2026-10-30",
        "date_to": "2026-10-30",
    }
    rollup, raw = both(insights, body)
    assert rollup["source"] == "rollup:hour"
    for out in (rollup, raw):
        hours = dict(zip(out["series"][0]["labels"], out["series"][0]["data"], strict=True))
        assert {k[11:13]: v for k, v in hours.items() if v} == {"08": 1, "09": 1}


def test_overwrites_and_deletes_rebuild_their_buckets(fresh: Any) -> None:
    engine, _rollups, insights = fresh
    load(
        engine,
        "events",
        [_event(i, f"2026-10-30T1{i % 5}:00:00Z", actor=f"a{i}") for i in range(10)],
        breakdowns=["country"],
    )
    ingest = IngestService(engine)
    doc = {
        "_id": "00000000-0000-4000-8000-000000000003",
        "event": "view",
        "distinct_id": "a3",
        "timestamp": datetime(2026, 10, 31, 9, tzinfo=UTC),
    }
    ingest.ingest("events", [doc], overwrite=[doc["_id"]])  # moves one event to the next day
    ingest.ingest(
        "events", [], delete=["00000000-0000-4000-8000-000000000004", "00000000-0000-4000-8000-000000000005"]
    )
    for math, expected in (("total", [7, 1]), ("unique_actors", [7, 1])):
        out = _day(insights, math)
        assert out["source"] == "rollup:day"
        assert out["series"][0]["data"] == expected
        assert (
            insights.trends_service.trends(
                {
                    "series": [{"event": "view", "math": math}],
                    "date_from": "2026-10-30",
                    "date_to": "2026-10-31",
                    "interval": "hour",
                }
            )["series"][0]["total"]
            == 8
        )


def test_refresh_repairs_a_range(fresh: Any) -> None:
    engine, rollups, insights = fresh
    load(
        engine,
        "events",
        [_event(i, f"2026-10-{28 + i % 3}T12:00:00Z") for i in range(30)],
        breakdowns=["country"],
    )
    params = Params()
    since = exp.GTE(this=col("bucket"), expression=params.bind(datetime(2026, 10, 29, tzinfo=UTC)))
    engine.query(exp.delete(exp.table_("_rollup_events_day", quoted=True), where=since), params.values)
    assert _day(insights)["series"][0]["data"] == [0, 0]
    result = rollups.refresh(
        "events", datetime(2026, 10, 29, 5, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    )
    assert result["from"] == "2026-10-29T00:00:00+00:00"
    assert _day(insights)["series"][0]["data"] == [10, 0]
    assert rollups.refresh("events")["rollups"] is True
    assert _day(insights)["series"][0]["data"] == [10, 0]


def test_rollups_follow_their_definition_and_the_collection(fresh: Any) -> None:
    engine, rollups, insights = fresh
    load(engine, "events", [_event(i, "2026-10-30T12:00:00Z") for i in range(5)], breakdowns=[])
    assert insights.trends_service.plan({"series": [{}], "breakdown": "country"}).source.label == "raw"
    coll = engine.get_collection("events")
    engine.update_settings("events", {**coll.settings, "rollups": {"breakdowns": ["country"]}})
    assert rollups.ensure("events") is not None  # rebuilt with the new breakdown
    assert insights.trends_service.plan({"series": [{}], "breakdown": "country"}).source.label == "rollup:day"

    engine.drop_collection("events")
    assert rollups.built("events") is None
    load(engine, "events", [_event(1, "2026-10-31T12:00:00Z")], breakdowns=["country"])
    assert _day(insights)["series"][0]["data"] == [0, 1]  # nothing left of the dropped collection


def test_disabled_rollups(fresh: Any) -> None:
    engine, rollups, insights = fresh
    from aggregata.ingest.events import EVENT_MAPPING, EVENT_SETTINGS
    from aggregata.storage.engine import EVENTS

    engine.create_collection(
        "ev", EVENT_MAPPING, kind=EVENTS, settings={**EVENT_SETTINGS, "rollups": {"enabled": False}}
    )
    IngestService(engine).ingest_events([_event(1, "2026-10-30T12:00:00Z")], collection="ev")
    assert rollups.built("ev") is None
    out = insights.trends_service.trends(
        {"collection": "ev", "series": [{}], "date_from": "2026-10-30", "date_to": "2026-10-30"}
    )
    assert (out["source"], out["series"][0]["data"]) == ("raw", [1])


def test_rollups_are_built_for_data_already_stored(tmp_path: Any) -> None:
    """A store written before rollups existed gets them from its events on first use."""
    engine = DuckDBEngine(tmp_path / "db.duckdb", threads=2)
    try:
        load(engine, "events", [_event(i, "2026-10-30T12:00:00Z") for i in range(6)])
        rollups = RollupService(engine)
        assert rollups.built("events") is None
        assert rollups.ensure_all() == ["events"]
        insights = InsightsService(engine, rollups, clock=lambda: datetime(2026, 11, 1, tzinfo=UTC))
        out = _day(insights)
        assert (out["source"], out["series"][0]["data"]) == ("rollup:day", [6, 0])
    finally:
        engine.close()


def test_rows_a_stopped_process_staged_are_folded_at_start(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that stops before folding leaves rows in the stage; the next one folds them
    when it starts (``ensure_all``) instead of every read aggregating them again."""
    from aggregata.insights import rollup_service

    monkeypatch.setattr(rollup_service, "FOLD_AGE_S", 3600.0)  # nothing folds while writing
    path = tmp_path / "db.duckdb"
    now = datetime(2026, 11, 1, tzinfo=UTC)
    engine = DuckDBEngine(path, threads=2)
    monkeypatch.setattr(engine.__class__, "_maintain", lambda self, idle: None)
    RollupService(engine)
    load(engine, "events", [_event(99, "2026-10-30T12:00:00Z")], breakdowns=["country"])  # builds
    IngestService(engine).ingest_events([_event(i, f"2026-10-30T0{i % 9}:15:00Z") for i in range(9)])
    engine.close()
    monkeypatch.undo()

    engine = DuckDBEngine(path, threads=2)
    try:
        staged = 'SELECT count(*) FROM "_rollup_events_stage"'
        assert engine.query_sql(staged).column(0)[0].as_py() == 9
        rollups = RollupService(engine)
        assert rollups.ensure_all() == ["events"]
        assert engine.query_sql(staged).column(0)[0].as_py() == 0
        rollup, raw = both(
            InsightsService(engine, rollups, clock=lambda: now),
            {
                "series": [{"event": "view", "math": "total"}],
                "date_from": "2026-10-30",
                "date_to": "2026-10-31",
                "breakdown": "country",
            },
        )
        assert rollup["source"] == "rollup:day"
        assert rollup["series"] == raw["series"] and raw["series"][0]["data"] == [10, 0]
    finally:
        engine.close()


def test_folds_and_compaction_keep_the_numbers(fresh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes are staged, folded and compacted; at every step rollups answer as raw does."""
    from aggregata.insights import rollup_service
    from aggregata.insights.rollups import compact

    monkeypatch.setattr(rollup_service, "FOLD_ROWS", 1)
    monkeypatch.setattr(rollup_service, "COMPACT_MIN_ROWS", 1)
    engine, rollups, insights = fresh
    load(engine, "events", [], breakdowns=["country"])
    ingest = IngestService(engine)
    body = {
        "series": [{"event": "view", "math": "total"}, {"event": "view", "math": "unique_actors"}],
        "date_from": "2026-10-30",
        "date_to": "2026-10-31",
        "breakdown": "country",
    }

    def check() -> None:
        rollup, raw = both(insights, body)
        assert rollup["source"] == "rollup:day"
        for r, x in zip(rollup["series"], raw["series"], strict=True):
            assert r["data"] == x["data"]  # tiny counts: the sketch is exact here

    for w in range(12):
        countries = ["DE", "FR", "IT"]
        ingest.ingest_events(
            [
                _event(w * 10 + i, f"2026-10-{30 + i % 2}T{w:02d}:{i:02d}:00Z", country=countries[i % 3])
                for i in range(10)
            ]
        )
        check()
    spec = rollups.built("events")
    assert spec is not None
    engine.transaction(lambda tx: compact(tx, spec))
    check()
    stage = engine.query_sql('SELECT count(*) FROM "_rollup_events_stage"')
    assert stage.column(0)[0].as_py() == 0
    for table, keys in (
        ("_rollup_events_day", "event, bucket, k0"),
        ("_rollup_events_hour_hll", "event, bucket, k0, reg"),
        ("_rollup_events_day_actors", "bucket, reg"),
    ):
        dup = engine.query_sql(
            f"SELECT count(*) FROM (SELECT {keys} FROM {table} GROUP BY ALL HAVING count(*) > 1)"
        )
        assert dup.column(0)[0].as_py() == 0, table


def test_rollups_of_another_format_are_rebuilt(fresh: Any) -> None:
    """Tables built by another version's layout are never read; ``ensure`` rebuilds them."""
    from dataclasses import replace

    from aggregata.insights.rollups import record

    engine, rollups, insights = fresh
    load(engine, "events", [_event(i, "2026-10-30T12:00:00Z") for i in range(4)], breakdowns=["country"])
    spec = rollups.built("events")
    assert spec is not None
    old = replace(spec, format="0/old")
    engine.transaction(lambda tx: tx.execute(exp.delete(exp.table_("_aggregata_rollups"), where=exp.true())))
    engine.transaction(lambda tx: record(tx, "events", old.to_json(), 1))
    rollups.listener.forget("events")
    assert rollups.built("events") is None
    assert _day(insights)["source"] == "raw"
    assert rollups.ensure_all() == ["events"]
    assert rollups.built("events") == spec
    assert _day(insights)["series"][0]["data"] == [4, 0]

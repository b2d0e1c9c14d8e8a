"""Shared blocks: property filters against Python, PostHog date ranges, schemas, time zones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter
from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.ingest.service import IngestService
from aggregata.insights.common import (
    compile_filters,
    event_condition,
    event_schema,
    property_column,
    resolve_date_range,
    timezone,
)
from aggregata.insights.models import Filter
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.duckdb import DuckDBEngine

EVENTS: list[dict[str, Any]] = [
    {
        "event": "view",
        "distinct_id": "a",
        "timestamp": "2026-10-01T10:00:00Z",
        "properties": {"country": "DE", "n": 3.0, "tags": ["x", "y"], "seen": "2026-09-01T00:00:00Z"},
    },
    {
        "event": "view",
        "distinct_id": "b",
        "timestamp": "2026-10-02T10:00:00Z",
        "properties": {"country": "fr", "n": 10.0, "tags": ["z"]},
    },
    {
        "event": "buy",
        "distinct_id": "b",
        "timestamp": "2026-10-03T10:00:00Z",
        "properties": {"country": "France", "n": 7.5},
    },
    {"event": "buy", "distinct_id": "c", "timestamp": "2026-10-04T10:00:00Z"},
]
ANY = TypeAdapter(list[Filter])


def _props(e: dict[str, Any]) -> dict[str, Any]:
    return e.get("properties") or {}


CASES: list[tuple[list[dict[str, Any]], Any]] = [
    ([{"property": "country", "value": "DE"}], lambda p: p.get("country") == "DE"),
    ([{"property": "country", "operator": "neq", "value": "DE"}], lambda p: p.get("country") != "DE"),
    (
        [{"property": "country", "operator": "in", "value": ["DE", "fr"]}],
        lambda p: p.get("country") in ("DE", "fr"),
    ),
    (
        [{"property": "country", "operator": "not_in", "value": ["DE"]}],
        lambda p: p.get("country") not in ("DE",),
    ),
    ([{"property": "n", "operator": "gt", "value": 3}], lambda p: p.get("n", -1) > 3),
    ([{"property": "n", "operator": "lte", "value": "7.5"}], lambda p: "n" in p and p["n"] <= 7.5),
    (
        [{"property": "n", "operator": "between", "value": [3, 7.5]}],
        lambda p: "n" in p and 3 <= p["n"] <= 7.5,
    ),
    ([{"property": "country", "operator": "contains", "value": "r"}], lambda p: "r" in p.get("country", "")),
    (
        [{"property": "country", "operator": "icontains", "value": "FR"}],
        lambda p: "fr" in p.get("country", "").lower(),
    ),
    (
        [{"property": "country", "operator": "regex", "value": "^[A-Z]{2}$"}],
        lambda p: bool(re.search("^[A-Z]{2}$", p.get("country", ""))),
    ),
    ([{"property": "country", "operator": "is_set"}], lambda p: "country" in p),
    ([{"property": "country", "operator": "is_not_set"}], lambda p: "country" not in p),
    ([{"property": "tags", "value": "z"}], lambda p: "z" in p.get("tags", [])),
    ([{"property": "tags", "operator": "neq", "value": "z"}], lambda p: "z" not in p.get("tags", [])),
    ([{"property": "seen", "operator": "is_date_before", "value": "2026-09-15"}], lambda p: "seen" in p),
    ([{"property": "nope", "value": "x"}], lambda p: False),
    ([{"property": "nope", "operator": "neq", "value": "x"}], lambda p: True),
    ([{"property": "nope", "operator": "is_not_set"}], lambda p: True),
    (
        [
            {
                "or": [
                    {"property": "country", "value": "DE"},
                    {
                        "and": [
                            {"property": "n", "operator": "gte", "value": 7.5},
                            {"property": "n", "operator": "lt", "value": 8},
                        ]
                    },
                ]
            }
        ],
        lambda p: p.get("country") == "DE" or 7.5 <= p.get("n", -1) < 8,
    ),
    (
        [{"property": "country", "operator": "is_set"}, {"property": "n", "operator": "gt", "value": 5}],
        lambda p: "country" in p and p.get("n", 0) > 5,
    ),
]


@pytest.fixture
def loaded(engine: DuckDBEngine) -> DuckDBEngine:
    assert not IngestService(engine).ingest_events(EVENTS).errors
    return engine


@pytest.mark.parametrize(("filters", "expected"), CASES)
def test_filters_match_python(loaded: DuckDBEngine, filters: list[dict[str, Any]], expected: Any) -> None:
    schema = event_schema(loaded.get_collection("events"))
    params = Params()
    cond = compile_filters(
        ANY.validate_python(filters), schema, params, now=datetime(2026, 11, 1, tzinfo=UTC)
    )
    tree = (
        exp.select(col("distinct_id"), col("timestamp")).from_(exp.table_("events", quoted=True)).where(cond)
    )
    got = sorted(str(r["timestamp"]) for r in loaded.query(tree, params.values).to_pylist())
    want = sorted(str(datetime.fromisoformat(e["timestamp"])) for e in EVENTS if expected(_props(e)))
    assert len(got) == len(want)


def test_event_condition_and_columns(loaded: DuckDBEngine) -> None:
    schema = event_schema(loaded.get_collection("events"))
    params = Params()
    tree = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(exp.table_("events", quoted=True))
    assert loaded.query(tree.where(event_condition(schema, "buy", params)), params.values).to_pylist() == [
        {"n": 2}
    ]
    assert event_condition(schema, None, params) == exp.true()
    assert property_column(schema, "country") == col("properties.country")
    assert property_column(schema, "properties.country") == col("properties.country")
    assert property_column(schema, "distinct_id") == col("distinct_id")
    assert property_column(schema, "nope") is None
    assert (
        event_schema(loaded.get_collection("events"), actor="properties.country").actor
        == "properties.country"
    )
    with pytest.raises(BadRequest, match="actor"):
        event_schema(loaded.get_collection("events"), actor="nope")


@pytest.mark.parametrize(
    "filters",
    [
        [{"property": "n", "operator": "gt", "value": "many"}],
        [{"property": "country", "operator": "regex", "value": "("}],
        [{"property": "country", "operator": "between", "value": [1]}],
        [{"property": "country", "operator": "eq"}],
        [{"property": "country", "operator": "like", "value": "x"}],
        [{}],
    ],
)
def test_bad_filters(loaded: DuckDBEngine, filters: list[dict[str, Any]]) -> None:
    schema = event_schema(loaded.get_collection("events"))
    with pytest.raises((BadRequest, ValueError)):
        compile_filters(ANY.validate_python(filters), schema, Params())


NOW = datetime(2026, 3, 29, 12, 30, tzinfo=UTC)  # Berlin switched to summer time at 01:00 UTC


@pytest.mark.parametrize(
    ("date_from", "date_to", "start", "end"),
    [
        ("-7d", None, "2026-03-22T00:00:00+01:00", NOW.isoformat()),
        ("-24h", None, "2026-03-28T13:00:00+01:00", NOW.isoformat()),
        ("-1m", None, "2026-02-28T00:00:00+01:00", NOW.isoformat()),
        ("-2w", "-1d", "2026-03-15T00:00:00+01:00", "2026-03-29T00:00:00+01:00"),
        ("-1y", None, "2025-03-29T00:00:00+01:00", NOW.isoformat()),
        ("mStart", None, "2026-03-01T00:00:00+01:00", NOW.isoformat()),
        ("yStart", None, "2026-01-01T00:00:00+01:00", NOW.isoformat()),
        ("wStart", None, "2026-03-23T00:00:00+01:00", NOW.isoformat()),
        ("dStart", None, "2026-03-29T00:00:00+01:00", NOW.isoformat()),
        ("all", None, "1970-01-01T00:00:00+00:00", NOW.isoformat()),
        ("2026-03-01", "2026-03-28", "2026-03-01T00:00:00+01:00", "2026-03-29T00:00:00+01:00"),
        ("2026-03-29", "2026-03-29", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
        (
            "2026-03-01T10:00:00Z",
            "2026-03-02T10:00:00Z",
            "2026-03-01T10:00:00+00:00",
            "2026-03-02T10:00:00+00:00",
        ),
    ],
)
def test_date_ranges(date_from: str, date_to: str | None, start: str, end: str) -> None:
    got = resolve_date_range(date_from, date_to, now=NOW, tz=ZoneInfo("Europe/Berlin"))
    assert got == (datetime.fromisoformat(start), datetime.fromisoformat(end))
    assert all(t.tzinfo is not None for t in got)


def test_date_range_errors_and_time_zones() -> None:
    with pytest.raises(BadRequest, match="before"):
        resolve_date_range("-1d", "-3d", now=NOW, tz=ZoneInfo("UTC"))
    with pytest.raises(BadRequest, match="relative date"):
        resolve_date_range("soon", None, now=NOW, tz=ZoneInfo("UTC"))
    assert resolve_date_range(None, None, now=NOW, tz=ZoneInfo("UTC"))[0] == datetime(2026, 3, 22, tzinfo=UTC)
    assert timezone("America/New_York").key == "America/New_York"
    assert timezone(None).key == "UTC"
    with pytest.raises(BadRequest, match="Nowhere/Land"):
        timezone("Nowhere/Land")

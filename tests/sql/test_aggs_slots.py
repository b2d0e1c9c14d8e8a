"""Zoned date histograms through UTC slots (``sql/aggs/slots.py``) against the oracle, on both engines.

The documents sit where a slot could straddle a bucket boundary if the rewrite were wrong:
Berlin's local mean time (+0:53:28, days starting at 23:06:32 UTC) and its switch to CET
in 1893, Monrovia's -0:44:30 until 1972, Kathmandu's quarter hour, pre-1970 instants
(negative epoch ms), the last millisecond before local midnight, and both 2026
daylight-saving changes. Each case also checks that the slot path actually ran.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregata.dsl.aggs.buckets import DateInterval
from aggregata.ingest.service import IngestService
from aggregata.model.mapping import Mapping
from aggregata.search.service import SearchService
from aggregata.sql.aggs.dates import DateBuckets
from aggregata.sql.aggs.slots import slot_width
from aggregata.sql.query import time_zone
from tests.backends import BACKENDS, open_engine
from tests.conftest import NOW
from tests.search.agg_fixtures import assert_close
from tests.search.agg_oracle import Oracle

MAPPING = {
    "properties": {
        "when": {"type": "date"},
        "n": {"type": "long"},
        "x": {"type": "double"},
        "k": {"type": "keyword"},
    }
}
TYPES = {"when": "date", "n": "long", "x": "double", "k": "keyword"}
EDGES = [
    "1890-06-15T22:50:00Z",
    "1890-06-15T23:30:00Z",  # Berlin LMT: already 00:23:28 on the 16th
    "1893-03-31T23:00:00Z",
    "1893-03-31T23:10:00Z",  # after the switch to CET at 23:06:32
    "1945-05-24T22:30:00Z",  # Berlin's double summer time (+3)
    "1960-12-31T23:30:00.500Z",
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:00:00Z",
    "1971-06-15T23:30:00Z",  # Monrovia -0:44:30
    "1972-01-07T00:30:00Z",
    "1972-01-07T00:50:00Z",  # Monrovia on whole hours from 00:44:30
    "1985-12-31T18:20:00Z",
    "1985-12-31T18:40:00Z",  # Kathmandu +5:30 → +5:45
    "2026-03-28T22:59:59.999Z",  # the last millisecond of a Berlin day
    "2026-03-28T23:00:00Z",
    "2026-03-29T00:59:59.999Z",
    "2026-03-29T01:00:00Z",  # the spring change
    "2026-10-25T00:30:00Z",
    "2026-10-25T01:30:00Z",  # the repeated autumn hour
    "2026-11-01T05:30:00Z",
    "2026-11-01T06:30:00Z",
]


def _documents() -> list[dict[str, Any]]:
    rng = random.Random(5)
    docs: list[dict[str, Any]] = []
    start = datetime(2025, 12, 1, tzinfo=UTC)
    moments = [*EDGES]
    moments += [
        (start + timedelta(minutes=rng.randint(0, 400 * 24 * 60))).strftime("%Y-%m-%dT%H:%M:%SZ")
        for _ in range(300)
    ]
    for i, moment in enumerate(moments):
        doc: dict[str, Any] = {"_id": f"e{i}", "when": moment}
        if rng.random() < 0.8:
            doc["n"] = rng.randint(-50, 50)
        if rng.random() < 0.7:
            doc["x"] = round(rng.uniform(-10, 10), 3)
        if rng.random() < 0.9:
            doc["k"] = rng.choice(["a", "b", "c", "d"])
        docs.append(doc)
    docs.append({"_id": "no-date", "n": 7})
    return docs


DOCS = _documents()


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchService]:
    chdb_dir = request.getfixturevalue("chdb_dir") if request.param == "clickhouse" else None
    engine = open_engine(request.param, tmp_path_factory.mktemp("slots"), chdb_dir=chdb_dir)
    engine.create_collection("eras", Mapping.from_es(MAPPING))
    assert IngestService(engine).ingest("eras", DOCS).stored == len(DOCS)
    yield SearchService(engine, clock=lambda: NOW)
    engine.close()


METRICS = {
    "avg": {"avg": {"field": "x"}},
    "sum": {"sum": {"field": "n"}},
    "lo": {"min": {"field": "x"}},
    "hi": {"max": {"field": "n"}},
    "st": {"stats": {"field": "x"}},
    "vc": {"value_count": {"field": "n"}},
}


@pytest.mark.parametrize(
    "spec",
    [
        {"calendar_interval": "day", "time_zone": "Europe/Berlin"},
        {"calendar_interval": "week", "time_zone": "Europe/Berlin"},
        {"calendar_interval": "month", "time_zone": "America/New_York"},
        {"calendar_interval": "year", "time_zone": "Africa/Monrovia"},
        {"calendar_interval": "day", "time_zone": "Africa/Monrovia", "min_doc_count": 2},
        {"calendar_interval": "hour", "time_zone": "Asia/Kathmandu"},
        {"calendar_interval": "quarter", "time_zone": "Asia/Kolkata", "offset": "+6h"},
        {"fixed_interval": "90m", "time_zone": "America/New_York"},
        {"fixed_interval": "1d", "time_zone": "Europe/Berlin", "offset": "-30m"},
        {"calendar_interval": "minute", "time_zone": "Europe/Berlin"},
        {"calendar_interval": "month"},  # UTC: the calendar is per row there too
        {"calendar_interval": "year", "time_zone": "+05:30"},
    ],
    ids=lambda s: "-".join(str(v) for v in s.values()),
)
def test_slot_histograms_match_the_oracle(service: SearchService, spec: dict[str, Any]) -> None:
    aggs = {"d": {"date_histogram": {"field": "when", "min_doc_count": 1, **spec}, "aggs": METRICS}}
    body = {"size": 0, "track_total_hits": True, "aggs": aggs, "profile": True}
    response = service.search("eras", body)
    assert any("__slot" in sql for sql in response["profile"]["sql"]), "the slot path did not run"
    assert response["hits"]["total"]["value"] == len(DOCS)
    assert_close(response["aggregations"], Oracle(DOCS, TYPES, NOW).run(aggs, DOCS), rel=1e-9)


BERLIN_MONTH = {
    "field": "when",
    "calendar_interval": "month",
    "time_zone": "Europe/Berlin",
    "min_doc_count": 1,
}
NESTED = {
    "terms > zoned months > avg": {
        "t": {
            "terms": {"field": "k", "size": 3},
            "aggs": {"d": {"date_histogram": BERLIN_MONTH, "aggs": {"a": {"avg": {"field": "x"}}}}},
        }
    },
    "zoned months > terms by a metric": {
        "d": {
            "date_histogram": BERLIN_MONTH,
            "aggs": {
                "t": {
                    "terms": {"field": "k", "size": 2, "order": {"s": "desc"}},
                    "aggs": {"s": {"sum": {"field": "n"}}},
                }
            },
        }
    },
    "filter > zoned days > stats": {
        "f": {
            "filter": {"range": {"n": {"gte": 0}}},
            "aggs": {
                "d": {
                    "date_histogram": {
                        **BERLIN_MONTH,
                        "calendar_interval": "week",
                        "time_zone": "Asia/Kolkata",
                    },
                    "aggs": {"st": {"stats": {"field": "x"}}},
                }
            },
        }
    },
    "zoned quarters > fixed 12h": {
        "q": {
            "date_histogram": {**BERLIN_MONTH, "calendar_interval": "quarter"},
            "aggs": {"h": {"date_histogram": {"field": "when", "fixed_interval": "12h", "min_doc_count": 1}}},
        }
    },
}


@pytest.mark.parametrize("case", sorted(NESTED))
def test_slots_below_and_above_other_buckets(service: SearchService, case: str) -> None:
    aggs = NESTED[case]
    response = service.search("eras", {"size": 0, "aggs": aggs, "profile": True})
    assert any("__slot" in sql for sql in response["profile"]["sql"]), "the slot path did not run"
    assert_close(response["aggregations"], Oracle(DOCS, TYPES, NOW).run(aggs, DOCS))


def test_a_filter_before_the_slots_and_gaps_filled(service: SearchService) -> None:
    spec = {"field": "when", "calendar_interval": "day", "time_zone": "Europe/Berlin", "min_doc_count": 0}
    aggs = {"d": {"date_histogram": spec}}
    query = {"bool": {"filter": [{"range": {"n": {"gte": 0}}}, {"range": {"when": {"gte": "2026-09-01"}}}]}}
    response = service.search("eras", {"size": 0, "query": query, "aggs": aggs})
    chosen = [d for d in DOCS if d.get("n", -1) >= 0 and d.get("when", "") >= "2026-09-01"]
    assert_close(response["aggregations"], Oracle(DOCS, TYPES, NOW).run(aggs, chosen))


@pytest.mark.parametrize(
    ("interval", "zone", "offset", "expected"),
    [
        (DateInterval("day", unit="day"), "Europe/Berlin", 0, 3_600_000),
        (DateInterval("1h", fixed_ms=3_600_000), "Asia/Kolkata", 0, 1_800_000),
        (DateInterval("day", unit="day"), "Europe/Berlin", 45 * 60_000, 900_000),
        (DateInterval("minute", unit="minute"), "Asia/Kathmandu", 0, 60_000),
        (DateInterval("30s", fixed_ms=30_000), "Europe/Berlin", 0, None),  # slots under a minute
        (DateInterval("day", unit="day"), "Europe/Berlin", 1_000, None),
        (DateInterval("day", unit="day"), None, 0, None),  # UTC: already integer arithmetic
        (DateInterval("day", unit="day"), "+05:30", 0, None),
        (DateInterval("month", unit="month"), None, 0, 3_600_000),
        (DateInterval("quarter", unit="quarter"), "+05:30", 0, 1_800_000),
    ],
)
def test_slot_width(interval: DateInterval, zone: str | None, offset: int, expected: int | None) -> None:
    found = slot_width(DateBuckets(interval, time_zone(zone), offset))
    assert (found[0] if found else None) == expected


def test_aggregations_that_do_not_combine_keep_one_statement(service: SearchService) -> None:
    aggs = {
        "d": {
            "date_histogram": {
                "field": "when",
                "calendar_interval": "month",
                "time_zone": "Europe/Berlin",
                "min_doc_count": 1,
            },
            "aggs": {"p": {"percentiles": {"field": "x", "percents": [50]}}},
        }
    }
    response = service.search("eras", {"size": 0, "aggs": aggs, "profile": True})
    assert not any("__slot" in sql for sql in response["profile"]["sql"])
    expected = Oracle(DOCS, TYPES, NOW).run(aggs, DOCS)
    assert_close(response["aggregations"], expected)


SPEC_ZONES = [
    None,
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "+05:30",
]
"""Not Africa/Monrovia here: for the rest of the day of its 1972 change, ClickHouse's
``timeZoneOffset`` says -0:14:30 where the zone says 0 (docs/aggregations.md), which moves
sub-day buckets there; the calendar cases above cover Monrovia on both engines."""
SPEC_INTERVALS = [
    {"calendar_interval": unit} for unit in ("hour", "day", "week", "month", "quarter", "year")
] + [{"fixed_interval": step} for step in ("30m", "90m", "12h", "1d", "7d")]
SPEC_METRICS = {**METRICS, "p": {"percentiles": {"field": "x", "percents": [50]}}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(SPEC_ZONES),
    interval=st.sampled_from(SPEC_INTERVALS),
    offset=st.sampled_from(["0", "+1h", "-30m", "+45m", "+6h"]),
    metrics=st.sets(st.sampled_from(sorted(SPEC_METRICS)), max_size=3),
    nested=st.booleans(),
)
def test_random_histograms_match_the_oracle(
    service: SearchService,
    zone: str | None,
    interval: dict[str, str],
    offset: str,
    metrics: set[str],
    nested: bool,
) -> None:
    """Whatever the zone, interval, offset and metrics, slots or not, the oracle's buckets."""
    spec: dict[str, Any] = {"field": "when", "min_doc_count": 1, **interval}
    if zone:
        spec["time_zone"] = zone
    if offset != "0":
        spec["offset"] = offset
    histogram = {"date_histogram": spec, "aggs": {m: SPEC_METRICS[m] for m in sorted(metrics)}}
    aggs = (
        {"t": {"terms": {"field": "k", "size": 2}, "aggs": {"d": histogram}}} if nested else {"d": histogram}
    )
    response = service.search("eras", {"size": 0, "aggs": aggs})
    assert_close(response["aggregations"], Oracle(DOCS, TYPES, NOW).run(aggs, DOCS))

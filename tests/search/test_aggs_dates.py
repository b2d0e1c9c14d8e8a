"""``date_histogram`` (and composite date sources) against the oracle, across DST changes.

The documents' dates cluster around the 2026 daylight-saving changes in Europe (03-29,
10-25) and the US (03-08, 11-01), so day/week/month buckets in Europe/Berlin and
America/New_York include 23- and 25-hour days, and hourly buckets the repeated hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.backends import BACKENDS
from tests.search.agg_fixtures import Loaded, assert_close, loaded_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    yield from loaded_fixture(request, tmp_path_factory)


ZONES = [None, "Europe/Berlin", "America/New_York", "+05:30", "-03:00"]
CALENDAR = ["minute", "1h", "day", "1d", "week", "month", "1M", "quarter", "year"]
FIXED = ["30m", "12h", "7d", "90m", "1d"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("interval", CALENDAR)
def test_calendar_intervals(loaded: Loaded, interval: str, zone: str | None) -> None:
    spec: dict[str, Any] = {"field": "when", "calendar_interval": interval, "min_doc_count": 1}
    if zone:
        spec["time_zone"] = zone
    aggs = {"d": {"date_histogram": spec}}
    assert_close(loaded.search("docs", aggs), loaded.oracle("docs", aggs))


@pytest.mark.parametrize("zone", ZONES[:3])
@pytest.mark.parametrize("interval", FIXED)
def test_fixed_intervals(loaded: Loaded, interval: str, zone: str | None) -> None:
    spec: dict[str, Any] = {"field": "when", "fixed_interval": interval, "min_doc_count": 1}
    if zone:
        spec["time_zone"] = zone
    aggs = {"d": {"date_histogram": spec}}
    assert_close(loaded.search("docs", aggs), loaded.oracle("docs", aggs))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", None])
@pytest.mark.parametrize("interval", ["1h", "day", "week"])
def test_gap_filling_between_first_and_last_bucket(loaded: Loaded, interval: str, zone: str | None) -> None:
    spec: dict[str, Any] = {"field": "when", "calendar_interval": interval}
    if zone:
        spec["time_zone"] = zone
    aggs = {"d": {"date_histogram": spec, "aggs": {"s": {"sum": {"field": "n"}}}}}
    # Only the autumn window: gaps are filled between its first and last bucket.
    query = {"range": {"when": {"gte": "2026-10-01"}}}
    assert_close(loaded.search("docs", aggs, query), loaded.oracle("docs", aggs, query))


SPECS: dict[str, dict[str, Any]] = {
    "offset_positive": {"calendar_interval": "day", "offset": "+6h", "min_doc_count": 1},
    "offset_negative_zone": {
        "calendar_interval": "day",
        "offset": "-2h",
        "time_zone": "Europe/Berlin",
        "min_doc_count": 1,
    },
    "offset_fixed": {"fixed_interval": "12h", "offset": "3h", "min_doc_count": 1},
    "format_date": {"calendar_interval": "week", "format": "yyyy-MM-dd", "min_doc_count": 1},
    "format_seconds_zone": {
        "calendar_interval": "1d",
        "format": "yyyy-MM-dd'T'HH:mm:ss",
        "time_zone": "America/New_York",
        "min_doc_count": 1,
    },
    "format_epoch": {"calendar_interval": "month", "format": "epoch_millis"},
    "keyed": {"calendar_interval": "month", "keyed": True, "time_zone": "Europe/Berlin"},
    "min_doc_count": {"calendar_interval": "day", "min_doc_count": 15},
    "missing": {"calendar_interval": "year", "missing": "2020-06-01T00:00:00Z"},
}


@pytest.mark.parametrize("name", list(SPECS), ids=list(SPECS))
@pytest.mark.parametrize("collection", ["docs", "single", "empty"])
def test_parameters(loaded: Loaded, name: str, collection: str) -> None:
    aggs = {"d": {"date_histogram": {"field": "when", **SPECS[name]}}}
    assert_close(loaded.search(collection, aggs), loaded.oracle(collection, aggs))


def test_extended_bounds_fill_around_the_data(loaded: Loaded) -> None:
    spec = {
        "field": "when",
        "calendar_interval": "day",
        "extended_bounds": {"min": "2026-10-20", "max": "2026-11-10"},
        "time_zone": "Europe/Berlin",
    }
    aggs = {"d": {"date_histogram": spec}}
    query = {"range": {"when": {"gte": "2026-10-25", "lt": "2026-10-28", "time_zone": "Europe/Berlin"}}}
    got = loaded.search("docs", aggs, query)["d"]["buckets"]
    assert got[0]["key_as_string"] == "2026-10-20T00:00:00.000+02:00"
    assert got[-1]["key_as_string"] == "2026-11-10T00:00:00.000+01:00"
    assert len(got) == 22 and sum(b["doc_count"] for b in got) > 0
    assert {b["key_as_string"][:10] for b in got if b["doc_count"]} <= {
        "2026-10-25",
        "2026-10-26",
        "2026-10-27",
    }
    # The day of the change is 25 hours long in Berlin.
    keys = {b["key_as_string"][:10]: b["key"] for b in got}
    assert keys["2026-10-26"] - keys["2026-10-25"] == 25 * 3_600_000


def test_extended_bounds_on_empty_results(loaded: Loaded) -> None:
    spec = {
        "field": "when",
        "calendar_interval": "month",
        "extended_bounds": {"min": "2026-01-01", "max": "2026-03-15"},
    }
    got = loaded.search("empty", {"d": {"date_histogram": spec}})["d"]["buckets"]
    assert [b["key_as_string"] for b in got] == [
        "2026-01-01T00:00:00.000Z",
        "2026-02-01T00:00:00.000Z",
        "2026-03-01T00:00:00.000Z",
    ]
    assert all(b["doc_count"] == 0 for b in got)


def test_hard_bounds_drop_buckets_outside(loaded: Loaded) -> None:
    spec = {
        "field": "when",
        "calendar_interval": "day",
        "hard_bounds": {"min": "2026-03-05", "max": "2026-03-10"},
    }
    got = loaded.search("docs", {"d": {"date_histogram": spec}})["d"]["buckets"]
    assert [b["key_as_string"][:10] for b in got] == [f"2026-03-{d:02d}" for d in range(5, 11)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("interval", ["hour", "30m", "day", "12h"])
def test_dst_collection_matches_oracle(loaded: Loaded, zone: str, interval: str) -> None:
    key = "fixed_interval" if interval[0].isdigit() else "calendar_interval"
    aggs = {"d": {"date_histogram": {"field": "when", key: interval, "time_zone": zone, "min_doc_count": 1}}}
    assert_close(loaded.search("dst", aggs), loaded.oracle("dst", aggs))


def test_repeated_autumn_hour_is_two_buckets(loaded: Loaded) -> None:
    spec = {"field": "when", "calendar_interval": "hour", "time_zone": "Europe/Berlin"}
    query = {"range": {"when": {"lt": "2026-10-26"}}}
    got = loaded.search("dst", {"d": {"date_histogram": spec}}, query)["d"]["buckets"]
    assert [(b["key_as_string"], b["doc_count"]) for b in got] == [
        ("2026-10-25T01:00:00.000+02:00", 1),
        ("2026-10-25T02:00:00.000+02:00", 1),
        ("2026-10-25T02:00:00.000+01:00", 2),
        ("2026-10-25T03:00:00.000+01:00", 1),
    ]
    day = loaded.search("dst", {"d": {"date_histogram": {**spec, "calendar_interval": "day"}}}, query)["d"][
        "buckets"
    ]
    assert [(b["key_as_string"], b["key"], b["doc_count"]) for b in day] == [
        ("2026-10-25T00:00:00.000+02:00", 1792879200000, 5)
    ]


def test_date_histogram_under_terms_and_terms_under_date_histogram(loaded: Loaded) -> None:
    aggs = {
        "t": {
            "terms": {"field": "k", "size": 3},
            "aggs": {
                "d": {
                    "date_histogram": {
                        "field": "when",
                        "calendar_interval": "week",
                        "time_zone": "America/New_York",
                    }
                }
            },
        },
        "d": {
            "date_histogram": {"field": "when", "calendar_interval": "month", "time_zone": "Europe/Berlin"},
            "aggs": {"t": {"terms": {"field": "tags", "size": 2}, "aggs": {"a": {"avg": {"field": "x"}}}}},
        },
    }
    assert_close(loaded.search("docs", aggs), loaded.oracle("docs", aggs), rel=1e-9)


COMPOSITES: dict[str, dict[str, Any]] = {
    "terms": {"sources": [{"k": {"terms": {"field": "k"}}}], "size": 4},
    "terms_desc_two_sources": {
        "sources": [
            {"c": {"terms": {"field": "user.country", "order": "desc"}}},
            {"f": {"terms": {"field": "flag"}}},
        ]
    },
    "histogram_and_terms": {
        "sources": [{"h": {"histogram": {"field": "n", "interval": 25}}}, {"k": {"terms": {"field": "k"}}}],
        "size": 7,
    },
    "date_histogram_zone": {
        "sources": [
            {
                "d": {
                    "date_histogram": {
                        "field": "when",
                        "calendar_interval": "day",
                        "time_zone": "Europe/Berlin",
                    }
                }
            }
        ],
        "size": 5,
    },
    "missing_bucket": {
        "sources": [
            {"k": {"terms": {"field": "k", "missing_bucket": True}}},
            {"t": {"terms": {"field": "tags"}}},
        ],
        "size": 6,
    },
    "array_source": {"sources": [{"t": {"terms": {"field": "tags"}}}], "size": 10},
    "with_sub_agg": {"sources": [{"k": {"terms": {"field": "k"}}}], "size": 3},
    "missing_bucket_with_sub_agg": {
        "sources": [
            {"k": {"terms": {"field": "k", "missing_bucket": True}}},
            {"f": {"terms": {"field": "flag", "missing_bucket": True, "order": "desc"}}},
        ],
        "size": 4,
    },
}


@pytest.mark.parametrize("name", list(COMPOSITES), ids=list(COMPOSITES))
def test_composite_pages_match_oracle(loaded: Loaded, name: str) -> None:
    spec = dict(COMPOSITES[name])
    subs = (
        {"a": {"avg": {"field": "x"}}, "t": {"terms": {"field": "tags", "size": 1}}}
        if "sub_agg" in name
        else {}
    )
    pages = 0
    after = None
    while True:
        if after is not None:
            spec["after"] = after
        aggs: dict[str, Any] = {"c": {"composite": spec, **({"aggs": subs} if subs else {})}}
        got, want = loaded.search("docs", aggs), loaded.oracle("docs", aggs)
        assert_close(got, want, rel=1e-9)
        pages += 1
        if not got["c"]["buckets"] or pages > 60:
            break
        after = got["c"]["after_key"]
    assert pages > 1


SUB_MS = {
    "a": "2026-03-29T23:59:59.9995Z",  # the last half millisecond of a day
    "b": "2026-03-30T00:00:00.0004Z",
    "c": "1969-12-31T23:59:59.9995Z",  # before the epoch: -0.5 ms
    "d": "1969-12-31T23:59:59.999999Z",
}


def test_sub_millisecond_instants_round_down(loaded: Loaded) -> None:
    """Dates keep microseconds; buckets and metrics use milliseconds rounded down, as
    Elasticsearch's millisecond dates truncate, so a bucket agrees with a range filter."""
    from aggregata.ingest.service import IngestService
    from aggregata.model.mapping import Mapping

    loaded.engine.create_collection("sub_ms", Mapping.from_es({"properties": {"when": {"type": "date"}}}))
    IngestService(loaded.engine).ingest("sub_ms", [{"_id": k, "when": v} for k, v in SUB_MS.items()])
    body = {
        "size": 0,
        "aggs": {
            "d": {"date_histogram": {"field": "when", "calendar_interval": "day"}},
            "m": {"date_histogram": {"field": "when", "fixed_interval": "1ms", "min_doc_count": 1}},
            "hi": {"max": {"field": "when"}},
            "lo": {"min": {"field": "when"}},
        },
    }
    out = loaded.service.search("sub_ms", body)["aggregations"]
    days = {b["key_as_string"][:10]: b["doc_count"] for b in out["d"]["buckets"] if b["doc_count"]}
    assert days == {"1969-12-31": 2, "2026-03-29": 1, "2026-03-30": 1}
    assert [(b["key"], b["doc_count"]) for b in out["m"]["buckets"]] == [
        (-1, 2),
        (1774828799999, 1),
        (1774828800000, 1),
    ]
    assert (out["hi"]["value"], out["hi"]["value_as_string"]) == (1774828800000, "2026-03-30T00:00:00.000Z")
    assert (out["lo"]["value"], out["lo"]["value_as_string"]) == (-1, "1969-12-31T23:59:59.999Z")
    before = {"size": 0, "query": {"range": {"when": {"lt": "2026-03-30"}}}}
    assert loaded.service.search("sub_ms", before)["hits"]["total"]["value"] == 3
    loaded.engine.drop_collection("sub_ms")

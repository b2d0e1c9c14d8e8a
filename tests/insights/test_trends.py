"""Trends against pandas: every math and interval, DST time zones, boundaries, shaping, errors.

These run on raw events (``force_raw``); ``test_rollups.py`` checks that the rollup path
gives the same numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from aggregata.errors import AggregataError, BadRequest
from aggregata.insights.service import InsightsService
from tests.insights.conftest import NOW
from tests.insights.oracle import breakdown_counts, in_range, trend

MATHS = [
    ("total", None),
    ("unique_actors", None),
    ("dau", None),
    ("wau", None),
    ("mau", None),
    ("sum", "price"),
    ("avg", "price"),
    ("min", "price"),
    ("max", "price"),
    ("median", "price"),
    ("p90", "price"),
    ("p95", "price"),
    ("p99", "price"),
    ("avg_count_per_actor", None),
    ("max_count_per_actor", None),
    ("p90_count_per_actor", None),
]


def run(insights: InsightsService, body: dict[str, Any], *, raw: bool = True) -> dict[str, Any]:
    return insights.trends_service.trends(body, force_raw=raw)


def assert_series(item: dict[str, Any], labels: list[str], data: list[float], total: float) -> None:
    assert item["labels"] == labels
    assert item["data"] == pytest.approx(data, rel=1e-9, abs=1e-9)
    assert item["total"] == pytest.approx(total, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("math", "prop"), MATHS)
def test_every_math_by_day(
    insights: InsightsService, autumn: pd.DataFrame, math: str, prop: str | None
) -> None:
    event = "add_to_cart" if prop else "pageview"
    start, end = datetime(2026, 10, 10, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    body = {
        "series": [{"event": event, "math": math, "math_property": prop}],
        "interval": "day",
        "date_from": "2026-10-10",
        "date_to": "2026-10-30",
    }
    out = run(insights, body)
    labels, data, total = trend(
        autumn, start=start, end=end, interval="day", tz=ZoneInfo("UTC"), math=math, prop=prop, event=event
    )
    assert out["source"] == "raw"
    assert len(out["series"]) == 1
    assert_series(out["series"][0], labels, data, total)


INTERVALS = [
    ("hour", "2026-10-30T00:00:00", "2026-10-31T06:00:00"),
    ("day", "2026-10-01", "2026-10-31"),
    ("week", "2026-09-28", "2026-10-31"),
    ("month", "2026-09-01", "2026-10-31"),
    ("quarter", "2026-07-01", "2026-10-31"),
    ("year", "2026-01-01", "2026-10-31"),
]


@pytest.mark.parametrize(("interval", "date_from", "date_to"), INTERVALS)
@pytest.mark.parametrize("math", ["total", "unique_actors", "wau", "p95"])
@pytest.mark.parametrize("tz_name", ["UTC", "Europe/Berlin", "America/New_York"])
def test_intervals_in_time_zones(
    insights: InsightsService,
    autumn: pd.DataFrame,
    interval: str,
    date_from: str,
    date_to: str,
    math: str,
    tz_name: str,
) -> None:
    """Buckets are local to the zone, DST included (Berlin Oct 25, New York Nov 1)."""
    tz = ZoneInfo(tz_name)
    prop = "price" if math == "p95" else None
    event = "add_to_cart" if prop else "pageview"
    body = {
        "series": [{"event": event, "math": math, "math_property": prop}],
        "interval": interval,
        "date_from": date_from,
        "date_to": date_to,
        "timezone": tz_name,
    }
    start = datetime.fromisoformat(date_from).replace(tzinfo=tz)
    end = datetime.fromisoformat(date_to).replace(tzinfo=tz)
    if len(date_to) == 10:  # a date means the whole day
        end = datetime.combine(end.date() + timedelta(days=1), datetime.min.time(), tz)
    labels, data, total = trend(
        autumn, start=start, end=end, interval=interval, tz=tz, math=math, prop=prop, event=event
    )
    out = run(insights, body)
    assert_series(out["series"][0], labels, data, total)


def test_dst_days_have_23_or_25_hours(
    insights: InsightsService, autumn: pd.DataFrame, spring: pd.DataFrame
) -> None:
    """A local day across a clock change holds exactly the events of its 25 (or 23) hours."""
    berlin = ZoneInfo("Europe/Berlin")
    out = run(
        insights,
        {
            "series": [{"event": None}],
            "date_from": "2026-10-24",
            "date_to": "2026-10-26",
            "timezone": "Europe/Berlin",
        },
    )
    autumn_day = datetime(2026, 10, 25, tzinfo=berlin)
    expected = len(in_range(autumn, autumn_day, datetime(2026, 10, 26, tzinfo=berlin)))
    assert datetime(2026, 10, 26, tzinfo=berlin).astimezone(UTC) - autumn_day.astimezone(UTC) == timedelta(
        hours=25
    )
    assert out["series"][0]["labels"][1] == "2026-10-25T00:00:00+02:00"
    assert out["series"][0]["labels"][2] == "2026-10-26T00:00:00+01:00"
    assert out["series"][0]["data"][1] == expected

    ny = ZoneInfo("America/New_York")
    body = {"collection": "spring", "series": [{}], "interval": "hour", "timezone": "America/New_York"}
    out = run(insights, {**body, "date_from": "2026-03-08T00:00:00", "date_to": "2026-03-08T06:00:00"})
    labels = out["series"][0]["labels"]
    # 02:00 does not exist that night: 01:00 EST is followed by 03:00 EDT
    assert labels[:4] == [
        "2026-03-08T00:00:00-05:00",
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:00:00-04:00",
    ]
    hours = [datetime.fromisoformat(lb) for lb in labels]
    expected_hours = [len(in_range(spring, h, h + timedelta(hours=1))) for h in hours]
    assert out["series"][0]["data"] == expected_hours
    assert sum(expected_hours) == len(
        in_range(spring, datetime(2026, 3, 8, tzinfo=ny), hours[-1] + timedelta(hours=1))
    )


def test_spring_week_and_month_buckets(insights: InsightsService, spring: pd.DataFrame) -> None:
    tz = ZoneInfo("Europe/Berlin")
    for interval, week_start in (("week", "sunday"), ("month", "monday")):
        out = run(
            insights,
            {
                "collection": "spring",
                "series": [{"math": "unique_actors"}, {"math": "dau"}],
                "interval": interval,
                "week_start": week_start,
                "date_from": "2026-03-01",
                "date_to": "2026-04-04",
                "timezone": "Europe/Berlin",
            },
        )
        start, end = datetime(2026, 3, 1, tzinfo=tz), datetime(2026, 4, 5, tzinfo=tz)
        ws = 6 if week_start == "sunday" else 0
        for item, math in zip(out["series"], ["unique_actors", "dau"], strict=True):
            labels, data, total = trend(
                spring, start=start, end=end, interval=interval, tz=tz, math=math, week_start=ws
            )
            assert_series(item, labels, data, total)


def test_relative_dates_and_current_bucket(insights: InsightsService, autumn: pd.DataFrame) -> None:
    """``-7d`` starts at local midnight 7 days ago; without ``date_to`` today is shown whole."""
    out = run(insights, {"series": [{"event": "pageview"}], "date_from": "-7d"})
    item = out["series"][0]
    assert len(item["labels"]) == 8
    assert item["labels"][0] == "2026-10-25T00:00:00+00:00"
    start, end = datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    labels, data, total = trend(
        autumn, start=start, end=end, interval="day", tz=ZoneInfo("UTC"), event="pageview"
    )
    assert_series(item, labels, data, total)
    hourly = run(insights, {"series": [{}], "interval": "hour", "date_from": "-24h"})["series"][0]
    assert hourly["labels"][0] == (NOW - timedelta(hours=24)).isoformat()
    assert len(hourly["labels"]) == 25  # the hour holding `now` is shown whole


def test_boundaries_are_half_open(fresh: Any) -> None:
    """An event at a bucket's start belongs to it; one at the range end is outside."""
    engine, _, insights = fresh
    from aggregata.ingest.service import IngestService

    stamps = [
        "2026-10-01T00:00:00Z",
        "2026-10-01T23:59:59.999999Z",
        "2026-10-02T00:00:00Z",
        "2026-10-03T00:00:00Z",
    ]
    IngestService(engine).ingest_events(
        [{"event": "e", "distinct_id": f"u{i}", "timestamp": t} for i, t in enumerate(stamps)]
    )
    out = run(
        insights, {"series": [{"event": "e"}], "date_from": "2026-10-01", "date_to": "2026-10-03T00:00:00Z"}
    )
    assert out["series"][0]["data"] == [2, 1]
    assert out["series"][0]["total"] == 3


def test_breakdown_limit_and_other(insights: InsightsService, autumn: pd.DataFrame) -> None:
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    body = {
        "series": [{"event": "pageview", "math": "unique_actors"}],
        "date_from": "2026-10-01",
        "date_to": "2026-10-31",
        "breakdown": "country",
        "breakdown_limit": 3,
    }
    out = run(insights, body)
    sel = in_range(autumn[autumn["event"] == "pageview"], start, end)
    counts = breakdown_counts(sel, "country")
    ranked = sorted(counts, key=lambda v: (-counts[v], "" if v is None else "=" + v))
    names = [item["breakdown_value"] for item in out["series"]]
    assert names == [*ranked[:3], "$other"]
    tz = ZoneInfo("UTC")
    for item in out["series"]:
        value = item["breakdown_value"]
        part = sel[~sel["country"].isin(ranked[:3])] if value == "$other" else sel[sel["country"] == value]
        labels, data, total = trend(part, start=start, end=end, interval="day", tz=tz, math="unique_actors")
        assert_series(item, labels, data, total)


def test_breakdown_by_two_properties_and_missing_values(
    insights: InsightsService, autumn: pd.DataFrame
) -> None:
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    out = run(
        insights,
        {
            "series": [{"event": "purchase"}],
            "date_from": "2026-10-01",
            "date_to": "2026-10-31",
            "interval": "month",
            "breakdown": ["device", "utm_source"],
            "breakdown_limit": 1000,
        },
    )
    sel = in_range(autumn[autumn["event"] == "purchase"], start, end)
    expected: dict[tuple[Any, ...], int] = {}
    for device, source in zip(sel["device"], sel.get("utm_source", [None] * len(sel)), strict=True):
        key = tuple(None if pd.isna(v) else v for v in (device, source))
        expected[key] = expected.get(key, 0) + 1
    got = {tuple(item["breakdown_value"]): item["total"] for item in out["series"]}
    assert got == expected
    assert any(None in key for key in got)  # events without utm_source are their own value


def test_compare_to_previous(insights: InsightsService, autumn: pd.DataFrame) -> None:
    out = run(
        insights,
        {
            "series": [{"event": "pageview"}],
            "date_from": "2026-10-20",
            "date_to": "2026-10-26",
            "compare_to_previous": True,
            "timezone": "Europe/Berlin",
        },
    )
    current, previous = out["series"]
    assert (current["compare"], previous["compare"]) == ("current", "previous")
    tz = ZoneInfo("Europe/Berlin")
    labels, data, total = trend(
        autumn,
        start=datetime(2026, 10, 13, tzinfo=tz),
        end=datetime(2026, 10, 20, tzinfo=tz),
        interval="day",
        tz=tz,
        event="pageview",
    )
    assert_series(previous, labels, data, total)


def test_formula_and_cumulative(insights: InsightsService, autumn: pd.DataFrame) -> None:
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)
    tz = ZoneInfo("UTC")
    base = {"date_from": "2026-10-01", "date_to": "2026-10-07"}
    out = run(
        insights, {**base, "series": [{"event": "pageview"}, {"event": "purchase"}], "formula": "B / A * 100"}
    )
    _, views, views_total = trend(autumn, start=start, end=end, interval="day", tz=tz, event="pageview")
    _, buys, buys_total = trend(autumn, start=start, end=end, interval="day", tz=tz, event="purchase")
    (item,) = out["series"]
    assert item["name"] == "B / A * 100"
    assert item["data"] == pytest.approx(
        [b / v * 100 if v else None for b, v in zip(buys, views, strict=True)]
    )
    assert item["total"] == pytest.approx(buys_total / views_total * 100)

    cumulative = run(
        insights,
        {
            **base,
            "series": [{"event": "pageview"}, {"event": "pageview", "math": "unique_actors"}],
            "display": "cumulative",
        },
    )
    counts, uniques = cumulative["series"]
    assert counts["data"] == pytest.approx(pd.Series(views).cumsum().tolist())
    sel = in_range(autumn[autumn["event"] == "pageview"], start, end)
    first_day = sel.groupby("distinct_id")["ts"].min().dt.floor("D")
    days = pd.date_range(start, periods=7, freq="D")
    assert uniques["data"] == [int((first_day <= d).sum()) for d in days]
    assert uniques["total"] == sel["distinct_id"].nunique()


def test_filters_and_actor_override(insights: InsightsService, autumn: pd.DataFrame) -> None:
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    out = run(
        insights,
        {
            "series": [
                {
                    "event": "pageview",
                    "math": "unique_actors",
                    "filters": [{"property": "browser", "operator": "neq", "value": "Chrome"}],
                }
            ],
            "filters": [
                {
                    "or": [
                        {"property": "country", "value": "DE"},
                        {"property": "device", "operator": "icontains", "value": "MOB"},
                    ]
                }
            ],
            "date_from": "2026-10-01",
            "date_to": "2026-10-31",
            "actor": "session_id",
        },
    )
    sel = in_range(autumn[autumn["event"] == "pageview"], start, end)
    sel = sel[
        (sel["browser"] != "Chrome")
        & ((sel["country"] == "DE") | sel["device"].str.lower().str.contains("mob"))
    ]
    assert out["series"][0]["total"] == sel["session_id"].nunique()


def test_unknown_event_and_property_give_zeros(insights: InsightsService) -> None:
    body = {"date_from": "2026-10-01", "date_to": "2026-10-03"}
    out = run(
        insights,
        {
            **body,
            "series": [
                {"event": "no-such-event"},
                {"event": "pageview", "math": "sum", "math_property": "nope"},
            ],
        },
    )
    assert [s["data"] for s in out["series"]] == [[0, 0, 0], [0, 0, 0]]
    assert [s["total"] for s in out["series"]] == [0, 0]
    filtered = run(insights, {**body, "series": [{"filters": [{"property": "nope", "value": "x"}]}]})
    assert filtered["series"][0]["data"] == [0, 0, 0]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"series": [{"math": "bogus_math"}]}, "bogus_math"),
        ({"series": [{}], "date_from": "2026-10-05", "date_to": "2026-10-01"}, "before"),
        ({"series": [{}], "interval": "fortnight"}, "fortnight"),
        ({"series": [{}], "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"series": [{"math": "sum"}]}, "math_property"),
        ({"series": [{"math": "wau"}], "interval": "minute", "date_from": "-1h"}, "hour or coarser"),
        ({"series": [{}], "formula": "A + Z"}, "Z"),
        ({"series": [{}], "formula": "__import__('os')"}, ""),
        ({"series": []}, "series"),
        ({"series": [{}], "bogus": 1}, "bogus"),
        ({"series": [{}], "date_from": "yesterday-ish"}, "yesterday-ish"),
        ({"series": [{}], "interval": "minute", "date_from": "2020-01-01"}, "buckets"),
    ],
)
def test_bad_requests(insights: InsightsService, body: dict[str, Any], reason: str) -> None:
    with pytest.raises(AggregataError) as info:
        run(insights, body)
    assert info.value.status == 400
    assert reason in info.value.reason


def test_not_an_event_collection(fresh: Any) -> None:
    engine, _, insights = fresh
    from aggregata.ingest.service import IngestService

    IngestService(engine).ingest("docs", [{"a": 1}])
    with pytest.raises(BadRequest, match="not an event collection"):
        run(insights, {"collection": "docs", "series": [{}]})

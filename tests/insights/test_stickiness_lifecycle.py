"""Stickiness and lifecycle against plain-Python computations over the same events."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from aggregata.errors import AggregataError
from aggregata.insights.service import InsightsService
from tests.insights.oracle import bucket_list, bucket_start, in_range

CASES = [("day", "UTC"), ("week", "Europe/Berlin"), ("hour", "America/New_York")]


def _range(interval: str, tz: ZoneInfo) -> tuple[str, str, datetime, datetime]:
    if interval == "hour":
        return (
            "2026-10-31T20:00:00",
            "2026-11-01T06:00:00",
            *(
                datetime(2026, 10, 31, 20, tzinfo=tz),
                datetime(2026, 11, 1, 6, tzinfo=tz),
            ),
        )
    return "2026-10-05", "2026-10-31", datetime(2026, 10, 5, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)


@pytest.mark.parametrize(("interval", "tz_name"), CASES)
def test_stickiness(insights: InsightsService, autumn: pd.DataFrame, interval: str, tz_name: str) -> None:
    tz = ZoneInfo(tz_name)
    date_from, date_to, start, end = _range(interval, tz)
    body = {
        "series": [{"event": "pageview"}, {"event": "purchase", "name": "buyers"}],
        "interval": interval,
        "timezone": tz_name,
        "date_from": date_from,
        "date_to": date_to,
    }
    out = insights.stickiness(body)
    n = len(bucket_list(start, end, interval, tz))
    for item, event in zip(out["series"], ["pageview", "purchase"], strict=True):
        sel = in_range(autumn[autumn["event"] == event], start, end)
        per_actor: dict[str, set[datetime]] = {}
        for ts, actor in zip(sel["ts"], sel["distinct_id"], strict=True):
            per_actor.setdefault(actor, set()).add(bucket_start(ts.to_pydatetime(), interval, tz))
        histogram = Counter(len(v) for v in per_actor.values())
        assert item["data"] == [histogram.get(i, 0) for i in range(1, n + 1)]
        assert item["total"] == len(per_actor)
        assert len(item["labels"]) == n
    assert out["series"][1]["name"] == "buyers"


@pytest.mark.parametrize("limit", [2, 25])
def test_stickiness_by_breakdown(insights: InsightsService, autumn: pd.DataFrame, limit: int) -> None:
    """Per country value (top ``limit`` by events, the rest as ``$other``; missing: None)."""
    tz = ZoneInfo("UTC")
    start, end = datetime(2026, 10, 5, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)
    body = {
        "series": [{"event": "pageview"}],
        "date_from": "2026-10-05",
        "date_to": "2026-10-31",
        "breakdown": "country",
        "breakdown_limit": limit,
    }
    out = insights.stickiness(body)["series"]
    sel = in_range(autumn[autumn["event"] == "pageview"], start, end)
    countries = sel["country"].astype(object).where(sel["country"].notna(), None)
    ranked = sorted(Counter(countries).items(), key=lambda kv: (-kv[1], "" if kv[0] is None else "=" + kv[0]))
    kept = [c for c, _ in ranked[:limit]]
    days: dict[tuple[Any, str], set[datetime]] = {}
    for ts, actor, country in zip(sel["ts"], sel["distinct_id"], countries, strict=True):
        value = country if country in kept or len(ranked) <= limit else "$other"
        days.setdefault((value, actor), set()).add(bucket_start(ts.to_pydatetime(), "day", tz))
    expected: dict[Any, Counter[int]] = {}
    for (value, _), d in days.items():
        expected.setdefault(value, Counter())[len(d)] += 1
    assert [s["breakdown_value"] for s in out] == kept + (["$other"] if len(ranked) > limit else [])
    for item in out:
        histogram = expected[item["breakdown_value"]]
        assert item["data"] == [histogram.get(i, 0) for i in range(1, 28)]
        assert item["total"] == sum(histogram.values())


def lifecycle_oracle(
    df: pd.DataFrame, event: str, start: datetime, end: datetime, interval: str, tz: ZoneInfo
) -> dict[str, list[int]]:
    buckets = bucket_list(start, end, interval, tz)
    before = bucket_start(buckets[0] - timedelta(microseconds=1), interval, tz)
    first = {
        a: bucket_start(t.to_pydatetime(), interval, tz)
        for a, t in df.groupby("distinct_id")["ts"].min().items()
    }
    sel = df[df["event"] == event]
    active: dict[datetime, set[str]] = {}
    for ts, actor in zip(sel["ts"], sel["distinct_id"], strict=True):
        active.setdefault(bucket_start(ts.to_pydatetime(), interval, tz), set()).add(actor)
    out: dict[str, list[int]] = {s: [] for s in ("new", "returning", "resurrecting", "dormant")}
    previous = before
    for b in buckets:
        now, prev = active.get(b, set()), active.get(previous, set())
        new = {a for a in now if first[a] == b}
        out["new"].append(len(new))
        out["returning"].append(len((now - new) & prev))
        out["resurrecting"].append(len(now - new - prev))
        out["dormant"].append(-len(prev - now))
        previous = b
    return out


@pytest.mark.parametrize(("interval", "tz_name"), CASES)
def test_lifecycle(insights: InsightsService, autumn: pd.DataFrame, interval: str, tz_name: str) -> None:
    tz = ZoneInfo(tz_name)
    date_from, date_to, start, end = _range(interval, tz)
    body = {"series": [{"event": "pageview"}], "interval": interval, "timezone": tz_name}
    out = insights.lifecycle({**body, "date_from": date_from, "date_to": date_to})
    expected = lifecycle_oracle(autumn, "pageview", start, end, interval, tz)
    got = {item["status"]: item["data"] for item in out["series"]}
    assert got == expected
    assert all(v <= 0 for v in got["dormant"])
    if interval == "day":  # the data has every status
        assert all(sum(got[s]) for s in got)


@pytest.mark.parametrize(
    ("call", "body", "reason"),
    [
        ("stickiness", {"series": []}, "series"),
        ("lifecycle", {"series": [{}], "interval": "fortnight"}, "fortnight"),
        ("lifecycle", {"series": [{}], "date_from": "2026-10-05", "date_to": "2026-10-01"}, "before"),
    ],
)
def test_bad_requests(insights: InsightsService, call: str, body: dict[str, Any], reason: str) -> None:
    with pytest.raises(AggregataError) as info:
        getattr(insights, call)(body)
    assert info.value.status == 400
    assert reason in info.value.reason

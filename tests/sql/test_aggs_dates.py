"""The Python twins of the date-bucket SQL (gap filling) against an independent rounding.

``bucket_of`` must give the key the engines compute for any instant, and ``next_key`` the
key of the following bucket, in every zone and across daylight-saving changes; the engines'
keys themselves are checked against the same reference in ``tests/search/test_aggs_dates.py``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from aggregata.dsl.aggs.buckets import CALENDAR_UNITS, FIXED_UNITS_MS, DateInterval
from aggregata.sql.aggs.dates import DateBuckets, bucket_of, next_key
from aggregata.sql.query import time_zone
from tests.search.agg_oracle import _date_rounding

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "+05:30",
    "-03:00",
]
INTERVALS = ["minute", "hour", "day", "week", "month", "quarter", "year", "30m", "12h", "7d", "90m"]
OFFSETS = [0, 6 * 3_600_000, -3_600_000]
# Instants around the 2026 DST changes (US, EU, Lord Howe's half hour) and elsewhere.
ANCHORS = [
    datetime(2026, m, d, tzinfo=UTC)
    for m, d in [(3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1), (6, 15)]
]


def _rule(interval: str, zone: str, offset: int) -> tuple[DateBuckets, dict[str, object]]:
    if interval in CALENDAR_UNITS:
        spec: dict[str, object] = {"calendar_interval": interval}
        di = DateInterval(interval, unit=CALENDAR_UNITS[interval])
    else:
        spec = {"fixed_interval": interval}
        number, unit = int(interval[:-1]), interval[-1]
        di = DateInterval(interval, fixed_ms=number * FIXED_UNITS_MS[unit])
    return DateBuckets(di, time_zone(None if zone == "UTC" else zone), offset), spec


def _instants(seed: int) -> list[int]:
    rng = random.Random(seed)
    out = []
    for anchor in ANCHORS:
        base = int(anchor.timestamp() * 1000)
        out += [base + rng.randint(-2 * 86_400_000, 2 * 86_400_000) for _ in range(40)]
    return out


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("interval", INTERVALS)
def test_bucket_of_matches_reference(interval: str, zone: str, offset: int) -> None:
    rule, spec = _rule(interval, zone, offset)
    reference = _date_rounding(spec, rule.zone, offset)
    for instant in _instants(hash((interval, zone, offset)) & 0xFFFF):
        assert bucket_of(instant, rule) == reference(instant), (interval, zone, offset, instant)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("interval", INTERVALS)
def test_next_key_is_the_following_bucket(interval: str, zone: str) -> None:
    rule, spec = _rule(interval, zone, 0)
    reference = _date_rounding(spec, rule.zone, 0)
    # Smaller than the shortest bucket (a 23-hour day, a 28-day month), else a bucket is skipped.
    step = {"minute": 60_000, "day": 3_600_000, "week": 6 * 3_600_000, "7d": 6 * 3_600_000}.get(
        interval, 15 * 60_000
    )
    if interval in ("month", "quarter", "year"):
        step = 12 * 3_600_000
    for instant in _instants(7)[::7]:
        key = reference(instant)
        # Walk forward until the reference rounds into a new bucket.
        t = key
        while reference(t) == key:
            t += step
        assert next_key(key, rule) == reference(t), (interval, zone, key)

"""Offset alignment read from the zones' TZif files, checked against ``zoneinfo``'s own offsets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aggregata.model.zones import Alignment, offset_alignment

HOUR = 3_600_000


def _offset_ms(zone: str, ms: int) -> int:
    delta = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(zone)).utcoffset()
    assert delta is not None
    return int(delta.total_seconds() * 1000)


@pytest.mark.parametrize(
    ("zone", "step", "since"),
    [
        ("Europe/Berlin", HOUR, "1893-03-31T23:06:32"),  # local mean time +0:53:28 before
        ("America/New_York", HOUR, "1883-11-18T17:00:00"),
        ("Asia/Kolkata", HOUR // 2, None),
        ("Asia/Kathmandu", HOUR // 4, None),
        ("Australia/Lord_Howe", HOUR // 2, None),  # a half-hour daylight saving shift
        ("Africa/Monrovia", HOUR, "1972-01-07T00:44:30"),  # -0:44:30 until 1972
        ("UTC", HOUR, None),
        ("Etc/GMT+5", HOUR, None),
    ],
)
def test_alignment_of_known_zones(zone: str, step: int, since: str | None) -> None:
    found = offset_alignment(zone)
    assert found is not None
    assert found.step_ms == step
    if since is not None:
        assert found.since_ms == int(datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp() * 1000)
        # Just before, the offset was off the quarter hour; from then on every offset is aligned.
        assert _offset_ms(zone, found.since_ms - 1) % (HOUR // 4) != 0
        assert _offset_ms(zone, found.since_ms) % step == 0


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/Sao_Paulo", "Asia/Kathmandu", "Pacific/Chatham", "Europe/Dublin"]
)
def test_every_offset_after_since_is_a_multiple_of_the_step(zone: str) -> None:
    found = offset_alignment(zone)
    assert isinstance(found, Alignment)
    rng = random.Random(zone)
    start = found.since_ms if found.since_ms is not None else -(2**41)
    end = int(datetime(2090, 1, 1, tzinfo=UTC).timestamp() * 1000)
    for _ in range(2_000):
        assert _offset_ms(zone, rng.randint(start, end)) % found.step_ms == 0
    # and around each daylight saving change of 2026
    day = datetime(2026, 1, 1, tzinfo=UTC)
    while day.year == 2026:
        ms = int(day.timestamp() * 1000)
        assert _offset_ms(zone, ms) % found.step_ms == 0
        day += timedelta(hours=6)


def test_an_unknown_zone_has_no_alignment() -> None:
    assert offset_alignment("Not/AZone") is None

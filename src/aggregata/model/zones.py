"""How a time zone's UTC offsets are aligned: what lets a zoned date histogram group by UTC slots.

A local day (hour, week …) in Europe/Berlin starts at 22:00 or 23:00 UTC, always on a
whole UTC hour, because every offset Berlin has used since 1893 is a whole number of
hours. So every instant of one UTC hour falls in the same local day, and a histogram can
count per UTC hour first (cheap integer arithmetic) and convert only those few thousand
hours to local days (``sql/aggs/slots.py``). That holds from the moment a zone's offsets
became aligned: before, local mean time (+0:53:28 in Berlin) starts days mid-hour.

``offset_alignment`` reads the zone's transitions from its TZif file (RFC 8536), the same
file ``zoneinfo`` reads. The engines carry their own copies of the time-zone database;
they agree with it for the modern offsets this relies on.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo

HOUR_S = 3600
QUARTER_HOUR_S = 900
"""Offsets must be multiples of this for slots to pay: finer slots would be too many."""


@dataclass(frozen=True)
class Alignment:
    """Every UTC offset the zone uses from ``since_ms`` (epoch ms, or always when ``None``) on
    is a multiple of ``step_ms`` (at most an hour)."""

    step_ms: int
    since_ms: int | None


def _tzif(key: str) -> bytes | None:
    for directory in TZPATH:
        path = Path(directory) / key
        if path.is_file():
            return path.read_bytes()
    try:
        return resources.files("tzdata.zoneinfo").joinpath(*key.split("/")).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def _transitions(data: bytes) -> tuple[list[int], list[int], int] | None:
    """(transition instants in seconds, the offset from each on, the offset before the first)."""
    if data[:4] != b"TZif":
        return None
    version = data[4:5]
    counts = struct.unpack(">6l", data[20:44])
    width = 4
    start = 44
    if version >= b"2":  # skip the 32-bit block to the 64-bit one
        isut, isstd, leap, time, types, chars = counts
        start += time * 5 + types * 6 + chars + leap * 8 + isstd + isut + 44
        counts = struct.unpack(">6l", data[start - 24 : start])
        width = 8
    _, _, _, time, types, _ = counts
    instants = list(struct.unpack(f">{time}{'q' if width == 8 else 'l'}", data[start : start + time * width]))
    start += time * width
    indices = data[start : start + time]
    start += time
    offsets = [struct.unpack(">lBB", data[start + 6 * i : start + 6 * i + 6])[0] for i in range(types)]
    return instants, [offsets[i] for i in indices], offsets[0] if offsets else 0


@lru_cache(maxsize=512)
def offset_alignment(key: str) -> Alignment | None:
    """The alignment of zone ``key``'s offsets, or ``None`` if they are not on quarter hours now."""
    data = _tzif(key)
    parsed = _transitions(data) if data is not None else None
    if parsed is None:
        return None
    instants, offsets, first = parsed
    # The rule after the last transition (the TZif footer) shows in a winter and a summer.
    zone = ZoneInfo(key)
    year = max(datetime.fromtimestamp(instants[-1], UTC).year + 1 if instants else 1970, 2100)
    later = [
        int(zone.utcoffset(datetime(year, month, 1)).total_seconds())  # type: ignore[union-attr]
        for month in (1, 7)
    ]
    if any(offset % QUARTER_HOUR_S for offset in later):
        return None
    since: int | None = None
    if first % QUARTER_HOUR_S:
        since = instants[0] if instants else None
    for i, offset in enumerate(offsets):
        if offset % QUARTER_HOUR_S:
            since = instants[i + 1] if i + 1 < len(instants) else None
            if since is None:
                return None
    used = later + [o for t, o in zip(instants, offsets, strict=True) if since is None or t >= since]
    if since is None and not first % QUARTER_HOUR_S:
        used.append(first)
    step = math.gcd(HOUR_S, *used)
    return Alignment(step * 1000, since * 1000 if since is not None else None)

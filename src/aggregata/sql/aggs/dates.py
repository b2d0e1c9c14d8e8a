"""Date-histogram buckets: the SQL that maps a timestamp to its bucket key, and the same rule in Python.

A key is the epoch milliseconds of the bucket's *local* start, as in Elasticsearch: with
``time_zone`` Europe/Berlin a ``day`` bucket starts at local midnight, so its key is 23:00
or 22:00 UTC depending on daylight saving time, and the day a clock changes is 23 or 25
hours long. The rules:

* calendar ``minute``/``hour``: floor of the local time, done as arithmetic on epoch ms
  shifted by the zone's offset at that instant (so the two 02:00 hours of an autumn DST
  change stay two buckets, as in Elasticsearch);
* calendar ``day`` … ``year``: the local calendar start (``DATE_TRUNC`` in the zone), with
  plain arithmetic for ``day``/``week`` in UTC because that is much cheaper;
* fixed intervals: multiples of the interval since the local epoch (Elasticsearch's
  ``TimeIntervalRounding``), converted back to UTC.

``offset`` shifts every bucket. The Python twins (``bucket_of``, ``next_key``) fill empty
buckets between keys the engine returned; they must agree with the SQL to the millisecond.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlglot import exp

from aggregata.dsl.aggs.buckets import DateInterval
from aggregata.sql.aggs.functions import EpochMillis, LocalTruncMillis, MillisToTimestamp, TzOffsetMillis
from aggregata.sql.params import Params

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONDAY_MS = 4 * DAY_MS
"""1970-01-05, the first Monday after the epoch: weeks start on Mondays (ISO)."""
UNIT_MS = {"minute": 60_000, "hour": 3_600_000}


@dataclass(frozen=True)
class DateBuckets:
    """One date histogram's bucketing rule: interval, zone and offset."""

    interval: DateInterval
    zone: tzinfo = UTC
    offset_ms: int = 0

    @property
    def fixed_zone(self) -> bool:
        """UTC or a fixed offset: no daylight saving, so offsets are constants."""
        return not isinstance(self.zone, ZoneInfo) or self.zone.key in ("UTC", "Etc/UTC")

    @property
    def step_ms(self) -> int:
        """The nominal length of a bucket: the fixed interval, a minute … a week (months: a day,
        the step every boundary is a multiple of in local time)."""
        unit, fixed = self.interval.unit, self.interval.fixed_ms
        return fixed or UNIT_MS.get(unit or "") or (WEEK_MS if unit == "week" else DAY_MS)

    @property
    def even(self) -> bool:
        """Every bucket is ``step_ms`` long (no months), so a constant offset makes keys arithmetic."""
        unit = self.interval.unit
        return self.interval.fixed_ms is not None or unit in UNIT_MS or unit in ("day", "week")

    def constant_offset_ms(self) -> int:
        delta = self.zone.utcoffset(None) if self.fixed_zone else None
        return int(delta.total_seconds() * 1000) if delta is not None else 0


def _num(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def _floor_to(ms: exp.Expr, step: int, shift: int | exp.Expr = 0) -> exp.Expr:
    """``FLOOR((ms - shift) / step) * step + shift``: the multiple of ``step`` at or below ``ms``."""
    shifted: exp.Expr = exp.Paren(this=ms) if isinstance(ms, exp.Binary) else ms
    if not (isinstance(shift, int) and shift == 0):
        shift_expr = _num(shift) if isinstance(shift, int) else shift
        shifted = exp.Paren(this=exp.Sub(this=ms, expression=shift_expr))
    div = exp.Div(this=shifted, expression=_num(step), typed=False, safe=False)
    out: exp.Expr = exp.Mul(this=exp.Floor(this=div), expression=_num(step))
    if not (isinstance(shift, int) and shift == 0):
        out = exp.Add(this=out, expression=_num(shift) if isinstance(shift, int) else shift.copy())
    return out


def bucket_key(ts: exp.Expr, rule: DateBuckets, params: Params) -> exp.Expr:
    """SQL for the key (epoch ms, ``BIGINT``) of the bucket holding timestamp ``ts``."""
    key = _key(ts, rule, params)
    return exp.Cast(this=key, to=exp.DataType.build("BIGINT"))


def _key(ts: exp.Expr, rule: DateBuckets, params: Params) -> exp.Expr:
    unit, fixed, offset = rule.interval.unit, rule.interval.fixed_ms, rule.offset_ms
    ms: exp.Expr = EpochMillis(this=ts)
    if rule.fixed_zone:
        zone_ms = rule.constant_offset_ms()
        if rule.even:
            step = rule.step_ms
            anchor = offset - zone_ms + (MONDAY_MS if unit == "week" else 0)
            return _floor_to(ms, step, anchor)
        # Months, quarters, years at a constant offset: truncate the shifted time in UTC.
        shift = zone_ms - offset
        local = MillisToTimestamp(this=exp.Add(this=ms, expression=_num(shift))) if shift else ts.copy()
        utc = params.bind("UTC")
        month = LocalTruncMillis(this=local, unit=exp.Literal.string(unit or "year"), zone=utc)
        return exp.Sub(this=month, expression=_num(shift)) if shift else month
    zone = params.bind(_zone_name(rule.zone))
    if unit is not None and unit not in UNIT_MS:
        trunc = LocalTruncMillis(this=_shifted(ts, ms, offset), unit=exp.Literal.string(unit), zone=zone)
        return exp.Add(this=trunc, expression=_num(offset)) if offset else trunc
    # Minutes, hours and fixed intervals: round the local time down, then back to UTC with
    # the offset in force there (one fixed-point step from the instant's own offset, so the
    # two 02:00 hours of an autumn change stay two buckets). ``offset`` shifts first.
    step = fixed or UNIT_MS[unit or "minute"]
    shifted = _shifted(ts, ms, offset)
    moment: exp.Expr = exp.Sub(this=ms.copy(), expression=_num(offset)) if offset else ms.copy()
    here = TzOffsetMillis(this=shifted, zone=zone)
    local_start = _floor_to(exp.Add(this=moment, expression=here), step)
    guess = MillisToTimestamp(this=exp.Sub(this=local_start, expression=here.copy()))
    key = exp.Sub(this=local_start.copy(), expression=TzOffsetMillis(this=guess, zone=zone.copy()))
    return exp.Add(this=key, expression=_num(offset)) if offset else key


def _shifted(ts: exp.Expr, ms: exp.Expr, offset: int) -> exp.Expr:
    if not offset:
        return ts.copy()
    return MillisToTimestamp(this=exp.Sub(this=ms.copy(), expression=_num(offset)))


def _zone_name(zone: tzinfo) -> str:
    return zone.key if isinstance(zone, ZoneInfo) else "UTC"


# -- the same rules in Python ------------------------------------------------------------


def _offset_ms(zone: tzinfo, utc_ms: int) -> int:
    instant = datetime.fromtimestamp(utc_ms / 1000, tz=UTC)
    delta = instant.astimezone(zone).utcoffset()
    return int(delta.total_seconds() * 1000) if delta else 0


def _floor(value: int, step: int, shift: int = 0) -> int:
    return (value - shift) // step * step + shift


def _local_to_utc(local_ms: int, zone: tzinfo) -> int:
    naive = datetime(1970, 1, 1) + timedelta(milliseconds=local_ms)
    return int(naive.replace(tzinfo=zone).timestamp() * 1000)


def _calendar_start(local: datetime, unit: str) -> datetime:
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


def _add_unit(local: datetime, unit: str) -> datetime:
    if unit == "day":
        return local + timedelta(days=1)
    if unit == "week":
        return local + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    total = local.year * 12 + local.month - 1 + months
    year, month = divmod(total, 12)
    return local.replace(
        year=year, month=month + 1, day=min(local.day, calendar.monthrange(year, month + 1)[1])
    )


def bucket_of(utc_ms: int, rule: DateBuckets) -> int:
    """The key of the bucket holding ``utc_ms``: the Python twin of ``bucket_key``."""
    unit, fixed, offset = rule.interval.unit, rule.interval.fixed_ms, rule.offset_ms
    if rule.fixed_zone:
        zone_ms = rule.constant_offset_ms()
        if rule.even:
            step = rule.step_ms
            return _floor(utc_ms, step, offset - zone_ms + (MONDAY_MS if unit == "week" else 0))
    zone = rule.zone
    if unit is not None and unit not in UNIT_MS:
        shifted = datetime.fromtimestamp((utc_ms - offset) / 1000, tz=UTC).astimezone(zone)
        start = _calendar_start(shifted.replace(tzinfo=None), unit)
        return _local_to_utc(int((start - datetime(1970, 1, 1)).total_seconds() * 1000), zone) + offset
    step = fixed or UNIT_MS[unit or "minute"]
    moment = utc_ms - offset
    here = _offset_ms(zone, moment)
    local_start = _floor(moment + here, step)
    return local_start - _offset_ms(zone, local_start - here) + offset


def next_key(key: int, rule: DateBuckets) -> int:
    """The key of the bucket after the one starting at ``key``."""
    unit, fixed = rule.interval.unit, rule.interval.fixed_ms
    if rule.fixed_zone and rule.even:
        # No daylight saving: these buckets are all one step long (see ``bucket_of``).
        return key + rule.step_ms
    if fixed is not None or unit in UNIT_MS:
        step = fixed or UNIT_MS[unit or "minute"]
        candidate = bucket_of(key + step, rule)
        return candidate if candidate > key else bucket_of(key + 2 * step, rule)
    assert unit is not None
    local = datetime.fromtimestamp((key - rule.offset_ms) / 1000, tz=UTC).astimezone(rule.zone)
    following = _add_unit(local.replace(tzinfo=None), unit)
    millis = int((following - datetime(1970, 1, 1)).total_seconds() * 1000)
    return bucket_of(_local_to_utc(millis, rule.zone) + rule.offset_ms, rule)

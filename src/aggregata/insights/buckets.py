"""Time buckets of an insight: which bucket a row falls in (SQL) and the bucket list (Python).

Buckets are real intervals of time in the request's time zone, so they are DST-correct:
a day in Europe/Berlin is 23 or 25 hours long around the clock changes, and "hour" buckets
are the zone's hours.

How a row is keyed is split in two steps, because rolling windows (``dau``/``wau``/``mau``)
need the first step on its own:

* the *unit*: the local calendar date (``day`` and coarser intervals) or the start of the
  minute/hour as epoch milliseconds (``minute``/``hour``);
* the *bucket* of a unit: the first day of its week/month/quarter/year (or itself).

Sub-day units are computed on epoch milliseconds shifted by the zone's offset modulo the
step (``r``), so hour buckets of a zone at UTC+5:30 start at :30 UTC. DST shifts are whole
hours in every zone in use today except Australia/Lord_Howe (30 minutes), so ``r`` is
constant over a range; Lord_Howe's hour buckets are off by 30 minutes for half a year.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.sql.aggs.functions import EpochMillis
from aggregata.sql.dialects import LocalDate, StartOfDate
from aggregata.sql.params import Params

Interval = Literal["minute", "hour", "day", "week", "month", "quarter", "year"]
INTERVALS: tuple[str, ...] = ("minute", "hour", "day", "week", "month", "quarter", "year")
SUB_DAY_MS = {"minute": 60_000, "hour": 3_600_000}
WEEK_STARTS = {"monday": 0, "sunday": 6}
MAX_BUCKETS = 10_000

Key = date | int


@dataclass(frozen=True)
class Bucket:
    """One bucket: its UTC start and exclusive end, the SQL key of its rows, its label."""

    start: datetime
    end: datetime
    key: Key
    label: str


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def epoch_ms(instant: datetime) -> int:
    return int((instant - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def from_epoch_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class Bucketing:
    """The buckets of one interval in one time zone (``week_start``: 0 Monday, 6 Sunday)."""

    interval: str
    tz: ZoneInfo
    week_start: int = 0

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise BadRequest(f"unknown interval [{self.interval}]; use one of {list(INTERVALS)}")

    @property
    def sub_day(self) -> bool:
        return self.interval in SUB_DAY_MS

    @property
    def step_ms(self) -> int:
        """Length of a sub-day unit in milliseconds (minute or hour)."""
        return SUB_DAY_MS[self.interval] if self.sub_day else 86_400_000

    def offset_ms(self, at: datetime) -> int:
        """``r``: the zone's UTC offset at ``at`` modulo the sub-day step."""
        offset = at.astimezone(self.tz).utcoffset() or timedelta(0)
        return int(offset / timedelta(milliseconds=1)) % self.step_ms

    # -- SQL ---------------------------------------------------------------------------------

    def unit_sql(self, ts: exp.Expr, at: datetime) -> exp.Expr:
        """The unit of instant ``ts``: local date, or sub-day start as epoch milliseconds."""
        if not self.sub_day:
            return LocalDate(this=ts, zone=exp.Literal.string(self.tz.key))
        ms = EpochMillis(this=ts)
        shifted = exp.Paren(this=exp.Add(this=ms, expression=exp.Literal.number(self.offset_ms(at))))
        return exp.Sub(
            this=ms.copy(),
            expression=exp.Paren(this=exp.Mod(this=shifted, expression=exp.Literal.number(self.step_ms))),
        )

    def bucket_of_unit_sql(self, unit: exp.Expr) -> exp.Expr:
        """The bucket key of a unit (``unit_sql``'s value)."""
        if self.interval in ("minute", "hour", "day"):
            return unit
        if self.interval == "week" and self.week_start:
            shift = exp.Literal.number((7 - self.week_start) % 7)
            moved = exp.Add(this=unit, expression=shift)
            start = StartOfDate(this=moved, unit=exp.var("week"))
            return exp.Sub(this=start, expression=shift.copy())
        return StartOfDate(this=unit, unit=exp.var(self.interval))

    def key_sql(self, ts: exp.Expr, at: datetime) -> exp.Expr:
        """The bucket key of instant ``ts`` (``at``: any instant of the range, for ``r``)."""
        return self.bucket_of_unit_sql(self.unit_sql(ts, at))

    def unit_literal(self, key: Key, params: Params) -> exp.Expr:
        """A unit value (date or epoch ms) as a bound parameter of the unit's SQL type."""
        if isinstance(key, date):
            return exp.cast(params.bind(key.isoformat()), "DATE")
        return params.bind(key)

    def unit_plus(self, unit: exp.Expr, steps: exp.Expr) -> exp.Expr:
        """``unit`` moved by ``steps`` units (days, or sub-day steps)."""
        if not self.sub_day:
            return exp.Add(this=unit, expression=exp.cast(steps, "INT"))
        return exp.Add(this=unit, expression=exp.Mul(this=steps, expression=exp.Literal.number(self.step_ms)))

    # -- Python ------------------------------------------------------------------------------

    def unit_key(self, instant: datetime) -> Key:
        """What ``unit_sql`` yields for ``instant``."""
        if not self.sub_day:
            return instant.astimezone(self.tz).date()
        ms = epoch_ms(instant)
        return ms - (ms + self.offset_ms(instant)) % self.step_ms

    def unit_start(self, key: Key) -> datetime:
        if isinstance(key, date):
            return local_midnight(key, self.tz)
        return from_epoch_ms(key)

    def next_unit(self, key: Key) -> Key:
        if isinstance(key, date):
            return key + timedelta(days=1)
        return key + self.step_ms

    def bucket_key(self, instant: datetime) -> Key:
        """The key of the bucket holding ``instant``."""
        unit = self.unit_key(instant)
        if isinstance(unit, int) or self.interval == "day":
            return unit
        if self.interval == "week":
            return unit - timedelta(days=(unit.weekday() - self.week_start) % 7)
        if self.interval == "month":
            return unit.replace(day=1)
        if self.interval == "quarter":
            return date(unit.year, (unit.month - 1) // 3 * 3 + 1, 1)
        return date(unit.year, 1, 1)

    def next_key(self, key: Key) -> Key:
        if isinstance(key, int):
            return key + self.step_ms
        if self.interval == "day":
            return key + timedelta(days=1)
        if self.interval == "week":
            return key + timedelta(days=7)
        return _add_months(key, {"month": 1, "quarter": 3, "year": 12}[self.interval])

    def start_of(self, key: Key) -> datetime:
        return self.unit_start(key)

    def floor(self, instant: datetime) -> datetime:
        """Start of the bucket holding ``instant``."""
        return self.start_of(self.bucket_key(instant))

    def end_of(self, instant: datetime) -> datetime:
        """End of the bucket holding ``instant``."""
        return self.start_of(self.next_key(self.bucket_key(instant)))

    def ceil(self, instant: datetime) -> datetime:
        """``instant`` itself when it starts a bucket, else the end of its bucket."""
        start = self.floor(instant)
        return start if start == instant else self.start_of(self.next_key(self.bucket_key(instant)))

    def label(self, start: datetime) -> str:
        return start.astimezone(self.tz).isoformat()

    def buckets(self, start: datetime, end: datetime) -> list[Bucket]:
        """Every bucket overlapping ``[start, end)``; 400 past ``MAX_BUCKETS``."""
        out: list[Bucket] = []
        for key in self._keys(start, end):
            if len(out) >= MAX_BUCKETS:
                raise BadRequest(
                    f"the date range has more than {MAX_BUCKETS} [{self.interval}] buckets;"
                    " use a coarser interval or a shorter range"
                )
            b_start, b_end = self.start_of(key), self.start_of(self.next_key(key))
            out.append(Bucket(b_start, b_end, key, self.label(b_start)))
        return out

    def _keys(self, start: datetime, end: datetime) -> Iterator[Key]:
        if end <= start:
            return
        key = self.bucket_key(start)
        while self.start_of(key) < end:
            yield key
            key = self.next_key(key)

    def check_offsets(self, start: datetime, end: datetime) -> None:
        """Sub-day buckets need one ``r`` for the whole range (see the module docstring)."""
        if not self.sub_day:
            return
        r = self.offset_ms(start)
        probe = start
        while probe < end:
            if self.offset_ms(probe) != r:
                raise BadRequest(
                    f"time zone [{self.tz.key}] changes its offset by a fraction of an"
                    f" {self.interval} in this range; use a day or coarser interval"
                )
            probe += timedelta(days=7)


def week_start(name: str) -> int:
    try:
        return WEEK_STARTS[name.lower()]
    except KeyError:
        raise BadRequest(f"unknown week_start [{name}]; use monday or sunday") from None

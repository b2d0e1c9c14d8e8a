"""Elasticsearch date parsing and date math, plus PostHog-style relative dates.

Pure functions: no IO and no clock reads. ``now`` is always passed in so that a whole
request (and its tests) sees one consistent instant. Every result is an aware UTC datetime.

Rounding direction follows Elasticsearch, because the same expression must select the same
documents here as there:

* range query: ``gt`` -> round up, ``gte`` -> round down, ``lt`` -> round down,
  ``lte`` -> round up. Rounding up moves to the last millisecond of the unit, so
  ``lte: now/d`` includes the whole day and ``gt: now/d`` starts at the next day.
* ``date_range`` aggregation: ``from`` and ``to`` both round down. ``from`` is inclusive and
  ``to`` exclusive, so ``{"to": "now-10M/M"}`` means "< start of that month" (ES reference,
  date range aggregation). ``round_up_for`` encodes both tables.

Further Elasticsearch rules kept on purpose:

* Arithmetic and rounding happen in the request time zone: ``d``/``w``/``M``/``y`` move the
  wall clock (Java ``ZonedDateTime.plusDays``), ``h``/``m``/``s`` move the instant. Month and
  year steps clamp the day (Jan 31 + 1M = Feb 29). ``/w`` rounds to Monday 00:00.
* A plain date (no ``now``, no ``||``) parsed with rounding up fills its *missing* time
  components with their maximum (23:59:59.999), month/day with 01, so ``lte: 2024-03-01``
  includes that whole day. A date anchor before ``||`` is never rounded up.
* ``+d`` without a number means ``+1d``; ``/1d`` is allowed, ``/2d`` is not.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

__all__ = ["DateMathError", "parse_date", "parse_relative", "resolve", "round_up_for"]


class DateMathError(ValueError):
    """A date or date-math expression that cannot be evaluated; the message names the input."""


DEFAULT_FORMAT = "strict_date_optional_time||epoch_millis"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_UNITS = "yMwdhHms"
_SECONDS = {"h": 3600, "H": 3600, "m": 60, "s": 1}
_OFFSET_RX = r"[Zz]|[+-]\d{2}(?::?\d{2})?"
_EPOCH_RX = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
_ROUND_UP = {"gt": True, "gte": False, "lt": False, "lte": True, "from": False, "to": False}


def _iso_regex(two: str) -> re.Pattern[str]:
    """ISO-8601 as ``(strict_)date_optional_time``: every component after the year optional."""
    return re.compile(
        rf"(?P<y>\d{{4}})(?:-(?P<mo>{two})(?:-(?P<d>{two})"
        rf"(?:[Tt ](?P<h>{two})(?::(?P<mi>{two})(?::(?P<s>{two})(?:[.,](?P<f>\d{{1,9}}))?)?)?"
        rf"(?P<off>{_OFFSET_RX})?)?)?)?",
        re.ASCII,
    )


_ISO_STRICT = _iso_regex(r"\d{2}")
_ISO_LENIENT = _iso_regex(r"\d{1,2}")
# Built-in Elasticsearch format names expressed as Java patterns (``strict_`` prefix optional).
_NAMED = {
    **dict.fromkeys(("date", "year_month_day"), "yyyy-MM-dd"),
    "year_month": "yyyy-MM",
    "year": "yyyy",
    "date_hour": "yyyy-MM-dd'T'HH",
    "date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    **dict.fromkeys(
        ("date_hour_minute_second_millis", "date_hour_minute_second_fraction"), "yyyy-MM-dd'T'HH:mm:ss.SSS"
    ),
    "date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    "date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssZ",
    "basic_date": "yyyyMMdd",
    "basic_date_time": "yyyyMMdd'T'HHmmss.SSSZ",
    "basic_date_time_no_millis": "yyyyMMdd'T'HHmmssZ",
}
_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)
_FIELDS = {"y": "y", "u": "y", "M": "mo", "d": "d", "H": "h", "m": "mi", "s": "s", "S": "f"}


@functools.lru_cache(maxsize=256)
def _compile_pattern(pattern: str, lenient: bool) -> re.Pattern[str]:
    """Translate a Java/Joda pattern (yyyy MM dd HH mm ss SSS Z 'lit') into a regex with named groups."""
    parts: list[str] = []
    seen: set[str] = set()
    for tok in _TOKEN.finditer(pattern):
        text, letter = tok.group(0), tok.group(1)
        if text.startswith("'"):
            parts.append(re.escape(text[1:-1].replace("''", "'") or "'"))
            continue
        if letter is None:
            parts.append(re.escape(text))
            continue
        n = len(text)
        if letter in "ZXx":
            group, rx = "off", _OFFSET_RX
        elif letter in "yu" and n in (1, 4):
            group, rx = "y", r"\d{4}" if n == 4 else r"\d{1,4}"
        elif letter == "S":
            group, rx = "f", r"\d{1,9}"
        elif letter in _FIELDS and n <= 2 and letter not in "yu":
            group, rx = _FIELDS[letter], r"\d{1,2}" if n == 1 or lenient else r"\d{2}"
        else:
            raise DateMathError(f"unsupported date format [{pattern}]: pattern letters [{text}]")
        if group in seen:
            raise DateMathError(f"unsupported date format [{pattern}]: field [{text}] repeated")
        seen.add(group)
        parts.append(f"(?P<{group}>{rx})")
    if "y" not in seen:
        raise DateMathError(f"unsupported date format [{pattern}]: it has no year")
    return re.compile("".join(parts), re.ASCII)


def _compile_format(alt: str) -> str | re.Pattern[str]:
    """One ``||`` alternative -> "epoch_millis"/"epoch_second" or a regex of date components."""
    if alt in ("epoch_millis", "epoch_second"):
        return alt
    if alt in ("strict_date_optional_time", "strict_date_optional_time_nanos"):
        return _ISO_STRICT
    if alt in ("date_optional_time", "date_optional_time_nanos"):
        return _ISO_LENIENT
    strict = alt.startswith("strict_")
    name = alt.removeprefix("strict_")
    if name in _NAMED:
        return _compile_pattern(_NAMED[name], not strict and not name.startswith("basic_"))
    if not alt or re.fullmatch(r"[a-z_]+", alt):
        raise DateMathError(f"unknown date format [{alt}]")
    return _compile_pattern(alt, False)


def _offset(text: str) -> tzinfo:
    """A parsed ``Z``/``+01``/``+0100``/``+01:00`` offset; ES bounds offsets to +-18h."""
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    if delta > timedelta(hours=18) or int(digits[2:] or 0) >= 60:
        raise ValueError(f"offset {text} out of range")
    return timezone(-delta if text[0] == "-" else delta)


def _build(parts: dict[str, str | None], tz: tzinfo, round_up: bool) -> datetime:
    """Assemble matched components; missing time parts are 0, or their maximum when rounding up."""

    def num(key: str, low: int, high: int) -> int:
        value = parts.get(key)
        return int(value) if value is not None else (high if round_up else low)

    frac = parts.get("f")
    micros = int(frac[:6].ljust(6, "0")) if frac else (999_000 if round_up else 0)
    off = parts.get("off")
    year, month, day = num("y", 0, 0), num("mo", 1, 1), num("d", 1, 1)
    hour, minute, second = num("h", 0, 23), num("mi", 0, 59), num("s", 0, 59)
    zone = _offset(off) if off else tz
    return datetime(year, month, day, hour, minute, second, micros, tzinfo=zone).astimezone(UTC)


def _from_epoch(text: str, unit: str) -> datetime:
    """Epoch text to UTC, exact to the microsecond (no float round trip)."""
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    scale = 1000 if unit == "epoch_millis" else 1_000_000
    micros = int(whole) * scale + int((frac + "000000")[: len(str(scale)) - 1])
    return _EPOCH + timedelta(microseconds=sign * micros)


def _parse(value: str | int | float, tz: tzinfo, fmt: str | None, round_up: bool) -> datetime:
    """parse_date with ES round-up filling of missing components (see module docstring)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DateMathError(f"cannot parse [{value!r}] as a date: expected a string or a number")
    fmt_text = fmt or DEFAULT_FORMAT
    alts = [a.strip() for a in fmt_text.split("||")]
    compiled = [_compile_format(a) for a in alts]
    try:
        if not isinstance(value, str):
            seconds = "epoch_second" in alts and "epoch_millis" not in alts
            return _EPOCH + timedelta(seconds=value) if seconds else _EPOCH + timedelta(milliseconds=value)
        reason = "no format matched"
        for kind in compiled:
            if isinstance(kind, str):
                if _EPOCH_RX.fullmatch(value):
                    return _from_epoch(value, kind)
                continue
            match = kind.fullmatch(value)
            if match is None:
                continue
            try:
                return _build(match.groupdict(), tz, round_up)
            except ValueError as exc:
                reason = str(exc)
    except (OverflowError, ValueError) as exc:
        raise DateMathError(f"failed to parse date [{value}]: out of range ({exc})") from None
    raise DateMathError(f"failed to parse date field [{value}] with format [{fmt_text}]: {reason}")


def parse_date(value: str | int | float, *, tz: tzinfo = UTC, fmt: str | None = None) -> datetime:
    """Parse a date value as Elasticsearch does for a date field; returns an aware datetime in UTC.

    ``fmt`` is an ES format, ``||``-separated alternatives tried in order; the default is the
    ES mapping default ``strict_date_optional_time||epoch_millis`` (so "2024" is a year and
    "1700000000000" is epoch millis). Numbers are epoch millis (seconds if the format offers
    ``epoch_second`` but not ``epoch_millis``). Values without an offset are local to ``tz``;
    an explicit offset in the value wins. Fractions beyond microseconds are truncated.
    """
    return _parse(value, tz, fmt, round_up=False)


def _utc(now: datetime) -> datetime:
    """Callers pass ``now``; a naive one is taken as UTC rather than the host's zone."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _local(instant: datetime, tz: tzinfo) -> tuple[datetime, timedelta | None]:
    local = instant.astimezone(tz)
    return local.replace(tzinfo=None), local.utcoffset()


def _attach(naive: datetime, tz: tzinfo, prefer: timedelta | None) -> datetime:
    """Wall clock -> UTC like Java ``ZonedDateTime``: a gap shifts forward by its length, an
    overlap keeps the previous offset when it is still valid, else takes the earlier one."""
    early = naive.replace(tzinfo=tz, fold=0)
    late = naive.replace(tzinfo=tz, fold=1)
    if prefer is not None and early.utcoffset() != prefer and late.utcoffset() == prefer:
        back = late.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        if back == naive:  # both readings exist: an overlap, not a gap
            return late.astimezone(UTC)
    return early.astimezone(UTC)


def _shift_months(naive: datetime, months: int) -> datetime:
    total = naive.year * 12 + naive.month - 1 + months
    year, month0 = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise OverflowError(f"year {year} is out of range")
    day = min(naive.day, calendar.monthrange(year, month0 + 1)[1])
    return naive.replace(year=year, month=month0 + 1, day=day)


def _add(instant: datetime, n: int, unit: str, tz: tzinfo) -> datetime:
    """Add n units: hours and below on the instant, days and above on the wall clock in tz."""
    if unit in _SECONDS:
        return instant + timedelta(seconds=n * _SECONDS[unit])
    naive, offset = _local(instant, tz)
    if unit in "yM":
        naive = _shift_months(naive, n * 12 if unit == "y" else n)
    else:
        naive = naive + timedelta(days=n * 7 if unit == "w" else n)
    return _attach(naive, tz, offset)


def _floor(naive: datetime, unit: str) -> datetime:
    if unit == "s":
        return naive.replace(microsecond=0)
    if unit == "m":
        return naive.replace(second=0, microsecond=0)
    if unit in "hH":
        return naive.replace(minute=0, second=0, microsecond=0)
    day = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        return day - timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1) if unit == "y" else day


def _round(instant: datetime, unit: str, tz: tzinfo, up: bool) -> datetime:
    """Start of the unit in tz, or (up) the start of the next unit minus one millisecond."""
    naive, offset = _local(instant, tz)
    start = _attach(_floor(naive, unit), tz, offset)
    return _add(start, 1, unit, tz) - _ONE_MS if up else start


def _apply_math(math: str, instant: datetime, tz: tzinfo, round_up: bool, expr: str) -> datetime:
    """Evaluate ``+N<u>``, ``-N<u>`` and ``/<u>`` left to right, with ES's error cases."""
    i = 0
    while i < len(math):
        op = math[i]
        if op not in "+-/":
            raise DateMathError(f"invalid date math [{expr}]: operator [{op}] is not +, - or /")
        j = i + 1
        while j < len(math) and math[j] in "0123456789":
            j += 1
        if j >= len(math):
            raise DateMathError(f"invalid date math [{expr}]: truncated after [{math[i:]}]")
        num = int(math[i + 1 : j]) if j > i + 1 else 1
        unit = math[j]
        if unit not in _UNITS:
            raise DateMathError(f"invalid date math [{expr}]: unit [{unit}] is not one of {_UNITS}")
        if op == "/" and num != 1:
            raise DateMathError(f"invalid date math [{expr}]: rounding `/` takes a single unit")
        try:
            if op == "/":
                instant = _round(instant, unit, tz, round_up)
            else:
                instant = _add(instant, -num if op == "-" else num, unit, tz)
        except (OverflowError, ValueError):
            raise DateMathError(f"date math [{expr}] is out of the supported date range") from None
        i = j + 1
    return instant


def resolve(
    expr: str | int | float,
    *,
    now: datetime,
    tz: tzinfo = UTC,
    round_up: bool = False,
    fmt: str | None = None,
) -> datetime:
    """Evaluate an Elasticsearch date-math expression to an aware UTC datetime.

    ``now[ops]``, ``<date>||[ops]`` or a plain date/number (see ``parse_date``). ``round_up``
    is the bound's direction (``round_up_for``): it applies to every ``/unit`` and to the
    missing components of a plain date, never to a ``||`` anchor.
    """
    if not isinstance(expr, str):
        return _parse(expr, tz, fmt, round_up)
    text = expr.strip()
    if text.startswith("now"):
        return _apply_math(text[3:], _utc(now), tz, round_up, expr)
    head, sep, math = text.partition("||")
    if not sep:
        return _parse(text, tz, fmt, round_up)
    return _apply_math(math, _parse(head, tz, fmt, round_up=False), tz, round_up, expr)


def round_up_for(op: str) -> bool:
    """Rounding direction of a bound: range query ``gt``/``lte`` up, ``gte``/``lt`` down;
    ``date_range`` aggregation ``from``/``to`` both down (``to`` is exclusive). The legacy
    range-query ``from``/``to`` + ``include_*`` must be mapped to gt/gte/lt/lte by the caller."""
    try:
        return _ROUND_UP[op]
    except KeyError:
        raise DateMathError(f"unknown range bound [{op}]: expected one of {sorted(_ROUND_UP)}") from None


_RELATIVE = re.compile(r"-(\d+)([hdwmyM])|([dwmy])Start", re.ASCII)
_POSTHOG_UNIT = {"d": "d", "w": "w", "m": "M", "y": "y"}


def parse_relative(expr: str, *, now: datetime, tz: tzinfo) -> datetime:
    """PostHog-style relative dates used by insights ("date_from": "-7d"); aware UTC result.

    Boundaries are local to ``tz`` so "-7d" means the same calendar days the user sees:

    * ``-Nh`` now minus N hours, truncated to the hour; ``-NM`` now minus N minutes,
      truncated to the minute (PostHog: capital M is minutes).
    * ``-Nd`` / ``-Nw`` local midnight N days / 7*N days ago (not the week start).
    * ``-Nm`` / ``-Ny`` N months / years ago (day clamped), at local midnight (m is months).
    * ``dStart`` / ``wStart`` / ``mStart`` / ``yStart``: start of the current local day,
      ISO week (Monday), month, year.
    * anything else is an absolute ISO date (``parse_date`` in ``tz``, no epoch numbers, so
      "-7" is an error rather than 7 ms before 1970); "all" is the caller's job.
    """
    text = expr.strip()
    match = _RELATIVE.fullmatch(text)
    if match is None:
        try:
            return parse_date(text, tz=tz, fmt="strict_date_optional_time")
        except DateMathError:
            raise DateMathError(
                f"invalid relative date [{expr}]: expected -N<h|d|w|m|y|M>, "
                "<d|w|m|y>Start or an absolute date"
            ) from None
    instant = _utc(now)
    try:
        if match.group(3):
            return _round(instant, _POSTHOG_UNIT[match.group(3)], tz, up=False)
        n, unit = int(match.group(1)), match.group(2)
        if unit == "h":
            return _round(instant - timedelta(hours=n), "h", tz, up=False)
        if unit == "M":
            return _round(instant - timedelta(minutes=n), "m", tz, up=False)
        return _round(_add(instant, -n, _POSTHOG_UNIT[unit], tz), "d", tz, up=False)
    except (OverflowError, ValueError):
        raise DateMathError(f"relative date [{expr}] is out of the supported date range") from None

"""Value formatting as Elasticsearch prints it: Java doubles, date patterns, decimal patterns.

Aggregation responses carry ``key_as_string``/``value_as_string`` and string keys such as
``"100.0-200.0"`` or percentile names ``"99.0"``; clients match on those strings, so they
follow Java's rendering (``Double.toString``, ``DateTimeFormatter`` patterns, a subset of
``DecimalFormat``) rather than Python's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

DEFAULT_DATE_FORMAT = "strict_date_optional_time"

_NAMED = {
    "strict_date_optional_time": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "date_optional_time": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "strict_date_optional_time_nanos": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "strict_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "strict_date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "date": "yyyy-MM-dd",
    "strict_date": "yyyy-MM-dd",
    "basic_date": "yyyyMMdd",
    "basic_date_time": "yyyyMMdd'T'HHmmss.SSSXX",
    "date_hour": "yyyy-MM-dd'T'HH",
    "strict_date_hour": "yyyy-MM-dd'T'HH",
    "date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "strict_date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "strict_date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "strict_date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "hour_minute": "HH:mm",
    "hour_minute_second": "HH:mm:ss",
    "year_month_day": "yyyy-MM-dd",
    "strict_year_month_day": "yyyy-MM-dd",
    "year_month": "yyyy-MM",
    "strict_year_month": "yyyy-MM",
    "year": "yyyy",
    "strict_year": "yyyy",
    "week_date": "xxxx-'W'ww-e",
}
_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.DOTALL)
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def java_double(value: float) -> str:
    """``Double.toString``: ``1.0``, ``0.001``, ``1.0E7``, ``1.5E-5`` (shortest round-trip digits)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if str(value).startswith("-") else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "." in text else text + ".0"
    parts = Decimal(repr(abs(float(value)))).as_tuple()
    digits = "".join(str(d) for d in parts.digits)
    assert isinstance(parts.exponent, int)
    exponent = parts.exponent + len(digits) - 1
    body = digits[0] + "." + (digits[1:].rstrip("0") or "0")
    return f"{'-' if value < 0 else ''}{body}E{exponent}"


def date_pattern(fmt: str | None) -> str:
    """The Java pattern behind a format name (``||`` alternatives print with the first)."""
    name = (fmt or DEFAULT_DATE_FORMAT).split("||")[0].strip()
    return _NAMED.get(name, name)


def format_date(millis: int | float, fmt: str | None = None, zone: tzinfo = UTC) -> str:
    """Epoch milliseconds rendered with an Elasticsearch date format in ``zone``."""
    name = (fmt or DEFAULT_DATE_FORMAT).split("||")[0].strip()
    if name == "epoch_millis":
        return str(int(millis))
    if name == "epoch_second":
        return str(int(millis // 1000))
    try:
        local = (_EPOCH + timedelta(milliseconds=int(millis))).astimezone(zone)
    except OverflowError:  # past year 9999 (a sum of dates): the number itself
        return str(int(millis))
    return "".join([part if isinstance(part, str) else part(local) for part in _compiled(date_pattern(name))])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Part = str | Callable[[datetime], str]


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> tuple[_Part, ...]:
    """A Java date pattern as literal text and per-field renderers (patterns repeat: parse once)."""
    return tuple(_part(token.group(0)) for token in _TOKEN.finditer(pattern))


def _offset(local: datetime, colon: bool, z_for_zero: bool) -> str:
    delta = local.utcoffset() or timedelta(0)
    if z_for_zero and not delta:
        return "Z"
    total = int(delta.total_seconds() // 60)
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}:{minutes:02d}" if colon else f"{sign}{hours:02d}{minutes:02d}"


_FIELDS: dict[str, Callable[[datetime], int]] = {
    "M": lambda d: d.month,
    "d": lambda d: d.day,
    "H": lambda d: d.hour,
    "m": lambda d: d.minute,
    "s": lambda d: d.second,
    "h": lambda d: (d.hour % 12) or 12,
    "D": lambda d: d.timetuple().tm_yday,
    "w": lambda d: d.isocalendar()[1],
    "e": lambda d: d.isoweekday(),
}


def _part(token: str) -> _Part:
    """One token of a pattern: its text, or how to render it from a date."""
    if token.startswith("'"):
        return token[1:-1].replace("''", "'") if len(token) > 2 else "'"
    letter, n = token[0], len(token)
    if not letter.isalpha():
        return token
    if letter in "yu":
        return (lambda d: f"{d.year % 100:02d}") if n == 2 else (lambda d: str(d.year).zfill(n))
    if letter == "x" and n == 4:  # week-based year
        return lambda d: str(d.isocalendar()[0]).zfill(4)
    if letter == "M" and n >= 3:
        return (lambda d: _MONTHS[d.month - 1][:3]) if n == 3 else (lambda d: _MONTHS[d.month - 1])
    if letter == "E":
        return (lambda d: _DAYS[d.weekday()][:3]) if n <= 3 else (lambda d: _DAYS[d.weekday()])
    field = _FIELDS.get(letter)
    if field is not None:
        return lambda d: str(field(d)).zfill(n)
    if letter == "S":
        return lambda d: f"{d.microsecond:06d}"[:n].ljust(n, "0")
    if letter == "a":
        return lambda d: "AM" if d.hour < 12 else "PM"
    if letter == "X":
        if n == 1:
            return lambda d: _offset(d, False, True)[:3]
        return lambda d: _offset(d, colon=n >= 3, z_for_zero=True)
    if letter == "x":
        return lambda d: _offset(d, colon=n >= 3, z_for_zero=False)
    if letter == "Z":
        return lambda d: _offset(d, colon=n == 5, z_for_zero=n == 5)
    return token


def format_number(value: float, pattern: str | None) -> str:
    """A number with a ``DecimalFormat`` pattern (``0.00``, ``#,##0.##``); none: Java's double."""
    if pattern is None or not pattern.strip():
        return java_double(float(value))
    core = pattern.split(";")[0]
    prefix = re.match(r"^[^#0,.]*", core)
    suffix = re.search(r"[^#0,.]*$", core)
    head = prefix.group(0) if prefix else ""
    tail = suffix.group(0) if suffix else ""
    body = core[len(head) : len(core) - len(tail)]
    whole, _, fraction = body.partition(".")
    min_frac = fraction.count("0")
    max_frac = len(fraction)
    min_int = whole.replace(",", "").count("0")
    group = len(whole) - whole.rfind(",") - 1 if "," in whole else 0
    quantum = Decimal(1).scaleb(-max_frac)
    rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN)
    sign = "-" if rounded < 0 else ""
    text = f"{abs(rounded):f}"
    int_part, _, frac_part = text.partition(".")
    frac_part = frac_part.rstrip("0").ljust(min_frac, "0")
    int_part = int_part.lstrip("0").rjust(min_int, "0")
    if group:
        chunks: list[str] = []
        while len(int_part) > group:
            chunks.insert(0, int_part[-group:])
            int_part = int_part[:-group]
        int_part = ",".join([int_part, *chunks]) if int_part else ",".join(chunks)
    number = int_part + ("." + frac_part if frac_part else "")
    return f"{head}{sign}{number or '0'}{tail}"

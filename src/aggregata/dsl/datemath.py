"""Elasticsearch date parsing and date math (interim version; see tests/dsl)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, tzinfo


class DateMathError(ValueError):
    pass


def parse_date(value: str | int | float, *, tz: tzinfo = UTC, fmt: str | None = None) -> datetime:
    if isinstance(value, bool):
        raise DateMathError(f"cannot parse {value!r} as a date")
    if isinstance(value, (int, float)):
        scale = 1 if fmt == "epoch_second" else 1000
        return datetime.fromtimestamp(value / scale, tz=UTC)
    text = value.strip()
    if fmt and "epoch" in fmt and re.fullmatch(r"-?\d+(\.\d+)?", text):
        return parse_date(float(text), fmt="epoch_second" if fmt == "epoch_second" else None)
    if re.fullmatch(r"\d{4}", text):
        text += "-01-01"
    elif re.fullmatch(r"\d{4}-\d{2}", text):
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DateMathError(f"failed to parse date [{value}]") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


_OP = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def _add(dt: datetime, sign: int, n: int, unit: str) -> datetime:
    if unit in "yM":
        months = n * (12 if unit == "y" else 1) * sign
        total = dt.year * 12 + dt.month - 1 + months
        year, month = divmod(total, 12)
        day = min(dt.day, calendar.monthrange(year, month + 1)[1])
        return dt.replace(year=year, month=month + 1, day=day)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    if unit in "wd":
        return dt + timedelta(days=sign * n * (7 if unit == "w" else 1))
    return (dt.astimezone(UTC) + timedelta(seconds=sign * n * seconds)).astimezone(dt.tzinfo)


def _floor(dt: datetime, unit: str) -> datetime:
    if unit == "y":
        return dt.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        d = dt - timedelta(days=dt.weekday())
        return d.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in "hH":
        return dt.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return dt.replace(second=0, microsecond=0)
    return dt.replace(microsecond=0)


def _local(dt: datetime, tz: tzinfo) -> datetime:
    return dt.astimezone(tz).replace(tzinfo=None)


def resolve(
    expr: str | int | float,
    *,
    now: datetime,
    tz: tzinfo = UTC,
    round_up: bool = False,
    fmt: str | None = None,
) -> datetime:
    if not isinstance(expr, str):
        return parse_date(expr, tz=tz, fmt=fmt)
    if expr.startswith("now"):
        anchor, ops = now, expr[3:]
    elif "||" in expr:
        head, ops = expr.split("||", 1)
        anchor = parse_date(head, tz=tz, fmt=fmt)
    else:
        return parse_date(expr, tz=tz, fmt=fmt)
    local = _local(anchor, tz)
    pos = 0
    while pos < len(ops):
        m = _OP.match(ops, pos)
        if m is None:
            raise DateMathError(f"invalid date math [{expr}]")
        if m.group(4):
            unit = m.group(4)
            start = _floor(local, unit)
            if round_up:
                nxt = (
                    _add(start, 1, 1, unit)
                    if unit in "yMwd"
                    else start + timedelta(seconds={"h": 3600, "H": 3600, "m": 60, "s": 1}[unit])
                )
                local = nxt - timedelta(milliseconds=1)
            else:
                local = start
        else:
            local = _add(local, 1 if m.group(1) == "+" else -1, int(m.group(2)), m.group(3))
        pos = m.end()
    return local.replace(tzinfo=tz).astimezone(UTC) if tz is not UTC else local.replace(tzinfo=UTC)


def round_up_for(op: str) -> bool:
    return op in ("gt", "lte")

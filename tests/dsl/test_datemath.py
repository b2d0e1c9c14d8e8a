"""Elasticsearch date parsing, date math and PostHog relative dates (aggregata.dsl.datemath)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregata.dsl.datemath import DateMathError, parse_date, parse_relative, resolve, round_up_for

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2024, 3, 13, 15, 42, 17, 123456, tzinfo=UTC)  # a Wednesday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- parse_date -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", utc(2024, 1, 1)),
        ("2024-03", utc(2024, 3, 1)),
        ("2024-03-01", utc(2024, 3, 1)),
        ("2024-03-01T10", utc(2024, 3, 1, 10)),
        ("2024-03-01T10:00", utc(2024, 3, 1, 10)),
        ("2024-03-01T10:00:05", utc(2024, 3, 1, 10, 0, 5)),
        ("2024-03-01 10:00:05", utc(2024, 3, 1, 10, 0, 5)),
        ("2024-03-01T10:00:05Z", utc(2024, 3, 1, 10, 0, 5)),
        ("2024-03-01T10:00:05.5Z", utc(2024, 3, 1, 10, 0, 5, 500000)),
        ("2024-03-01T10:00:05.123Z", utc(2024, 3, 1, 10, 0, 5, 123000)),
        ("2024-03-01T10:00:05.123456Z", utc(2024, 3, 1, 10, 0, 5, 123456)),
        ("2024-03-01T10:00:05.123456789Z", utc(2024, 3, 1, 10, 0, 5, 123456)),
        ("2024-03-01T10:00:05+01:00", utc(2024, 3, 1, 9, 0, 5)),
        ("2024-03-01T10:00:05+0100", utc(2024, 3, 1, 9, 0, 5)),
        ("2024-03-01T10:00:05-05:30", utc(2024, 3, 1, 15, 30, 5)),
        ("2024-03-01T10:00+01", utc(2024, 3, 1, 9)),
        ("2024-02-29", utc(2024, 2, 29)),
        ("1700000000000", utc(2023, 11, 14, 22, 13, 20)),  # default format falls back to epoch_millis
    ],
)
def test_parse_date_iso_and_default_format(text: str, expected: datetime) -> None:
    result = parse_date(text)
    assert result == expected
    assert result.tzinfo is UTC


def test_naive_values_are_local_to_tz_but_explicit_offsets_win() -> None:
    assert parse_date("2024-07-01T12:00", tz=BERLIN) == utc(2024, 7, 1, 10)
    assert parse_date("2024-01-01", tz=BERLIN) == utc(2023, 12, 31, 23)
    assert parse_date("2024-07-01T12:00Z", tz=BERLIN) == utc(2024, 7, 1, 12)
    assert parse_date("2024-07-01T12:00", tz=timezone(timedelta(hours=-3))) == utc(2024, 7, 1, 15)


def test_naive_time_in_dst_gap_shifts_forward_like_java() -> None:
    # 02:30 does not exist in Berlin on 2024-03-31; Java resolves it to 03:30 CEST.
    assert parse_date("2024-03-31T02:30", tz=BERLIN) == utc(2024, 3, 31, 1, 30)
    # 02:30 exists twice on 2024-10-27; the earlier offset (CEST) is used.
    assert parse_date("2024-10-27T02:30", tz=BERLIN) == utc(2024, 10, 27, 0, 30)


def test_epoch_values() -> None:
    assert parse_date(1_700_000_000_000) == utc(2023, 11, 14, 22, 13, 20)
    assert parse_date(1_700_000_000_123.0) == utc(2023, 11, 14, 22, 13, 20, 123000)
    assert parse_date(0) == utc(1970, 1, 1)
    assert parse_date(-1000) == utc(1969, 12, 31, 23, 59, 59)
    assert parse_date("1700000000000", fmt="epoch_millis") == utc(2023, 11, 14, 22, 13, 20)
    assert parse_date("1700000000000.5", fmt="epoch_millis") == utc(2023, 11, 14, 22, 13, 20, 500)
    assert parse_date("1700000000", fmt="epoch_second") == utc(2023, 11, 14, 22, 13, 20)
    assert parse_date("1700000000.25", fmt="epoch_second") == utc(2023, 11, 14, 22, 13, 20, 250000)
    assert parse_date(1_700_000_000, fmt="epoch_second") == utc(2023, 11, 14, 22, 13, 20)
    # epoch values are absolute: tz does not shift them
    assert parse_date(0, tz=BERLIN) == utc(1970, 1, 1)


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("2024-03-01", "date", utc(2024, 3, 1)),
        ("2024-3-1", "date", utc(2024, 3, 1)),
        ("2024-3-1", "date_optional_time", utc(2024, 3, 1)),
        ("2024-03-01T10:00:00.000Z", "date_time", utc(2024, 3, 1, 10)),
        ("2024-03-01T10:00:00.000+02:00", "strict_date_time", utc(2024, 3, 1, 8)),
        ("2024-03-01", "yyyy-MM-dd", utc(2024, 3, 1)),
        ("2024-03-01 10:11:12", "yyyy-MM-dd HH:mm:ss", utc(2024, 3, 1, 10, 11, 12)),
        ("2024/03/01 10:11:12", "yyyy/MM/dd HH:mm:ss", utc(2024, 3, 1, 10, 11, 12)),
        ("2024/03/01 10:11:12.345", "yyyy/MM/dd HH:mm:ss.SSS", utc(2024, 3, 1, 10, 11, 12, 345000)),
        ("01.03.2024", "dd.MM.yyyy", utc(2024, 3, 1)),
        ("2024-03-01T10:11", "yyyy-MM-dd'T'HH:mm", utc(2024, 3, 1, 10, 11)),
        ("20240301", "basic_date", utc(2024, 3, 1)),
        ("1700000000000", "strict_date_optional_time||epoch_millis", utc(2023, 11, 14, 22, 13, 20)),
        ("2024-03-01", "epoch_millis||yyyy-MM-dd", utc(2024, 3, 1)),
        ("1700000000", "yyyy-MM-dd || epoch_second", utc(2023, 11, 14, 22, 13, 20)),
    ],
)
def test_parse_date_formats(text: str, fmt: str, expected: datetime) -> None:
    assert parse_date(text, fmt=fmt) == expected


def test_named_format_is_strict_where_es_is() -> None:
    with pytest.raises(DateMathError):
        parse_date("2024-3-1", fmt="strict_date")
    with pytest.raises(DateMathError):
        parse_date("2024-3-1")  # default is strict_date_optional_time
    with pytest.raises(DateMathError):
        parse_date("2024-03-01T10:00:00Z", fmt="date")


@pytest.mark.parametrize(
    ("value", "fmt", "fragment"),
    [
        ("not a date", None, "not a date"),
        ("", None, "failed to parse"),
        ("2024-13-01", None, "month must be in 1..12"),
        ("2024-02-30", None, "day is out of range"),
        ("2023-02-29", None, "day is out of range"),
        ("2024-03-01T25:00", None, "hour"),
        ("2024-03-01T10:00+19:00", None, "offset"),
        ("24-03-01", None, "24-03-01"),
        ("2024-03-01", "epoch_millis", "2024-03-01"),
        ("1700000000000", "yyyy-MM-dd", "1700000000000"),
        ("2024-03-01", "yyyy-MMM-dd", "MMM"),
        ("2024-03-01", "no_such_format", "no_such_format"),
        ("2024-03-01", "dd-MM", "no year"),
    ],
)
def test_parse_date_errors_name_the_input(value: str, fmt: str | None, fragment: str) -> None:
    with pytest.raises(DateMathError, match=fragment):
        parse_date(value, fmt=fmt)


@pytest.mark.parametrize("value", [True, None, float("nan"), float("inf"), 10**20, [2024]])
def test_parse_date_rejects_non_dates(value: object) -> None:
    with pytest.raises(DateMathError):
        parse_date(value)  # type: ignore[arg-type]


def test_date_math_error_is_a_value_error() -> None:
    assert issubclass(DateMathError, ValueError)


# --- resolve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "round_up", "expected"),
    [
        ("now", False, NOW),
        ("now", True, NOW),
        ("now-7d", False, utc(2024, 3, 6, 15, 42, 17, 123456)),
        ("now-7d/d", False, utc(2024, 3, 6)),
        ("now-7d/d", True, utc(2024, 3, 6, 23, 59, 59, 999000)),
        ("now/d", False, utc(2024, 3, 13)),
        ("now/d", True, utc(2024, 3, 13, 23, 59, 59, 999000)),
        ("now/M", False, utc(2024, 3, 1)),
        ("now/M", True, utc(2024, 3, 31, 23, 59, 59, 999000)),
        ("now/y", False, utc(2024, 1, 1)),
        ("now/y", True, utc(2024, 12, 31, 23, 59, 59, 999000)),
        ("now/w", False, utc(2024, 3, 11)),  # Monday
        ("now/w", True, utc(2024, 3, 17, 23, 59, 59, 999000)),  # Sunday
        ("now/h", False, utc(2024, 3, 13, 15)),
        ("now/H", True, utc(2024, 3, 13, 15, 59, 59, 999000)),
        ("now/m", False, utc(2024, 3, 13, 15, 42)),
        ("now/m", True, utc(2024, 3, 13, 15, 42, 59, 999000)),
        ("now/s", False, utc(2024, 3, 13, 15, 42, 17)),
        ("now/s", True, utc(2024, 3, 13, 15, 42, 17, 999000)),
        ("now+1h", False, utc(2024, 3, 13, 16, 42, 17, 123456)),
        ("now+1H-30m+5s", False, utc(2024, 3, 13, 16, 12, 22, 123456)),
        ("now-1M", False, utc(2024, 2, 13, 15, 42, 17, 123456)),
        ("now-1y", False, utc(2023, 3, 13, 15, 42, 17, 123456)),
        ("now+2w", False, utc(2024, 3, 27, 15, 42, 17, 123456)),
        ("now+d", False, utc(2024, 3, 14, 15, 42, 17, 123456)),  # ES: a missing number means 1
        ("now/1d", False, utc(2024, 3, 13)),
        ("now/d+1h", False, utc(2024, 3, 13, 1)),
        ("now/d+1d/d", True, utc(2024, 3, 14, 23, 59, 59, 999000)),
        ("now-10M/M", False, utc(2023, 5, 1)),
    ],
)
def test_resolve_now(expr: str, round_up: bool, expected: datetime) -> None:
    result = resolve(expr, now=NOW, round_up=round_up)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("2024-01-31||+1M", utc(2024, 2, 29)),
        ("2023-01-31||+1M", utc(2023, 2, 28)),
        ("2024-03-31||-1M", utc(2024, 2, 29)),
        ("2024-02-29||+1y", utc(2025, 2, 28)),
        ("2024-02-29||+4y", utc(2028, 2, 29)),
        ("2024-02-29||-1y", utc(2023, 2, 28)),
        ("2024-01-31||+1M+1M", utc(2024, 3, 29)),  # clamping is per step, like Java
        ("2024-01-31||+2M", utc(2024, 3, 31)),
        ("2024-12-31||+1d", utc(2025, 1, 1)),
        ("2024-02-28||+1d", utc(2024, 2, 29)),
        ("2024-03-01T10:00:00Z||", utc(2024, 3, 1, 10)),
        ("2024-03-01||/w", utc(2024, 2, 26)),  # Friday -> Monday of that ISO week
        ("2024-03-04||/w", utc(2024, 3, 4)),  # already Monday
        ("2024-03-03T23:59:59||/w", utc(2024, 2, 26)),  # Sunday belongs to the previous week
        ("2021-01-01||/w", utc(2020, 12, 28)),  # week crossing a year boundary
        ("1709251200000||+1d", utc(2024, 3, 2)),  # epoch anchor
    ],
)
def test_resolve_anchored(expr: str, expected: datetime) -> None:
    assert resolve(expr, now=NOW) == expected


def test_anchor_rounds_up_only_through_math() -> None:
    assert resolve("2024-03-01||/M", now=NOW, round_up=True) == utc(2024, 3, 31, 23, 59, 59, 999000)
    # a || anchor is never filled up by itself: only the explicit rounding counts
    assert resolve("2024-03-01||+1d", now=NOW, round_up=True) == utc(2024, 3, 2)


def test_plain_dates_fill_missing_components_when_rounding_up() -> None:
    # ES "missing date components": time parts take their maximum, month/day take 01.
    assert resolve("2024-03-01", now=NOW, round_up=True) == utc(2024, 3, 1, 23, 59, 59, 999000)
    assert resolve("2024-03", now=NOW, round_up=True) == utc(2024, 3, 1, 23, 59, 59, 999000)
    assert resolve("2024-03-01T10", now=NOW, round_up=True) == utc(2024, 3, 1, 10, 59, 59, 999000)
    assert resolve("2024-03-01T10:15:00", now=NOW, round_up=True) == utc(2024, 3, 1, 10, 15, 0, 999000)
    assert resolve("2024-03-01T10:15:00.5", now=NOW, round_up=True) == utc(2024, 3, 1, 10, 15, 0, 500000)
    assert resolve("2024-03-01", now=NOW, round_up=False) == utc(2024, 3, 1)
    assert resolve("2024-03-01", now=NOW, fmt="yyyy-MM-dd", round_up=True) == utc(
        2024, 3, 1, 23, 59, 59, 999000
    )
    assert resolve("1709251200000", now=NOW, round_up=True) == utc(2024, 3, 1)
    assert resolve(1_709_251_200_000, now=NOW, round_up=True) == utc(2024, 3, 1)


def test_plain_date_in_resolve_is_parse_date() -> None:
    for value in ("2024-03-01T10:00:00+01:00", "2024-07-01", 1_700_000_000_000):
        assert resolve(value, now=NOW, tz=BERLIN) == parse_date(value, tz=BERLIN)


def test_naive_now_is_taken_as_utc() -> None:
    assert resolve("now/d", now=datetime(2024, 3, 13, 15)) == utc(2024, 3, 13)


def test_now_in_another_offset_is_the_same_instant() -> None:
    now = datetime(2024, 3, 13, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    assert resolve("now/d", now=now) == utc(2024, 3, 12)  # 2024-03-12T20:00Z in UTC


# --- resolve in Europe/Berlin across DST ---------------------------------------------------


def test_round_day_in_berlin_on_spring_dst_day() -> None:
    now = utc(2024, 3, 31, 12)
    assert resolve("now/d", now=now, tz=BERLIN) == utc(2024, 3, 30, 23)
    # the day is 23 hours long: its last millisecond is 21:59:59.999Z
    assert resolve("now/d", now=now, tz=BERLIN, round_up=True) == utc(2024, 3, 31, 21, 59, 59, 999000)


def test_round_day_in_berlin_on_autumn_dst_day() -> None:
    now = utc(2024, 10, 27, 12)
    assert resolve("now/d", now=now, tz=BERLIN) == utc(2024, 10, 26, 22)
    # 25 hours long: ends at 22:59:59.999Z
    assert resolve("now/d", now=now, tz=BERLIN, round_up=True) == utc(2024, 10, 27, 22, 59, 59, 999000)


def test_adding_days_across_dst_keeps_wall_clock() -> None:
    # 2024-03-30 10:00 CET -> 2024-03-31 10:00 CEST: 23 hours later
    assert resolve("2024-03-30T10:00||+1d", now=NOW, tz=BERLIN) == utc(2024, 3, 31, 8)
    # 2024-10-26 10:00 CEST -> 2024-10-27 10:00 CET: 25 hours later
    assert resolve("2024-10-26T10:00||+1d", now=NOW, tz=BERLIN) == utc(2024, 10, 27, 9)
    assert resolve("2024-03-30T10:00||+1w", now=NOW, tz=BERLIN) == utc(2024, 4, 6, 8)
    assert resolve("2024-02-29T10:00||+1M", now=NOW, tz=BERLIN) == utc(2024, 3, 29, 9)
    # hours move the instant, not the wall clock
    assert resolve("2024-03-30T10:00||+24h", now=NOW, tz=BERLIN) == utc(2024, 3, 31, 9)
    now = utc(2024, 3, 30, 9)  # 10:00 CET
    assert resolve("now+1d", now=now, tz=BERLIN) == utc(2024, 3, 31, 8)
    assert resolve("now-7d/d", now=utc(2024, 4, 2, 12), tz=BERLIN) == utc(2024, 3, 25, 23)


def test_adding_a_day_into_a_gap_shifts_forward() -> None:
    # 2024-03-30 02:30 CET + 1d = 2024-03-31 02:30, which does not exist -> 03:30 CEST
    assert resolve("2024-03-30T02:30||+1d", now=NOW, tz=BERLIN) == utc(2024, 3, 31, 1, 30)


def test_overlap_keeps_the_previous_offset() -> None:
    # 2024-10-27 02:30 CET (second occurrence, 01:30Z): rounding to the hour stays in CET
    assert resolve("now/h", now=utc(2024, 10, 27, 1, 30), tz=BERLIN) == utc(2024, 10, 27, 1)
    # first occurrence (CEST, 00:30Z) rounds within CEST
    assert resolve("now/h", now=utc(2024, 10, 27, 0, 30), tz=BERLIN) == utc(2024, 10, 27, 0)
    assert resolve("now/h", now=utc(2024, 10, 27, 0, 30), tz=BERLIN, round_up=True) == utc(
        2024, 10, 27, 0, 59, 59, 999000
    )


def test_round_month_year_week_in_berlin() -> None:
    now = utc(2024, 7, 15, 12)
    assert resolve("now/M", now=now, tz=BERLIN) == utc(2024, 6, 30, 22)
    assert resolve("now/y", now=now, tz=BERLIN) == utc(2023, 12, 31, 23)
    assert resolve("now/y", now=now, tz=BERLIN, round_up=True) == utc(2024, 12, 31, 22, 59, 59, 999000)
    assert resolve("now/w", now=now, tz=BERLIN) == utc(2024, 7, 14, 22)  # Monday 00:00 CEST
    # Sunday 23:30Z is already Monday in Berlin
    assert resolve("now/w", now=utc(2024, 7, 14, 23, 30), tz=BERLIN) == utc(2024, 7, 14, 22)


def test_fixed_offset_time_zone() -> None:
    tz = timezone(timedelta(hours=5, minutes=30))
    assert resolve("now/d", now=utc(2024, 3, 13, 20), tz=tz) == utc(2024, 3, 13, 18, 30)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("now-", "truncated"),
        ("now+7", "truncated"),
        ("now-7x", "unit \\[x\\]"),
        ("now-7D", "unit \\[D\\]"),
        ("now/2d", "single unit"),
        ("now*2d", "operator"),
        ("now 1d", "operator"),
        ("nowish", "operator"),
        ("now||+1d", "operator"),
        ("garbage||+1d", "garbage"),
        ("2024-01-01||1d", "operator"),
        ("2024-01-01||+1.5d", "unit"),
        ("garbage", "garbage"),
        ("now+99999999y", "out of the supported date range"),
        ("9999-12-31||+1d", "out of the supported date range"),
    ],
)
def test_resolve_errors_name_the_input(expr: str, fragment: str) -> None:
    with pytest.raises(DateMathError, match=fragment) as info:
        resolve(expr, now=NOW)
    assert expr.split("||")[0] in str(info.value)


def test_round_up_for() -> None:
    assert round_up_for("gt") is True
    assert round_up_for("lte") is True
    assert round_up_for("gte") is False
    assert round_up_for("lt") is False
    assert round_up_for("from") is False
    assert round_up_for("to") is False
    with pytest.raises(DateMathError, match="between"):
        round_up_for("between")


def test_range_query_bounds_select_whole_days() -> None:
    # gt now-8d/d and lte now-7d/d select exactly the day seven days ago
    lower = resolve("now-8d/d", now=NOW, round_up=round_up_for("gt"))
    upper = resolve("now-7d/d", now=NOW, round_up=round_up_for("lte"))
    assert lower == utc(2024, 3, 5, 23, 59, 59, 999000)
    assert upper == utc(2024, 3, 6, 23, 59, 59, 999000)


# --- parse_relative --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("-7d", utc(2024, 3, 6)),
        ("-0d", utc(2024, 3, 13)),
        ("-24h", utc(2024, 3, 12, 15)),
        ("-1h", utc(2024, 3, 13, 14)),
        ("-30M", utc(2024, 3, 13, 15, 12)),
        ("-2w", utc(2024, 2, 28)),
        ("-3m", utc(2023, 12, 13)),
        ("-1y", utc(2023, 3, 13)),
        ("dStart", utc(2024, 3, 13)),
        ("wStart", utc(2024, 3, 11)),
        ("mStart", utc(2024, 3, 1)),
        ("yStart", utc(2024, 1, 1)),
        ("2024-01-05", utc(2024, 1, 5)),
        ("2024-01-05T10:00:00Z", utc(2024, 1, 5, 10)),
    ],
)
def test_parse_relative_utc(expr: str, expected: datetime) -> None:
    result = parse_relative(expr, now=NOW, tz=UTC)
    assert result == expected
    assert result.tzinfo is UTC


def test_parse_relative_in_berlin() -> None:
    now = utc(2024, 4, 2, 12)  # 14:00 CEST
    assert parse_relative("-7d", now=now, tz=BERLIN) == utc(2024, 3, 25, 23)  # midnight CET
    assert parse_relative("dStart", now=now, tz=BERLIN) == utc(2024, 4, 1, 22)
    assert parse_relative("mStart", now=now, tz=BERLIN) == utc(2024, 3, 31, 22)
    assert parse_relative("yStart", now=now, tz=BERLIN) == utc(2023, 12, 31, 23)
    assert parse_relative("wStart", now=now, tz=BERLIN) == utc(2024, 3, 31, 22)  # Monday 1 April
    assert parse_relative("-1m", now=now, tz=BERLIN) == utc(2024, 3, 1, 23)
    assert parse_relative("-2h", now=now, tz=BERLIN) == utc(2024, 4, 2, 10)
    assert parse_relative("2024-01-05", now=now, tz=BERLIN) == utc(2024, 1, 4, 23)


def test_parse_relative_clamps_months() -> None:
    now = utc(2024, 3, 31, 12)
    assert parse_relative("-1m", now=now, tz=UTC) == utc(2024, 2, 29)
    assert parse_relative("-1y", now=utc(2024, 2, 29, 12), tz=UTC) == utc(2023, 2, 28)


def test_parse_relative_hours_truncate_in_half_hour_zones() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    # 15:42Z = 21:12 IST; minus 1h = 20:12 IST -> 20:00 IST = 14:30Z
    assert parse_relative("-1h", now=NOW, tz=kolkata) == utc(2024, 3, 13, 14, 30)


@pytest.mark.parametrize("expr", ["all", "-7", "7d", "-7x", "-d", "xStart", "dstart", "", "-1.5d"])
def test_parse_relative_errors(expr: str) -> None:
    with pytest.raises(DateMathError, match="invalid relative date"):
        parse_relative(expr, now=NOW, tz=UTC)


def test_parse_relative_out_of_range() -> None:
    with pytest.raises(DateMathError, match="out of the supported date range"):
        parse_relative("-99999y", now=NOW, tz=UTC)


# --- properties -------------------------------------------------------------------------------

_ZONES = [UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Adelaide")]
_UNIT_LENGTH = {
    "y": timedelta(days=366),
    "M": timedelta(days=31),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "H": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(now=_INSTANTS, unit=st.sampled_from(sorted(_UNIT_LENGTH)), tz=st.sampled_from(_ZONES))
def test_rounding_brackets_the_value(now: datetime, unit: str, tz: ZoneInfo) -> None:
    down = resolve(f"now/{unit}", now=now, tz=tz)
    up = resolve(f"now/{unit}", now=now, tz=tz, round_up=True)
    assert down <= now.replace(microsecond=now.microsecond // 1000 * 1000) <= up
    assert up - down < _UNIT_LENGTH[unit] + timedelta(hours=1)
    # rounding is idempotent and the round-up is the millisecond before the next unit starts
    assert resolve(f"now/{unit}", now=down, tz=tz) == down
    assert resolve(f"now/{unit}", now=up + timedelta(milliseconds=1), tz=tz) > down


@given(now=_INSTANTS, n=st.integers(min_value=0, max_value=400), unit=st.sampled_from("yMwdhms"))
def test_adding_moves_forward_and_time_units_round_trip(now: datetime, n: int, unit: str) -> None:
    assert resolve(f"now+{n}{unit}", now=now, tz=BERLIN) >= now
    if unit in "hms":  # calendar steps clamp days and snap out of DST gaps, so only these invert
        assert resolve(f"now+{n}{unit}-{n}{unit}", now=now, tz=BERLIN) == now


@given(
    value=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC))
)
def test_iso_round_trip(value: datetime) -> None:
    assert parse_date(value.isoformat()) == value
    assert parse_date(value.isoformat(sep=" ", timespec="microseconds")) == value

"""Value formatting as Elasticsearch prints it (Java doubles, date and decimal patterns)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from aggregata.search.formats import format_date, format_number, java_double

MARCH_1 = 1709251200000  # 2024-03-01T00:00:00Z


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1.0"), (99.9, "99.9"), (0.001, "0.001"), (1e7, "1.0E7"), (1.5e-5, "1.5E-5"), (-2.5e10, "-2.5E10"),
     (123456789.0, "1.23456789E8"), (50.0, "50.0"), (0.0, "0.0"), (float("nan"), "NaN")],
)  # fmt: skip
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text


@pytest.mark.parametrize(
    ("fmt", "zone", "text"),
    [
        (None, "UTC", "2024-03-01T00:00:00.000Z"),
        (None, "Europe/Berlin", "2024-03-01T01:00:00.000+01:00"),
        ("strict_date_optional_time||epoch_millis", "America/New_York", "2024-02-29T19:00:00.000-05:00"),
        ("yyyy-MM-dd", "UTC", "2024-03-01"),
        ("yyyy-MM-dd'T'HH:mm:ss", "Asia/Kolkata", "2024-03-01T05:30:00"),
        ("epoch_millis", "UTC", str(MARCH_1)),
        ("epoch_second", "UTC", str(MARCH_1 // 1000)),
        ("date", "UTC", "2024-03-01"),
        ("basic_date", "UTC", "20240301"),
        ("year_month", "UTC", "2024-03"),
        ("MMM d, yyyy EEE HH:mm a", "UTC", "Mar 1, 2024 Fri 00:00 AM"),
        ("yyyy-MM-dd'T'HH:mm:ssZ", "Europe/Berlin", "2024-03-01T01:00:00+0100"),
        ("dd/MM/yy 'at' h", "UTC", "01/03/24 at 12"),
    ],
)
def test_format_date(fmt: str | None, zone: str, text: str) -> None:
    assert format_date(MARCH_1, fmt, ZoneInfo(zone)) == text


def test_format_date_beyond_year_9999_prints_the_number() -> None:
    assert format_date(10**15) == str(10**15)


@pytest.mark.parametrize(
    ("value", "pattern", "text"),
    [(1234.5678, "#,##0.00", "1,234.57"), (0.5, "0.00", "0.50"), (3, "000", "003"), (2.5, "#", "2"),
     (-1234567.891, "#,##0.#", "-1,234,567.9"), (12.0, "$#.## USD", "$12 USD"), (0.125, "0.##", "0.12"),
     (7.0, None, "7.0")],
)  # fmt: skip
def test_format_number(value: float, pattern: str | None, text: str) -> None:
    assert format_number(value, pattern) == text

"""Independent answers for insight tests: pandas and plain Python over the generated events.

Nothing here touches an engine or imports the insights package: buckets, windows and
maths are computed from the same generated events the engine stored.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per event: ts (UTC), event, distinct_id and the flattened properties."""
    rows = [
        {
            "ts": pd.Timestamp(e["timestamp"]),
            "event": e["event"],
            "distinct_id": str(e["distinct_id"]),
            **{k: v for k, v in (e.get("properties") or {}).items() if not isinstance(v, (list, dict))},
        }
        for e in events
    ]
    df = pd.DataFrame(rows)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


UTC = ZoneInfo("UTC")


def label(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).isoformat()


def bucket_start(ts: datetime, interval: str, tz: ZoneInfo, week_start: int = 0) -> datetime:
    """The start of the bucket holding ``ts``, as a UTC datetime (plain Python).

    UTC, because aware datetimes of one zone compare by wall clock: the two 01:00 hours of
    a night the clocks go back would be one key.
    """
    return _bucket_start(ts, interval, tz, week_start).astimezone(UTC)


def _bucket_start(ts: datetime, interval: str, tz: ZoneInfo, week_start: int) -> datetime:
    local = ts.astimezone(tz)
    if interval == "minute":
        return (ts - timedelta(seconds=ts.second, microseconds=ts.microsecond)).astimezone(tz)
    if interval == "hour":
        return (ts - timedelta(minutes=ts.minute, seconds=ts.second, microseconds=ts.microsecond)).astimezone(
            tz
        )
    day = local.date()
    if interval == "week":
        day -= timedelta(days=(day.weekday() - week_start) % 7)
    elif interval == "month":
        day = day.replace(day=1)
    elif interval == "quarter":
        day = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    elif interval == "year":
        day = date(day.year, 1, 1)
    return local_midnight(day, tz)


def next_start(start: datetime, interval: str, tz: ZoneInfo) -> datetime:
    if interval in ("minute", "hour"):
        step = timedelta(minutes=1) if interval == "minute" else timedelta(hours=1)
        return start.astimezone(UTC) + step
    day = start.astimezone(tz).date()
    if interval == "day":
        return local_midnight(day + timedelta(days=1), tz).astimezone(UTC)
    if interval == "week":
        return local_midnight(day + timedelta(days=7), tz).astimezone(UTC)
    months = {"month": 1, "quarter": 3, "year": 12}[interval]
    total = day.year * 12 + day.month - 1 + months
    return local_midnight(date(total // 12, total % 12 + 1, 1), tz).astimezone(UTC)


def bucket_list(
    start: datetime, end: datetime, interval: str, tz: ZoneInfo, week_start: int = 0
) -> list[datetime]:
    out = []
    b = bucket_start(start, interval, tz, week_start)
    while b < end:
        out.append(b)
        b = next_start(b, interval, tz)
    return out


def in_range(df: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    return df[(df["ts"] >= pd.Timestamp(start)) & (df["ts"] < pd.Timestamp(end))]


def with_buckets(df: pd.DataFrame, interval: str, tz: ZoneInfo, week_start: int = 0) -> pd.DataFrame:
    out = df.copy()
    out["bucket"] = [label(bucket_start(t.to_pydatetime(), interval, tz, week_start), tz) for t in out["ts"]]
    return out


_QUANTILE = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def aggregate(group: pd.DataFrame, math: str, prop: str | None) -> float:
    """One bucket's value of ``math`` (not the rolling ones)."""
    if math == "total":
        return float(len(group))
    if math == "unique_actors":
        return float(group["distinct_id"].nunique())
    if math.endswith("_count_per_actor"):
        counts = group.groupby("distinct_id").size()
        agg = math.removesuffix("_count_per_actor")
        if counts.empty:
            return 0.0
        if agg in _QUANTILE:
            return float(counts.quantile(_QUANTILE[agg]))
        return float(getattr(counts, {"avg": "mean"}.get(agg, agg))())
    assert prop is not None
    values = group[prop].dropna() if prop in group else pd.Series(dtype=float)
    if values.empty:
        return 0.0
    if math in _QUANTILE:
        return float(values.quantile(_QUANTILE[math]))
    return float(getattr(values, {"avg": "mean"}.get(math, math))())


def trend(
    df: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    interval: str,
    tz: ZoneInfo,
    math: str = "total",
    prop: str | None = None,
    event: str | None = None,
    week_start: int = 0,
) -> tuple[list[str], list[float], float]:
    """Labels, per-bucket values and the whole-range total of one series."""
    sel = df if event is None else df[df["event"] == event]
    labels = [label(b, tz) for b in bucket_list(start, end, interval, tz, week_start)]
    if math in ("dau", "wau", "mau"):
        return (
            labels,
            rolling(sel, start, end, interval, tz, math, week_start),
            float(in_range(sel, start, end)["distinct_id"].nunique()),
        )
    ranged = with_buckets(in_range(sel, start, end), interval, tz, week_start)
    groups = dict(iter(ranged.groupby("bucket")))
    data = [aggregate(groups[lb], math, prop) if lb in groups else 0.0 for lb in labels]
    return labels, data, aggregate(ranged, math, prop) if len(ranged) else 0.0


def rolling(
    df: pd.DataFrame,
    start: datetime,
    end: datetime,
    interval: str,
    tz: ZoneInfo,
    math: str,
    week_start: int = 0,
) -> list[float]:
    """Distinct actors in the N days ending at each bucket's end (capped at ``end``)."""
    days = {"dau": 1, "wau": 7, "mau": 30}[math]
    out = []
    stamps = df["ts"].tolist()
    actors = df["distinct_id"].tolist()
    for b in bucket_list(start, end, interval, tz, week_start):
        b_end = min(next_start(b, interval, tz), end.astimezone(UTC))
        if interval in ("minute", "hour"):  # exact hours, not wall-clock days
            w_start = b_end - timedelta(days=days)
        else:
            w_start = local_midnight(b_end.astimezone(tz).date() - timedelta(days=days), tz)
            if b_end.astimezone(tz).time() != datetime.min.time():  # a range cut mid-day
                w_start = local_midnight(b_end.astimezone(tz).date() - timedelta(days=days - 1), tz)
        seen = {a for t, a in zip(stamps, actors, strict=True) if w_start <= t.to_pydatetime() < b_end}
        out.append(float(len(seen)))
    return out


def breakdown_counts(df: pd.DataFrame, prop: str) -> dict[Any, int]:
    counts: dict[Any, int] = defaultdict(int)
    for v in df[prop] if prop in df else [None] * len(df):
        counts[None if pd.isna(v) else str(v)] += 1
    return dict(counts)

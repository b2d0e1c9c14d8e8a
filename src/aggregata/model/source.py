"""Rebuild a document's ``_source`` from its columns (the inverse of flattening)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def format_datetime(value: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``; milliseconds unless finer precision was stored."""
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def json_value(value: Any) -> Any:
    """A stored value as JSON: dates as ISO strings, structs and lists recursively."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items() if v is not None}
    return value


def unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """``{"user.country": "DE"}`` → ``{"user": {"country": "DE"}}``; missing values omitted."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            continue
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(value, list) and value and isinstance(value[0], dict):
            node[leaf] = [unflatten(v) for v in value]
        else:
            node[leaf] = json_value(value)
    return out

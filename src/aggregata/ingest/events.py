"""PostHog-style events → documents of the ``events`` collection, with ingest-time enrichment.

An event is ``{"event", "distinct_id", "timestamp", "properties", "uuid"}``. It becomes a
document whose ``_id`` is the uuid (so a retried event is recognised and stored once),
whose properties live under ``properties.<name>``, and which gains ``received_at`` (server
receive time) and the derived ``hour_of_day`` (0-23) and ``day_of_week`` (1 = Monday … 7 =
Sunday, ISO) of its timestamp in UTC, so queries can group by them without computing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from aggregata.model.columnar import Decline, flatten
from aggregata.model.documents import parse_datetime
from aggregata.model.mapping import Field, FieldType, Mapping

EVENTS_COLLECTION = "events"

EVENT_SETTINGS = {
    "timestamp_field": "timestamp",
    "event_field": "event",
    "actor_field": "distinct_id",
}

EVENT_MAPPING = Mapping(
    {
        f.name: f
        for f in (
            Field("event", FieldType.KEYWORD),
            Field("distinct_id", FieldType.KEYWORD),
            Field("timestamp", FieldType.DATE),
            Field("received_at", FieldType.DATE),
            Field("hour_of_day", FieldType.LONG),
            Field("day_of_week", FieldType.LONG),
        )
    }
)

_ALLOWED = {"event", "distinct_id", "timestamp", "properties", "uuid"}


class EventError(ValueError):
    """Why one event cannot be stored."""


def event_to_document(
    event: Any, received_at: datetime, new_id: Callable[[], str] | None = None
) -> dict[str, Any]:
    """Validate one event and return the document stored for it."""
    if not isinstance(event, dict):
        raise EventError("an event must be a JSON object")
    unknown = set(event) - _ALLOWED
    if unknown:
        raise EventError(f"unknown event key [{sorted(unknown)[0]}]; allowed: {sorted(_ALLOWED)}")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise EventError("[event] is required and must be a non-empty string")
    actor = event.get("distinct_id")
    if isinstance(actor, bool) or not isinstance(actor, (str, int)) or actor == "":
        raise EventError("[distinct_id] is required and must be a string or an integer")
    raw_ts = event.get("timestamp")
    if raw_ts is None:
        ts = received_at
    else:
        if isinstance(raw_ts, bool) or not isinstance(raw_ts, (str, int, float)):
            raise EventError("[timestamp] must be an ISO-8601 string or epoch milliseconds")
        try:
            ts = parse_datetime(raw_ts)
        except (ValueError, OverflowError) as exc:
            raise EventError(f"cannot parse [timestamp] {raw_ts!r}: {exc}") from None
    props = event.get("properties") or {}
    if not isinstance(props, dict):
        raise EventError("[properties] must be an object")
    raw_id = event.get("uuid")
    if raw_id is None:
        doc_id = str(new_id() if new_id else uuid.uuid4())
    else:
        try:
            doc_id = str(uuid.UUID(str(raw_id)))
        except ValueError:
            raise EventError(f"[uuid] {raw_id!r} is not a valid UUID") from None
    doc: dict[str, Any] = {
        "_id": doc_id,
        "event": name,
        "distinct_id": str(actor),
        "timestamp": ts,
        "received_at": received_at,
        "hour_of_day": ts.hour,
        "day_of_week": ts.isoweekday(),
    }
    if props:
        doc["properties"] = props
    return doc


_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_TS = pa.timestamp("us", tz="UTC")


def _required_text(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise Decline(f"[{name}] missing")
    column = table.column(name)
    if pa.types.is_integer(column.type) and name == "distinct_id":
        column = column.cast(pa.string())
    if not pa.types.is_string(column.type) or column.null_count:
        raise Decline(f"[{name}] must be strings")
    if len(column) and pc.min(pc.utf8_length(column)).as_py() < 1:
        raise Decline(f"[{name}] has empty strings")
    return column


def events_table(table: pa.Table, received_at: datetime, new_id: Callable[[], str]) -> pa.Table:
    """The columnar twin of ``event_to_document``: Arrow-parsed events → document columns.

    Raises ``Decline`` for anything ``event_to_document`` would treat per event (invalid
    values, epoch timestamps, non-canonical uuids), so both paths store the same rows.
    """
    if set(table.column_names) - _ALLOWED:
        raise Decline("unknown event keys")
    n = table.num_rows
    received = pa.scalar(received_at, _TS)
    if "timestamp" in table.column_names:
        raw = table.column("timestamp")
        if not pa.types.is_string(raw.type):
            raise Decline("timestamps that are not ISO strings")
        try:
            ts = raw.cast(_TS).fill_null(received)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise Decline(str(exc)) from None
    else:
        ts = pa.chunked_array([pa.repeat(received, n)])
    event, actor = _required_text(table, "event"), _required_text(table, "distinct_id")
    props = table.column("properties") if "properties" in table.column_names else None
    if props is not None and not pa.types.is_struct(props.type):
        raise Decline("[properties] must be objects")
    if "uuid" in table.column_names:
        raw = table.column("uuid")
        if not pa.types.is_string(raw.type):
            raise Decline("uuids that are not strings")
        valid = pc.match_substring_regex(raw, _UUID)
        if pc.sum(valid).as_py() != n - raw.null_count:
            raise Decline("non-canonical uuids")
        ids = pc.utf8_lower(raw.combine_chunks())
        if raw.null_count:
            fill = pa.array([str(new_id()) for _ in range(raw.null_count)], pa.string())
            ids = pc.replace_with_mask(ids, pc.is_null(ids), fill)
    else:
        ids = pa.chunked_array([pa.array([str(new_id()) for _ in range(n)], pa.string())])
    columns: dict[str, Any] = {
        "_id": ids,
        "event": event,
        "distinct_id": actor,
        "timestamp": ts,
        "received_at": pa.chunked_array([pa.repeat(received, n)]),
        "hour_of_day": pc.hour(ts).cast(pa.int64()),
        "day_of_week": pc.day_of_week(ts, count_from_zero=False, week_start=1).cast(pa.int64()),
    }
    if props is not None:
        flat = flatten(pa.table({"properties": props}))
        columns.update({name: flat.column(name) for name in flat.column_names})
    return pa.table(columns)

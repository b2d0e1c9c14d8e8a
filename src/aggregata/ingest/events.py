"""PostHog-style events → documents of the ``events`` collection, with ingest-time enrichment.

An event is ``{"event", "distinct_id", "timestamp", "properties", "uuid"}``. It becomes a
document whose ``_id`` is the uuid (so a retried event is recognised and stored once),
whose properties live under ``properties.<name>``, and which gains ``received_at`` (server
receive time) and the derived ``hour_of_day`` (0-23) and ``day_of_week`` (1 = Monday … 7 =
Sunday, ISO) of its timestamp in UTC, so queries can group by them without computing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

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


def event_to_document(event: Any, received_at: datetime, new_id: Any = None) -> dict[str, Any]:
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

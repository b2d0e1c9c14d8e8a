"""``POST /v1/events``: PostHog-style event capture into the ``events`` collection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from aggregata.api.deps import ServicesDep, blocking

router = APIRouter(tags=["events"])

EVENT_EXAMPLE = {
    "event": "purchase",
    "distinct_id": "u-42",
    "timestamp": "2026-11-01T12:30:00Z",
    "properties": {"country": "DE", "browser": "Firefox", "price": 29.9},
    "uuid": "0b6a3f0e-8a8e-4a43-9a59-3c1f3f4d2b11",
}


@router.post(
    "/v1/events",
    summary="Capture events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}},
                        ]
                    },
                    "examples": {
                        "one": {"summary": "one event", "value": EVENT_EXAMPLE},
                        "batch": {"summary": "a batch", "value": {"batch": [EVENT_EXAMPLE]}},
                    },
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def capture(request: Request, services: ServicesDep, collection: str = "events") -> dict[str, Any]:
    """Store events: one object, an array, `{"batch": [...]}` or NDJSON.

    Each event has `event`, `distinct_id`, optional `timestamp` (default: receive time),
    `properties` and `uuid`. A retried event with the same `uuid` is stored once. Stored
    documents gain `received_at`, `hour_of_day` and `day_of_week` (UTC).
    """
    body = await request.body()
    result = await blocking(
        services.ingest.ingest_body, collection, body, request.headers.get("content-type"), events=True
    )
    return result.to_json()

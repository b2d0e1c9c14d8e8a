"""Ingestion service: validate documents, write them durably, report per-item outcomes.

The response follows Elasticsearch ``_bulk`` in spirit: good documents are stored, each
bad one is reported with its position and reason, and ids already stored are counted as
duplicates (so a client retrying a batch after a timeout double-counts nothing).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aggregata.errors import CollectionNotFound
from aggregata.ingest.events import (
    EVENT_MAPPING,
    EVENT_SETTINGS,
    EVENTS_COLLECTION,
    EventError,
    event_to_document,
)
from aggregata.model.documents import Batch, ItemError, prepare_documents
from aggregata.model.mapping import Mapping
from aggregata.storage.engine import DOCUMENTS, EVENTS, Engine, WriteResult


def new_id() -> str:
    """Elasticsearch-like random document ids (URL-safe, 20 characters)."""
    return uuid.uuid4().hex[:20]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestResult:
    """Counts and per-item failures of one ingest call."""

    stored: int = 0
    duplicates: int = 0
    errors: list[ItemError] = field(default_factory=list)
    took_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "took": self.took_ms,
            "errors": bool(self.errors),
            "stored": self.stored,
            "duplicates": self.duplicates,
            "failed": len(self.errors),
            "items": [
                {
                    "position": e.position,
                    **({"_id": e.id} if e.id else {}),
                    "status": 400,
                    "error": {"type": e.type, "reason": e.reason},
                }
                for e in sorted(self.errors, key=lambda e: e.position)
            ],
        }

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.errors += other.errors


class IngestService:
    """Writes documents and events through an engine; ids and clock are injectable."""

    def __init__(
        self,
        engine: Engine,
        *,
        id_factory: Callable[[], str] = new_id,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.id_factory = id_factory
        self.clock = clock

    def ensure_collection(self, name: str, *, kind: str = DOCUMENTS) -> None:
        try:
            self.engine.get_collection(name)
        except CollectionNotFound:
            mapping, settings = (EVENT_MAPPING, dict(EVENT_SETTINGS)) if kind == EVENTS else (Mapping(), {})
            self.engine.create_collection(name, mapping, kind=kind, settings=settings, exist_ok=True)

    def ingest(
        self,
        name: str,
        docs: Sequence[Any],
        *,
        positions: Sequence[int] | None = None,
        create: bool = True,
        pre_errors: Sequence[ItemError] = (),
    ) -> IngestResult:
        """Store ``docs`` in collection ``name`` (created on first use when ``create``)."""
        started = time.perf_counter()
        if create:
            self.ensure_collection(name)
        coll = self.engine.get_collection(name)
        dynamic = coll.settings.get("dynamic", True) is not False

        def prepare(mapping: Mapping) -> Batch:
            return prepare_documents(
                docs, mapping, new_id=self.id_factory, dynamic=dynamic, positions=positions
            )

        batch = prepare(coll.mapping)
        written: WriteResult = self.engine.write(name, batch, prepare)
        result = IngestResult(
            stored=written.inserted,
            duplicates=len(written.duplicate_ids) + len(written.batch.duplicates),
            errors=[*pre_errors, *written.batch.errors],
        )
        result.took_ms = int((time.perf_counter() - started) * 1000)
        return result

    def ingest_events(
        self,
        events: Sequence[Any],
        *,
        collection: str = EVENTS_COLLECTION,
        pre_errors: Sequence[ItemError] = (),
        positions: Sequence[int] | None = None,
    ) -> IngestResult:
        """Store PostHog-style events; invalid ones are reported, the rest kept."""
        self.ensure_collection(collection, kind=EVENTS)
        received = self.clock()
        docs: list[dict[str, Any]] = []
        kept: list[int] = []
        errors = list(pre_errors)
        for offset, event in enumerate(events):
            position = positions[offset] if positions is not None else offset
            try:
                docs.append(event_to_document(event, received))
            except EventError as exc:
                errors.append(ItemError(position, "event_parsing_exception", str(exc)))
                continue
            kept.append(position)
        return self.ingest(collection, docs, positions=kept, create=False, pre_errors=errors)

"""Ingestion service: validate documents, write them durably, report per-item outcomes.

The response follows Elasticsearch ``_bulk`` in spirit: good documents are stored, each
bad one is reported with its position and reason, and ids already stored are counted as
duplicates (so a client retrying a batch after a timeout double-counts nothing).

NDJSON bodies first try the columnar fast path (``model/columnar.py``), which validates
whole columns with Arrow; whenever it is unsure it declines and the per-document path
decides. Both paths store the same rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aggregata.errors import CollectionNotFound
from aggregata.ingest.body import NDJSON_TYPES, Parsed, parse_body
from aggregata.ingest.events import (
    EVENT_MAPPING,
    EVENT_SETTINGS,
    EVENTS_COLLECTION,
    EventError,
    event_to_document,
    events_table,
)
from aggregata.model.columnar import Decline, columnar_batch, flatten, read_ndjson
from aggregata.model.documents import Batch, ItemError, prepare_documents
from aggregata.model.mapping import Mapping
from aggregata.storage.engine import DOCUMENTS, EVENTS, Engine, Prepare


def new_id() -> str:
    """Elasticsearch-like random document ids (20 hex characters)."""
    return uuid.uuid4().hex[:20]


def new_uuid() -> str:
    """Events without a ``uuid`` get a random one, as PostHog does."""
    return str(uuid.uuid4())


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestResult:
    """Counts and per-item failures of one ingest call.

    The id lists say which documents were not stored because their id was already there,
    which stored documents were replaced (``overwrite``) and which were deleted (``delete``):
    per-item APIs such as Elasticsearch's ``_bulk`` report each document's outcome from them.
    """

    stored: int = 0
    duplicates: int = 0
    errors: list[ItemError] = field(default_factory=list)
    took_ms: int = 0
    duplicate_ids: list[str] = field(default_factory=list)
    overwritten_ids: list[str] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)

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
        self.duplicate_ids += other.duplicate_ids
        self.overwritten_ids += other.overwritten_ids
        self.deleted_ids += other.deleted_ids


@dataclass
class _Docs:
    """Documents ready for validation, their request positions, and items already failed."""

    docs: list[Any]
    positions: list[int]
    errors: list[ItemError]


class IngestService:
    """Writes documents and events through an engine; ids and clock are injectable."""

    def __init__(
        self,
        engine: Engine,
        *,
        id_factory: Callable[[], str] = new_id,
        event_id_factory: Callable[[], str] = new_uuid,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.id_factory = id_factory
        self.event_id_factory = event_id_factory
        self.clock = clock

    def ensure_collection(self, name: str, *, kind: str = DOCUMENTS) -> None:
        try:
            self.engine.get_collection(name)
        except CollectionNotFound:
            mapping, settings = (EVENT_MAPPING, dict(EVENT_SETTINGS)) if kind == EVENTS else (Mapping(), {})
            self.engine.create_collection(name, mapping, kind=kind, settings=settings, exist_ok=True)

    # -- entry points ---------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        docs: Sequence[Any],
        *,
        positions: Sequence[int] | None = None,
        pre_errors: Sequence[ItemError] = (),
        overwrite: Iterable[str] = (),
        delete: Iterable[str] = (),
    ) -> IngestResult:
        """Store documents in collection ``name`` (created on first use).

        Ids in ``overwrite`` replace a stored document instead of counting as duplicates,
        ids in ``delete`` are deleted; all in the same committed write (``Engine.write``).
        """
        self.ensure_collection(name)
        pos = list(positions) if positions is not None else list(range(len(docs)))
        return self._write(
            name, lambda: _Docs(list(docs), pos, list(pre_errors)), overwrite=overwrite, delete=delete
        )

    def ingest_events(
        self,
        events: Sequence[Any],
        *,
        collection: str = EVENTS_COLLECTION,
        positions: Sequence[int] | None = None,
        pre_errors: Sequence[ItemError] = (),
    ) -> IngestResult:
        """Store PostHog-style events; invalid ones are reported, the rest kept."""
        self.ensure_collection(collection, kind=EVENTS)
        pos = list(positions) if positions is not None else list(range(len(events)))
        return self._write(collection, lambda: self._event_docs(events, pos, pre_errors))

    def ingest_body(
        self, name: str, body: bytes, content_type: str | None, *, events: bool = False
    ) -> IngestResult:
        """Store an HTTP body of documents (or events) in the format its content type says."""
        self.ensure_collection(name, kind=EVENTS if events else DOCUMENTS)
        ctype = (content_type or "").split(";")[0].strip().lower()

        def docs() -> _Docs:
            parsed = parse_body(body, content_type)
            if events:
                parsed = _unwrap_batch(parsed)
                return self._event_docs(parsed.docs, parsed.positions, parsed.errors)
            return _Docs(parsed.docs, parsed.positions, parsed.errors)

        fast = self._columnar(name, body, events) if ctype in NDJSON_TYPES and body.strip() else None
        return self._write(name, docs, fast)

    # -- the shared write path ------------------------------------------------------------

    def _event_docs(
        self, events: Sequence[Any], positions: Sequence[int], errors: Sequence[ItemError]
    ) -> _Docs:
        received = self.clock()
        out = _Docs([], [], list(errors))
        for position, event in zip(positions, events, strict=True):
            try:
                out.docs.append(event_to_document(event, received, self.event_id_factory))
            except EventError as exc:
                out.errors.append(ItemError(position, "event_parsing_exception", str(exc)))
                continue
            out.positions.append(position)
        return out

    def _columnar(self, name: str, body: bytes, events: bool) -> Batch | None:
        coll = self.engine.get_collection(name)
        try:
            table = read_ndjson(body, coll.mapping)
            if events:
                table = events_table(table, self.clock(), self.event_id_factory)
            return columnar_batch(
                flatten(table), coll.mapping, new_id=self.id_factory, dynamic=_dynamic(coll.settings)
            )
        except Decline:
            return None

    def _write(
        self,
        name: str,
        docs: Callable[[], _Docs],
        batch: Batch | None = None,
        *,
        overwrite: Iterable[str] = (),
        delete: Iterable[str] = (),
    ) -> IngestResult:
        """Validate (unless a columnar batch is given), write, and report.

        ``prepare`` re-validates against the mapping current in the writer, which the engine
        calls only when a concurrent write changed the mapping in a conflicting way.
        """
        started = time.perf_counter()
        coll = self.engine.get_collection(name)
        dynamic = _dynamic(coll.settings)
        cache: list[_Docs] = []

        def loaded() -> _Docs:
            if not cache:
                cache.append(docs())
            return cache[0]

        def prepare(mapping: Mapping) -> Batch:
            d = loaded()
            out = prepare_documents(
                d.docs, mapping, new_id=self.id_factory, dynamic=dynamic, positions=d.positions
            )
            out.errors = [*d.errors, *out.errors]
            return out

        first = batch if batch is not None else prepare(coll.mapping)
        retry: Prepare = prepare
        written = self.engine.write(name, first, retry, overwrite=overwrite, delete=delete)
        result = IngestResult(
            stored=written.inserted,
            duplicates=len(written.duplicate_ids) + len(written.batch.duplicates),
            errors=list(written.batch.errors),
            duplicate_ids=list(written.duplicate_ids),
            overwritten_ids=list(written.overwritten_ids),
            deleted_ids=list(written.deleted_ids),
        )
        result.took_ms = int((time.perf_counter() - started) * 1000)
        return result


def _dynamic(settings: dict[str, Any]) -> bool:
    return settings.get("dynamic", True) is not False


def _unwrap_batch(parsed: Parsed) -> Parsed:
    """PostHog's ``{"batch": [...]}`` envelope holds the events themselves."""
    docs = parsed.docs
    if len(docs) == 1 and isinstance(docs[0], dict) and isinstance(docs[0].get("batch"), list):
        inner = docs[0]["batch"]
        return Parsed(docs=inner, positions=list(range(len(inner))))
    return parsed

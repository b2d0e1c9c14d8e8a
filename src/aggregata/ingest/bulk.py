"""Elasticsearch ``_bulk``: NDJSON action/source pairs → one committed write per index → per-item results.

The request is parsed whole first. A malformed *action* line fails the whole request (400),
as in Elasticsearch, because the lines after it can no longer be paired up; a bad *document*
only fails its own item. Then, per index, every document and delete goes to the ingest
service in **one** call, i.e. one group-committed transaction: ``index`` ids may overwrite
stored documents, ``create`` ids may not (409), ``delete`` ids are removed.

Operations on the same id within one request must see each other in order (index, then
delete, then index again). Items are therefore split into *rounds*: round *k* holds the
*k*-th operation on each id, so ids are distinct within a round and rounds run in order.
The usual bulk, one operation per id, is a single round: one commit per index.

``update`` reads the stored ``_source`` (one search per round and index), merges ``doc``
into it as Elasticsearch does (objects recursively, everything else replaced) and writes
the result as an overwrite. That read-then-write is not atomic against concurrent writers
of the same id: like Elasticsearch without ``retry_on_conflict``, last writer wins.

Versions are not tracked: every response reports ``_version`` 1, ``_seq_no`` 0 and
``_primary_term`` 1, and requests that ask for optimistic concurrency control
(``if_seq_no``, ``version``, ...) are refused rather than silently ignored.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from aggregata.errors import BadRequest, CollectionNotFound, ParsingError
from aggregata.ingest.service import IngestService
from aggregata.model.mapping import ID_FIELD
from aggregata.search.service import SearchService
from aggregata.storage.engine import validate_collection_name

OPS = ("index", "create", "update", "delete")

# Fixed values for the version fields Elasticsearch reports (versions are not tracked).
VERSION = 1
SEQ_NO = 0
PRIMARY_TERM = 1
SHARDS = {"total": 1, "successful": 1, "failed": 0}
NOOP_SHARDS = {"total": 0, "successful": 0, "failed": 0}

# Action metadata we honour, ignore harmlessly (single shard, no aliases), or refuse.
_META = frozenset({"_index", "_id", "op_type", "routing", "require_alias", "retry_on_conflict"})
_UNSUPPORTED_META = frozenset(
    {
        "if_seq_no",
        "if_primary_term",
        "version",
        "version_type",
        "pipeline",
        "dynamic_templates",
        "_source",
        "require_data_stream",
        "list_executed_pipelines",
    }
)
_UPDATE_KEYS = frozenset({"doc", "upsert", "doc_as_upsert", "detect_noop", "script", "scripted_upsert"})
MAX_ID_BYTES = 512
_UUID_NAMESPACE = uuid.UUID("6f1c4a52-4a0e-4c8f-9d83-5a1c0e1b7d21")


def index_uuid(name: str) -> str:
    """A stable Elasticsearch-looking index uuid (22 url-safe base64 characters) for ``name``."""
    raw = uuid.uuid5(_UUID_NAMESPACE, name).bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class ItemFailure:
    """Why one item failed: Elasticsearch's status, error type, reason and metadata fields."""

    status: int
    type: str
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_es(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason, **self.metadata}


def index_not_found(index: str) -> ItemFailure:
    return ItemFailure(
        404,
        "index_not_found_exception",
        f"no such index [{index}]",
        {"resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index},
    )


def _doc_failure(status: int, type_: str, reason: str, index: str) -> ItemFailure:
    return ItemFailure(status, type_, reason, {"index_uuid": index_uuid(index), "shard": "0", "index": index})


@dataclass
class BulkAction:
    """One operation: its kind, target, position in the request and document (or update body)."""

    op: str
    index: str
    id: str
    position: int
    source: Any = None
    failure: ItemFailure | None = None


@dataclass
class ItemResult:
    """The outcome of one operation, shaped as Elasticsearch reports it."""

    action: BulkAction
    status: int
    result: str | None = None
    failure: ItemFailure | None = None

    def body(self) -> dict[str, Any]:
        """The fields of the item, as in a bulk item or a single-document response."""
        out: dict[str, Any] = {"_index": self.action.index, "_id": self.action.id}
        if self.failure is not None:
            out["error"] = self.failure.to_es()
            return out
        out["_version"] = VERSION
        out["result"] = self.result
        out["_shards"] = NOOP_SHARDS if self.result == "noop" else SHARDS
        out["_seq_no"] = SEQ_NO
        out["_primary_term"] = PRIMARY_TERM
        return out

    def to_es(self) -> dict[str, Any]:
        """``{"index": {..., "status": 201}}``: one entry of a bulk response's ``items``."""
        body = self.body()
        body["status"] = self.status
        if self.failure is not None:
            body = {
                "_index": body["_index"],
                "_id": body["_id"],
                "status": self.status,
                "error": body["error"],
            }
        return {self.action.op: body}

    @property
    def failed(self) -> bool:
        """A delete of a missing document is a 404 but not a failure (Elasticsearch's ``errors``)."""
        return self.failure is not None


def bulk_response(results: Sequence[ItemResult], took_ms: int) -> dict[str, Any]:
    return {
        "took": took_ms,
        "errors": any(r.failed for r in results),
        "items": [r.to_es() for r in results],
    }


# -- parsing -------------------------------------------------------------------------------


def _read_json(raw: bytes) -> Any:
    return orjson.loads(raw)


def _check_id(raw: Any, problems: list[str]) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise BadRequest(f"[_id] must be a string, got {type(raw).__name__}")
    text = str(raw)
    if not text:
        problems.append("if _id is specified it must not be empty")
    elif len(text.encode()) > MAX_ID_BYTES:
        problems.append(
            f"id [{text[:40]}...] is too long, must be no longer than {MAX_ID_BYTES} bytes"
            f" but was: {len(text.encode())}"
        )
    return text


def document_action(op: str, index: str, id_: str, source: Any, position: int = 0) -> BulkAction:
    """An ``index``/``create`` action for ``source``; a document that cannot be stored fails the item."""
    action = BulkAction(op, index, id_, position, source)
    if source is None:
        action.failure = ItemFailure(400, "action_request_validation_exception", "source is missing")
    elif not isinstance(source, dict):
        action.failure = ItemFailure(
            400, "mapper_parsing_exception", "failed to parse, document must be a JSON object"
        )
    elif ID_FIELD in source:
        action.failure = ItemFailure(
            400,
            "mapper_parsing_exception",
            "Field [_id] is a metadata field and cannot be added inside a document."
            " Use the index API request parameters.",
        )
    else:
        action.failure = _invalid_index(index)
    return action


def update_action(index: str, id_: str, body: Any, position: int = 0) -> BulkAction:
    """An ``update`` action: ``doc`` (merged), ``upsert`` / ``doc_as_upsert``; scripts are refused."""
    action = BulkAction("update", index, id_, position, body)

    def fail(type_: str, reason: str) -> BulkAction:
        action.failure = ItemFailure(400, type_, reason)
        return action

    if not isinstance(body, dict):
        return fail("x_content_parse_exception", "the update body must be a JSON object")
    unknown = sorted(set(body) - _UPDATE_KEYS)
    if unknown:
        return fail("x_content_parse_exception", f"[UpdateRequest] unknown field [{unknown[0]}]")
    if "script" in body or body.get("scripted_upsert"):
        return fail("illegal_argument_exception", "scripted updates are not supported; use [doc]")
    if "doc" not in body:
        return fail("action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
    for key in ("doc", "upsert"):
        if key in body and not isinstance(body[key], dict):
            return fail("mapper_parsing_exception", f"failed to parse, [{key}] must be a JSON object")
        if key in body and ID_FIELD in body[key]:
            return fail("mapper_parsing_exception", "Field [_id] is a metadata field and cannot be updated")
    action.failure = _invalid_index(index)
    return action


def _invalid_index(index: str) -> ItemFailure | None:
    try:
        validate_collection_name(index)
    except BadRequest as exc:
        return ItemFailure(exc.status, exc.type, exc.reason, {"index_uuid": "_na_", "index": index})
    return None


def parse_bulk(body: bytes, default_index: str | None, new_id: Callable[[], str]) -> list[BulkAction]:
    """The actions of a ``_bulk`` body. Malformed action lines and missing indices or ids are a 400."""
    lines = body.split(b"\n")
    actions: list[BulkAction] = []
    problems: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        op, meta = _action_line(line, i)
        position = len(actions)
        index = meta.get("_index", default_index)
        if index is None:
            problems.append("index is missing")
            index = ""
        elif not isinstance(index, str):
            raise BadRequest(f"Action/metadata line [{i}]: [_index] must be a string")
        id_ = _check_id(meta.get("_id"), problems)
        if op in ("update", "delete") and id_ is None:
            problems.append("id is missing")
        if op == "delete":
            actions.append(BulkAction(op, index, id_ or "", position, failure=_invalid_index(index)))
            continue
        if i >= len(lines) or (i == len(lines) - 1 and not lines[i].strip()):
            raise BadRequest(f"the [{op}] action on line [{i}] is not followed by a document line")
        raw = lines[i].strip()
        i += 1
        try:
            source = _read_json(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            failure = ItemFailure(400, "mapper_parsing_exception", f"failed to parse: {exc}")
            actions.append(BulkAction(op, index, id_ or new_id(), position, failure=failure))
            continue
        if op == "update":
            actions.append(update_action(index, id_ or "", source, position))
        else:
            actions.append(document_action(op, index, id_ or new_id(), source, position))
    if problems:
        listed = "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        raise BadRequest(f"Validation Failed: {listed}", type="action_request_validation_exception")
    if not actions:
        raise BadRequest(
            "Validation Failed: 1: no requests added;", type="action_request_validation_exception"
        )
    return actions


def _action_line(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    try:
        data = _read_json(line)
    except orjson.JSONDecodeError as exc:
        raise ParsingError(
            f"Malformed action/metadata line [{number}]: {exc}", type="x_content_parse_exception"
        ) from None
    if not isinstance(data, dict) or len(data) != 1:
        raise BadRequest(
            f"Malformed action/metadata line [{number}], expected a JSON object with one of"
            f" [create], [delete], [index] or [update]"
        )
    ((op, meta),) = data.items()
    if op not in OPS:
        raise BadRequest(
            f"Malformed action/metadata line [{number}], expected field [create], [delete], [index]"
            f" or [update] but found [{op}]"
        )
    if not isinstance(meta, dict):
        raise BadRequest(f"Malformed action/metadata line [{number}], expected START_OBJECT")
    for key, value in meta.items():
        if key in _UNSUPPORTED_META and value is not None:
            raise BadRequest(f"Action/metadata line [{number}]: parameter [{key}] is not supported")
        if key not in _META and key not in _UNSUPPORTED_META:
            raise BadRequest(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
    op_type = meta.get("op_type")
    if op_type is not None:
        if op != "index" or op_type not in ("index", "create"):
            raise BadRequest(f"Action/metadata line [{number}]: [op_type] must be index or create on index")
        op = op_type
    return op, meta


# -- execution -----------------------------------------------------------------------------

Sources = Callable[[str, list[str]], dict[str, dict[str, Any]]]


def stored_sources(search: SearchService, index: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ``_source`` of each stored document among ``ids``, by id (one search per 10 000 ids)."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        body = {"query": {"ids": {"values": chunk}}, "size": len(chunk), "track_total_hits": False}
        for hit in search.search(index, body)["hits"]["hits"]:
            out[hit["_id"]] = hit.get("_source", {})
    return out


def merge_doc(stored: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Elasticsearch's partial update: objects merge recursively, any other value replaces."""
    out = dict(stored)
    for key, value in doc.items():
        old = out.get(key)
        out[key] = merge_doc(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def run_bulk(actions: Sequence[BulkAction], ingest: IngestService, sources: Sources) -> list[ItemResult]:
    """Execute parsed actions: per round and index one ingest call (one commit); results in order."""
    results: dict[int, ItemResult] = {}
    pending: list[BulkAction] = []
    for action in actions:
        if action.failure is not None:
            results[action.position] = ItemResult(action, action.failure.status, failure=action.failure)
        else:
            pending.append(action)
    for round_ in _rounds(pending):
        by_index: dict[str, list[BulkAction]] = defaultdict(list)
        for action in round_:
            by_index[action.index].append(action)
        for index, group in by_index.items():
            for result in _run_group(index, group, ingest, sources):
                results[result.action.position] = result
    return [results[a.position] for a in actions]


def execute(
    body: bytes, default_index: str | None, ingest: IngestService, sources: Sources
) -> dict[str, Any]:
    """A whole ``_bulk`` request: parse, run, and the Elasticsearch response."""
    started = time.perf_counter()
    results = run_bulk(parse_bulk(body, default_index, ingest.id_factory), ingest, sources)
    return bulk_response(results, int((time.perf_counter() - started) * 1000))


def _rounds(actions: Sequence[BulkAction]) -> list[list[BulkAction]]:
    seen: dict[tuple[str, str], int] = defaultdict(int)
    rounds: list[list[BulkAction]] = []
    for action in actions:
        key = (action.index, action.id)
        k = seen[key]
        seen[key] += 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(action)
    return rounds


def _exists(ingest: IngestService, index: str) -> bool:
    try:
        ingest.engine.get_collection(index)
    except CollectionNotFound:
        return False
    return True


def _run_group(
    index: str, group: list[BulkAction], ingest: IngestService, sources: Sources
) -> list[ItemResult]:
    """One round's actions on one index: a single ingest call, then each item's outcome."""
    exists = _exists(ingest, index)
    updates = [a.id for a in group if a.op == "update"]
    current = sources(index, updates) if exists and updates else {}
    out: list[ItemResult] = []
    writes: list[BulkAction] = []
    docs: list[dict[str, Any]] = []
    deletes: list[BulkAction] = []
    overwrite: set[str] = set()
    for action in group:
        if action.op == "delete":
            deletes.append(action)
            continue
        doc: dict[str, Any] = action.source
        if action.op == "update":
            body: dict[str, Any] = action.source
            stored = current.get(action.id)
            if stored is None:
                upsert = body.get("upsert", body["doc"] if body.get("doc_as_upsert") else None)
                if upsert is None:
                    missing = _doc_failure(
                        404, "document_missing_exception", f"[{action.id}]: document missing", index
                    )
                    out.append(ItemResult(action, 404, failure=missing))
                    continue
                doc = upsert
            else:
                doc = merge_doc(stored, body["doc"])
                if body.get("detect_noop", True) is not False and doc == stored:
                    out.append(ItemResult(action, 200, "noop"))
                    continue
                overwrite.add(action.id)
        elif action.op == "index":
            overwrite.add(action.id)
        writes.append(action)
        docs.append({**doc, ID_FIELD: action.id})
    if not exists and not writes:  # nothing creates the index, so there is nothing to delete from
        out += [ItemResult(a, 404, failure=index_not_found(index)) for a in deletes]
        deletes = []
    if not writes and not deletes:
        return out
    written = ingest.ingest(
        index,
        docs,
        positions=[a.position for a in writes],
        overwrite=overwrite,
        delete=[a.id for a in deletes],
    )
    errors = {e.position: e for e in written.errors}
    duplicates, overwritten = set(written.duplicate_ids), set(written.overwritten_ids)
    for action in writes:
        error = errors.get(action.position)
        if error is not None:
            out.append(ItemResult(action, 400, failure=ItemFailure(400, error.type, error.reason)))
        elif action.id in duplicates:
            reason = f"[{action.id}]: version conflict, document already exists (current version [{VERSION}])"
            conflict = _doc_failure(409, "version_conflict_engine_exception", reason, index)
            out.append(ItemResult(action, 409, failure=conflict))
        elif action.id in overwritten:
            out.append(ItemResult(action, 200, "updated"))
        else:
            out.append(ItemResult(action, 201, "created"))
    deleted = set(written.deleted_ids)
    for action in deletes:
        found = action.id in deleted
        out.append(ItemResult(action, 200 if found else 404, "deleted" if found else "not_found"))
    return out

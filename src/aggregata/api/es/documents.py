"""Document endpoints: ``_bulk``, ``_doc`` (index, get, delete), ``_create`` and ``_update``.

Every write, single or bulk, goes through ``ingest/bulk.py``: a single-document request is
a bulk of one, so both share one set of semantics (overwrite on ``index``, 409 on
``create``, merge on ``update``) and the same committed write path. Indices are created on
first write, as Elasticsearch does by default.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import Request
from starlette.responses import Response

from aggregata.api.deps import ServicesDep, blocking
from aggregata.api.errors import ElasticsearchError
from aggregata.api.es.common import (
    CONCURRENCY_PARAMS,
    WRITE_PARAMS,
    check_params,
    es_body,
    es_router,
    head,
    refresh_param,
)
from aggregata.api.responses import JSONResponse
from aggregata.errors import AggregataError, BadRequest
from aggregata.ingest import bulk
from aggregata.services import Services

router = es_router()

_SOURCE_PARAMS = {"_source", "_source_includes", "_source_excludes"}
_GET_PARAMS = {"preference", "realtime", "refresh", "routing", "stored_fields", *_SOURCE_PARAMS}


def _sources(services: Services) -> bulk.Sources:
    return partial(bulk.stored_sources, services.search)


def _valid_id(doc_id: str) -> str:
    if len(doc_id.encode()) > bulk.MAX_ID_BYTES:
        raise BadRequest(
            f"Validation Failed: 1: id [{doc_id[:40]}...] is too long, must be no longer than"
            f" {bulk.MAX_ID_BYTES} bytes;",
            type="action_request_validation_exception",
        )
    return doc_id


@router.post("/_bulk", summary="Bulk index, create, update and delete (NDJSON)")
@router.put("/_bulk", include_in_schema=False)
@router.post("/{index}/_bulk", summary="Bulk operations with a default index")
@router.put("/{index}/_bulk", include_in_schema=False)
async def bulk_api(request: Request, services: ServicesDep, index: str | None = None) -> dict[str, Any]:
    """Action/source line pairs; per index one committed write; per-item results in order.

    A malformed action line is a 400 for the whole request; a document that does not fit
    the mapping fails only its item (`errors: true`, the item's `status` and `error`).
    """
    check_params(request, WRITE_PARAMS | {"_source", "_source_includes", "_source_excludes"})
    refresh_param(request)
    body = await request.body()
    return await blocking(bulk.execute, body, index, services.ingest, _sources(services))


async def _write_one(services: Services, action: bulk.BulkAction, request: Request) -> Response:
    """Run one action as a bulk of one; failures become Elasticsearch errors with their status."""
    forced = refresh_param(request)
    [result] = await blocking(bulk.run_bulk, [action], services.ingest, _sources(services))
    if result.failure is not None:
        failure = result.failure
        raise ElasticsearchError(failure.status, failure.type, failure.reason, **failure.metadata)
    body = result.body()
    if forced:
        body["forced_refresh"] = True
    return JSONResponse(body, status_code=result.status)


@router.put("/{index}/_doc/{doc_id:path}", summary="Index a document (create or overwrite)")
@router.post("/{index}/_doc/{doc_id:path}", include_in_schema=False)
async def index_doc(index: str, doc_id: str, request: Request, services: ServicesDep) -> Response:
    """`result` is `created` (201) or `updated` (200): an existing document is replaced whole.

    `op_type=create` refuses to replace (409 `version_conflict_engine_exception`).
    """
    check_params(request, WRITE_PARAMS | {"op_type"}, CONCURRENCY_PARAMS)
    op = request.query_params.get("op_type", "index")
    if op not in ("index", "create"):
        raise BadRequest(f"opType must be 'create' or 'index', found: [{op}]")
    action = bulk.document_action(op, index, _valid_id(doc_id), await es_body(request))
    return await _write_one(services, action, request)


@router.post("/{index}/_doc", summary="Index a document with a generated id")
async def index_auto_id(index: str, request: Request, services: ServicesDep) -> Response:
    check_params(request, WRITE_PARAMS | {"op_type"}, CONCURRENCY_PARAMS)
    doc_id = services.ingest.id_factory()
    action = bulk.document_action("create", index, doc_id, await es_body(request))
    return await _write_one(services, action, request)


@router.put("/{index}/_create/{doc_id:path}", summary="Create a document; 409 if the id exists")
@router.post("/{index}/_create/{doc_id:path}", include_in_schema=False)
async def create_doc(index: str, doc_id: str, request: Request, services: ServicesDep) -> Response:
    check_params(request, WRITE_PARAMS, CONCURRENCY_PARAMS)
    action = bulk.document_action("create", index, _valid_id(doc_id), await es_body(request))
    return await _write_one(services, action, request)


@router.post("/{index}/_update/{doc_id:path}", summary="Partially update a document")
async def update_doc(index: str, doc_id: str, request: Request, services: ServicesDep) -> Response:
    """`doc` is merged into the stored document; `upsert` / `doc_as_upsert` create it if missing."""
    check_params(request, WRITE_PARAMS | {"retry_on_conflict", "lang"}, CONCURRENCY_PARAMS | _SOURCE_PARAMS)
    action = bulk.update_action(index, _valid_id(doc_id), await es_body(request))
    return await _write_one(services, action, request)


@router.delete("/{index}/_doc/{doc_id:path}", summary="Delete a document")
async def delete_doc(index: str, doc_id: str, request: Request, services: ServicesDep) -> Response:
    """`result` is `deleted` (200) or `not_found` (404, the same body shape)."""
    check_params(request, WRITE_PARAMS, CONCURRENCY_PARAMS)
    services.engine.get_collection(index)
    return await _write_one(services, bulk.BulkAction("delete", index, doc_id, 0), request)


async def _get(services: Services, index: str, doc_id: str, request: Request) -> dict[str, Any] | None:
    """The stored document as a search hit (with `_source` filtered by the parameters), or None."""
    services.engine.get_collection(index)
    body: dict[str, Any] = {"query": {"ids": {"values": [doc_id]}}, "size": 1, "track_total_hits": False}
    source = _source_filter(request)
    if source is not None:
        body["_source"] = source
    hits = (await blocking(services.search.search, index, body))["hits"]["hits"]
    return hits[0] if hits else None


def _source_filter(request: Request) -> Any:
    params = request.query_params
    if "stored_fields" in params:
        raise BadRequest("[stored_fields] is not supported; every field is in _source")
    spec = params.get("_source")
    includes, excludes = params.get("_source_includes"), params.get("_source_excludes")
    if spec in ("false", "true", ""):
        return spec != "false"
    if spec is not None:
        includes = spec
    if includes is None and excludes is None:
        return None
    return {
        "includes": includes.split(",") if includes else [],
        "excludes": excludes.split(",") if excludes else [],
    }


@router.get("/{index}/_doc/{doc_id:path}", summary="Get a document by id")
async def get_doc(index: str, doc_id: str, request: Request, services: ServicesDep) -> JSONResponse:
    check_params(request, _GET_PARAMS, CONCURRENCY_PARAMS)
    hit = await _get(services, index, doc_id, request)
    if hit is None:
        return JSONResponse({"_index": index, "_id": doc_id, "found": False}, status_code=404)
    out = {
        "_index": index,
        "_id": doc_id,
        "_version": bulk.VERSION,
        "_seq_no": bulk.SEQ_NO,
        "_primary_term": bulk.PRIMARY_TERM,
        "found": True,
    }
    if "_source" in hit:
        out["_source"] = hit["_source"]
    return JSONResponse(out)


@router.head("/{index}/_doc/{doc_id:path}", summary="Does the document exist?")
async def doc_exists(index: str, doc_id: str, request: Request, services: ServicesDep) -> Response:
    try:
        hit = await _get(services, index, doc_id, request)
    except AggregataError as exc:  # HEAD answers carry no body, errors included
        return head(exc.status)
    return head(200 if hit is not None else 404)


@router.get("/{index}/_source/{doc_id:path}", summary="Get only a document's _source")
async def get_source(index: str, doc_id: str, request: Request, services: ServicesDep) -> Any:
    check_params(request, _GET_PARAMS)
    hit = await _get(services, index, doc_id, request)
    if hit is None:
        raise ElasticsearchError(
            404,
            "resource_not_found_exception",
            f"Document not found [{index}]/[{doc_id}]",
        )
    return hit.get("_source", {})

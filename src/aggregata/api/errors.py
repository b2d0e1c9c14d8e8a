"""One error shape for every failure: ``{"error": {"type", "reason"}, "status"}``, never a trace.

Under the Elasticsearch-compatible API (``/es``) errors take Elasticsearch's exact shape
instead, ``{"error": {"root_cause": [...], "type", "reason", ...}, "status"}``, because
Elasticsearch clients parse it to build their exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from aggregata.api.responses import JSONResponse
from aggregata.errors import AggregataError, CollectionNotFound

log = logging.getLogger("aggregata")

ES_PREFIX = "/es"
# Elasticsearch clients (elasticsearch-py >= 7.14) refuse servers whose answers lack it.
ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}


class ElasticsearchError(AggregataError):
    """An error of the Elasticsearch API with its own status and Elasticsearch's metadata fields.

    The Elasticsearch API sometimes gives a type another status than the rest of Aggregata
    does (``resource_already_exists_exception`` is 400 there) and adds fields clients read
    (``index``, ``index_uuid``, ``shard``).
    """

    def __init__(self, status: int, type: str, reason: str, **metadata: Any) -> None:
        super().__init__(reason, type=type)
        self.status = status
        self.metadata = metadata


def is_es_path(path: str) -> bool:
    return path == ES_PREFIX or path.startswith(ES_PREFIX + "/")


def error_response(
    status: int, type_: str, reason: str, *, es: bool = False, metadata: dict[str, Any] | None = None
) -> Response:
    if es:
        cause = {"type": type_, "reason": reason, **(metadata or {})}
        body = {"error": {"root_cause": [cause], **cause}, "status": status}
        return JSONResponse(body, status_code=status, headers=ES_HEADERS)
    return JSONResponse({"error": {"type": type_, "reason": reason}, "status": status}, status_code=status)


def _es_metadata(exc: AggregataError) -> tuple[str, dict[str, Any]]:
    """Elasticsearch's reason and metadata fields for errors raised by shared code."""
    if isinstance(exc, ElasticsearchError):
        return exc.reason, exc.metadata
    if isinstance(exc, CollectionNotFound):
        name = exc.name
        meta = {"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name}
        return f"no such index [{name}]", meta
    return exc.reason, {}


async def _aggregata_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AggregataError)
    if is_es_path(request.url.path):
        reason, metadata = _es_metadata(exc)
        return error_response(exc.status, exc.type, reason, es=True, metadata=metadata)
    return error_response(exc.status, exc.type, exc.reason)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    es = is_es_path(request.url.path)
    return error_response(400, "parsing_exception", f"[{where}] {first.get('msg')}", es=es)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed", 413: "content_too_long_exception"}
    type_ = kinds.get(exc.status_code, "http_error")
    return error_response(exc.status_code, type_, str(exc.detail), es=is_es_path(request.url.path))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    reason = f"internal error: {type(exc).__name__}"
    return error_response(500, "internal_error", reason, es=is_es_path(request.url.path))


def install(app: FastAPI) -> None:
    app.add_exception_handler(AggregataError, _aggregata_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

"""One error shape for every failure: ``{"error": {"type", "reason"}, "status"}``, never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from aggregata.api.responses import JSONResponse
from aggregata.errors import AggregataError

log = logging.getLogger("aggregata")


def error_response(status: int, type_: str, reason: str) -> Response:
    return JSONResponse({"error": {"type": type_, "reason": reason}, "status": status}, status_code=status)


async def _aggregata_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AggregataError)
    return error_response(exc.status, exc.type, exc.reason)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return error_response(400, "parsing_exception", f"[{where}] {first.get('msg')}")


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed", 413: "content_too_long_exception"}
    return error_response(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail))


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")


def install(app: FastAPI) -> None:
    app.add_exception_handler(AggregataError, _aggregata_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

"""What every Elasticsearch-compatible endpoint shares: the route class, parameters, bodies.

Elasticsearch refuses query parameters it does not know (``contains unrecognized
parameter``) instead of ignoring them; so do we, so that a client asking for something we
cannot do (``scroll``, ``if_seq_no``) learns it instead of getting a silently different
answer. Parameters that only steer shards, routing or waiting are accepted and ignored:
there is one shard and every acknowledged write is already visible.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from fnmatch import fnmatchcase
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from aggregata import __version__
from aggregata.api.deps import json_body
from aggregata.api.errors import ES_HEADERS, ES_PREFIX
from aggregata.errors import BadRequest, ParsingError

ES_VERSION = "8.11.0"
CLUSTER_NAME = "aggregata"
TAGLINE = "You Know, for Search"
SEARCH_SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}

# Accepted by every endpoint, as in Elasticsearch.
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path", "source", "source_content_type"})
# Accepted and ignored: shard, routing and wait controls are moot on a single shard.
WRITE_PARAMS = frozenset({"refresh", "routing", "timeout", "wait_for_active_shards", "require_alias"})
CONCURRENCY_PARAMS = frozenset({"if_seq_no", "if_primary_term", "version", "version_type", "pipeline"})


class EsRoute(APIRoute):
    """Adds the product header, and applies ``filter_path`` and ``pretty``, to every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return finish(request, await handler(request))

        return route


def es_router() -> APIRouter:
    return APIRouter(route_class=EsRoute, tags=["elasticsearch"])


def finish(request: Request, response: Response) -> Response:
    params = request.query_params
    wants_filter = "filter_path" in params
    wants_pretty = "pretty" in params and params["pretty"] != "false"
    if (wants_filter or wants_pretty) and response.media_type == "application/json" and response.body:
        data = orjson.loads(response.body)
        if wants_filter:
            data = filter_path(data, [p for p in params["filter_path"].split(",") if p])
        option = orjson.OPT_INDENT_2 if wants_pretty else 0
        body = orjson.dumps(data, option=option | orjson.OPT_NON_STR_KEYS) + (b"\n" if wants_pretty else b"")
        response = Response(body, status_code=response.status_code, media_type="application/json")
    response.headers.update(ES_HEADERS)
    return response


def head(status: int) -> Response:
    """An answer to ``HEAD``: status only, no body."""
    return Response(status_code=status, headers=ES_HEADERS)


# -- parameters ----------------------------------------------------------------------------


def check_params(request: Request, allowed: Iterable[str] = (), unsupported: Iterable[str] = ()) -> None:
    """Refuse parameters the endpoint does not know, and those it knows but cannot honour."""
    allowed, unsupported = frozenset(allowed), frozenset(unsupported)
    path = request.url.path.removeprefix(ES_PREFIX) or "/"
    for key in request.query_params:
        if key in unsupported:
            raise BadRequest(f"request [{path}]: parameter [{key}] is not supported by Aggregata")
        if key not in allowed and key not in COMMON_PARAMS:
            raise BadRequest(f"request [{path}] contains unrecognized parameter: [{key}]")


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    """Elasticsearch booleans: ``true``, ``false``, or present without a value (true)."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise BadRequest(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def refresh_param(request: Request) -> bool:
    """``refresh`` is accepted (every committed write is already searchable); true if forced."""
    value = request.query_params.get("refresh")
    if value is None:
        return False
    if value not in ("", "true", "false", "wait_for"):
        raise BadRequest(f"Unknown value for refresh: [{value}].")
    return value in ("", "true")


def single_index(index: str) -> str:
    """Endpoints that read one collection: several indices or patterns are a clear 400."""
    if index == "_all" or any(c in index for c in ",*"):
        raise BadRequest(f"[{index}]: searching several indices at once is not supported; name one index")
    return index


async def es_body(request: Request) -> Any:
    """The JSON body, or the ``source`` parameter clients use instead of a body on GET."""
    body = await json_body(request)
    source = request.query_params.get("source")
    if body is None and source is not None:
        try:
            return orjson.loads(source)
        except orjson.JSONDecodeError as exc:
            raise ParsingError(
                f"[source] is not valid JSON: {exc}", type="x_content_parse_exception"
            ) from None
    return body


def object_body(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ParsingError(f"the {what} body must be a JSON object")
    return body


def cluster_info(engine: str) -> dict[str, Any]:
    """``GET /``: Elasticsearch 8's shape, which clients read to decide they may talk to us."""
    return {
        "name": CLUSTER_NAME,
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": "aggregata-single-node",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "aggregata",
            "build_hash": __version__,
            "build_snapshot": False,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": TAGLINE,
        "aggregata": {"version": __version__, "engine": engine},
    }


# -- filter_path ---------------------------------------------------------------------------


def filter_path(data: Any, patterns: list[str]) -> Any:
    """Elasticsearch's ``filter_path``: dotted patterns, ``*`` within a name, ``**`` any depth,
    ``-`` to exclude. Arrays are transparent, as in Elasticsearch."""
    includes = [p.split(".") for p in patterns if not p.startswith("-")]
    excludes = [p[1:].split(".") for p in patterns if p.startswith("-")]
    if includes:
        kept = _include(data, includes)
        data = {} if kept is None else kept
    if excludes:
        data = _exclude(data, excludes)
    return data


def _step(key: str, paths: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for path in paths:
        if path == ["**"]:
            out.append([])
        elif path[0] == "**":
            out.append(path)
            if len(path) > 1 and fnmatchcase(key, path[1]):
                out.append(path[2:])
        elif fnmatchcase(key, path[0]):
            out.append(path[1:])
    return out


def _include(node: Any, paths: list[list[str]]) -> Any:
    if isinstance(node, list):
        items = [_include(v, paths) for v in node]
        kept = [v for v in items if v is not None]
        return kept or None
    if not isinstance(node, dict):
        return None
    out = {}
    for key, value in node.items():
        rest = _step(str(key), paths)
        if any(not p for p in rest):
            out[key] = value
        elif rest:
            sub = _include(value, rest)
            if sub is not None:
                out[key] = sub
    return out or None


def _exclude(node: Any, paths: list[list[str]]) -> Any:
    if isinstance(node, list):
        return [_exclude(v, paths) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        rest = _step(str(key), paths)
        if any(not p for p in rest):
            continue
        out[key] = _exclude(value, rest) if rest else value
    return out

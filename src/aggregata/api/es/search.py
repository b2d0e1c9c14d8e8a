"""``_search`` and ``_count`` on one index, delegated to the search service.

URL parameters (``size``, ``from``, ``sort``, ``_source``, ``q``, ...) override the body,
as in Elasticsearch. ``q`` understands the part of the Lucene query syntax that maps onto
the DSL without guessing: ``field:value``, ``field:"a phrase"``, ``field:*``, ``*``, joined
by ``AND`` or by ``OR`` (or whitespace, Lucene's default ``OR``). Anything else is a 400
rather than a query with a different meaning.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from aggregata.api.deps import ServicesDep, blocking
from aggregata.api.es.common import (
    SEARCH_SHARDS,
    bool_param,
    check_params,
    es_body,
    es_router,
    int_param,
    object_body,
    single_index,
)
from aggregata.errors import BadRequest, ParsingError

router = es_router()

_IGNORED = {
    "allow_no_indices",
    "allow_partial_search_results",
    "batched_reduce_size",
    "ccs_minimize_roundtrips",
    "expand_wildcards",
    "ignore_throttled",
    "ignore_unavailable",
    "max_concurrent_shard_requests",
    "pre_filter_shard_size",
    "preference",
    "request_cache",
    "routing",
    "search_type",
}
_SEARCH_PARAMS = _IGNORED | {
    "q",
    "size",
    "from",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "timeout",
    "rest_total_hits_as_int",
    "typed_keys",
}
_UNSUPPORTED = {
    "scroll",
    "terminate_after",
    "stored_fields",
    "docvalue_fields",
    "explain",
    "version",
    "seq_no_primary_term",
    "df",
    "default_operator",
    "analyzer",
    "analyze_wildcard",
    "lenient",
    "suggest_field",
    "search_pipeline",
}
_COUNT_PARAMS = _IGNORED | {"q"}

_CLAUSE = re.compile(r'([A-Za-z0-9_@$.\-]+):(?:"((?:[^"\\]|\\.)*)"|([^\s"()\[\]{}]+))\s*')
_CONNECTOR = re.compile(r"(AND|OR|&&|\|\|)\s+")


def query_from_q(q: str) -> dict[str, Any]:
    """A ``q`` parameter → a DSL query (see the module docstring for the syntax understood)."""
    text = q.strip()
    if text in ("", "*", "*:*"):
        return {"match_all": {}}
    clauses: list[dict[str, Any]] = []
    connectors: set[str] = set()
    pos = 0
    while pos < len(text):
        m = _CLAUSE.match(text, pos)
        if m is None:
            raise BadRequest(
                f"[q] cannot parse [{text[pos:][:40]}]: only field:value clauses joined by AND or OR"
                " are supported; use the query DSL in the body"
            )
        field, quoted, bare = m.groups()
        if quoted is not None:
            clauses.append({"term": {field: re.sub(r"\\(.)", r"\1", quoted)}})
        elif bare == "*":
            clauses.append({"exists": {"field": field}})
        else:
            clauses.append({"term": {field: bare}})
        pos = m.end()
        joined = _CONNECTOR.match(text, pos)
        if joined is not None:
            connectors.add("AND" if joined.group(1) in ("AND", "&&") else "OR")
            pos = joined.end()
        elif pos < len(text):
            connectors.add("OR")
    if len(clauses) == 1:
        return clauses[0]
    if len(connectors) > 1:
        raise BadRequest("[q] mixing AND and OR is not supported; use the query DSL in the body")
    if connectors == {"AND"}:
        return {"bool": {"filter": clauses}}
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _sort_param(spec: str) -> list[Any]:
    out: list[Any] = []
    for part in (p for p in spec.split(",") if p):
        field, _, order = part.partition(":")
        out.append({field: order} if order else field)
    return out


def search_body(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """The search body with URL parameters applied on top (parameters win, as in Elasticsearch)."""
    params = request.query_params
    out = dict(body)
    if "q" in params:
        out["query"] = query_from_q(params["q"])
    for name in ("size", "from"):
        value = int_param(request, name)
        if value is not None:
            out[name] = value
    if "sort" in params:
        out["sort"] = _sort_param(params["sort"])
    if "timeout" in params:
        out["timeout"] = params["timeout"]
    track = params.get("track_total_hits")
    if track is not None:
        out["track_total_hits"] = int(track) if track.isdigit() else bool_param(request, "track_total_hits")
    source = params.get("_source")
    if source in ("true", "false"):
        out["_source"] = source == "true"
    elif source is not None:
        out["_source"] = source.split(",")
    includes, excludes = params.get("_source_includes"), params.get("_source_excludes")
    if includes is not None or excludes is not None:
        out["_source"] = {
            "includes": includes.split(",") if includes else [],
            "excludes": excludes.split(",") if excludes else [],
        }
    return out


@router.post("/_search", include_in_schema=False)
@router.get("/_search", include_in_schema=False)
@router.post("/_count", include_in_schema=False)
@router.get("/_count", include_in_schema=False)
def all_indices() -> None:
    """Searching every index at once has no single mapping to compile against."""
    raise BadRequest("searching all indices is not supported; name one index: /es/{index}/_search")


@router.get("/{index}/_search", summary="Search an index (Elasticsearch)")
@router.post("/{index}/_search", include_in_schema=False)
async def search(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """The Elasticsearch search body; the response is Elasticsearch's (`hits`, `aggregations`)."""
    check_params(request, _SEARCH_PARAMS, _UNSUPPORTED)
    if bool_param(request, "typed_keys"):
        raise BadRequest("[typed_keys] is not supported")
    body = search_body(object_body(await es_body(request), "search"), request)
    response = await blocking(services.search.search, single_index(index), body)
    total = response["hits"].get("total")
    if bool_param(request, "rest_total_hits_as_int") and isinstance(total, dict):
        response["hits"]["total"] = total["value"]
    return response


@router.get("/{index}/_count", summary="Count matching documents")
@router.post("/{index}/_count", include_in_schema=False)
async def count(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """`{"count": n}` for the body's `query` (or `q`); the body accepts nothing else."""
    check_params(request, _COUNT_PARAMS, {"min_score", "terminate_after", *_UNSUPPORTED})
    body = object_body(await es_body(request), "count")
    unknown = sorted(set(body) - {"query"})
    if unknown:
        raise ParsingError(f"request does not support [{unknown[0]}]")
    query = query_from_q(request.query_params["q"]) if "q" in request.query_params else body.get("query")
    search_request: dict[str, Any] = {"size": 0, "track_total_hits": True}
    if query is not None:
        search_request["query"] = query
    response = await blocking(services.search.search, single_index(index), search_request)
    return {"count": response["hits"]["total"]["value"], "_shards": SEARCH_SHARDS}

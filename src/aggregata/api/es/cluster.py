"""Cluster-level endpoints: ``GET /``, ``_cluster/health`` and ``_cat/indices``.

Aggregata is one node holding one shard per index, with no replicas, so the cluster is
always ``green`` and every index reports ``pri`` 1, ``rep`` 0.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from fastapi import Request
from starlette.responses import PlainTextResponse, Response

from aggregata.api.deps import ServicesDep, blocking
from aggregata.api.es.common import CLUSTER_NAME, bool_param, check_params, cluster_info, es_router, head
from aggregata.api.responses import JSONResponse
from aggregata.errors import BadRequest, CollectionNotFound
from aggregata.ingest.bulk import index_uuid
from aggregata.services import Services

router = es_router()

_HEALTH_PARAMS = {
    "wait_for_status",
    "wait_for_nodes",
    "wait_for_active_shards",
    "wait_for_no_relocating_shards",
    "wait_for_no_initializing_shards",
    "wait_for_events",
    "timeout",
    "master_timeout",
    "level",
    "local",
    "expand_wildcards",
}
_CAT_PARAMS = {
    "format",
    "v",
    "h",
    "s",
    "bytes",
    "pri",
    "health",
    "expand_wildcards",
    "local",
    "master_timeout",
}
_CAT_COLUMNS = ("health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted")
_NUMERIC = frozenset({"pri", "rep", "docs.count", "docs.deleted"})


@router.get("/", summary="Cluster information")
@router.get("", include_in_schema=False)
def info(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Name, version and tagline in Elasticsearch 8's shape, so clients accept the server."""
    check_params(request)
    return cluster_info(services.engine.dialect)


@router.head("/", summary="Ping")
@router.head("", include_in_schema=False)
def ping() -> Response:
    return head(200)


def _names(services: Services, pattern: str | None) -> list[str]:
    """Index names matching a comma-separated list of names or ``*`` patterns; unknown names 404."""
    names = [c.name for c in services.engine.list_collections()]
    if pattern is None or pattern in ("_all", "*"):
        return names
    out: list[str] = []
    for part in pattern.split(","):
        if "*" in part:
            out += [n for n in names if fnmatchcase(n, part) and n not in out]
        elif part not in names:
            raise CollectionNotFound(part)
        elif part not in out:
            out.append(part)
    return out


@router.get("/_cluster/health", summary="Cluster health")
@router.get("/_cluster/health/{index}", summary="Cluster health of indices")
def health(request: Request, services: ServicesDep, index: str | None = None) -> dict[str, Any]:
    """Always green: one node, one shard per index, nothing to wait for."""
    check_params(request, _HEALTH_PARAMS)
    shards = len(_names(services, index))
    return {
        "cluster_name": CLUSTER_NAME,
        "status": "green",
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": shards,
        "active_shards": shards,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    }


@router.get("/_cat/indices", summary="List indices (cat)")
@router.get("/_cat/indices/{index}", summary="List matching indices (cat)")
async def cat_indices(request: Request, services: ServicesDep, index: str | None = None) -> Response:
    """A text table (``?v`` adds headers, ``?h`` picks columns, ``?s`` sorts) or ``?format=json``."""
    check_params(request, _CAT_PARAMS)
    fmt = request.query_params.get("format", "text")
    if fmt not in ("text", "json"):
        raise BadRequest(f"unsupported format [{fmt}]; use text or json")
    names = _names(services, index)
    counts = [await blocking(services.engine.count, n) for n in names]
    rows = [
        {
            "health": "green",
            "status": "open",
            "index": name,
            "uuid": index_uuid(name),
            "pri": "1",
            "rep": "0",
            "docs.count": str(count),
            "docs.deleted": "0",
        }
        for name, count in zip(names, counts, strict=True)
    ]
    wanted = request.query_params.get("health")
    if wanted is not None and wanted != "green":
        rows = []
    columns = _columns(request.query_params.get("h"))
    rows = _sorted(rows, request.query_params.get("s"))
    rows = [{c: row[c] for c in columns} for row in rows]
    if fmt == "json":
        return JSONResponse(rows)
    return PlainTextResponse(_table(rows, columns, bool_param(request, "v")))


def _columns(spec: str | None) -> list[str]:
    if spec is None:
        return list(_CAT_COLUMNS)
    columns = [c.strip() for c in spec.split(",") if c.strip()]
    chosen = [c for pattern in columns for c in _CAT_COLUMNS if fnmatchcase(c, pattern)]
    unknown = [p for p in columns if not any(fnmatchcase(c, p) for c in _CAT_COLUMNS)]
    if unknown:
        raise BadRequest(f"header [{unknown[0]}] is not known; use {', '.join(_CAT_COLUMNS)}")
    return list(dict.fromkeys(chosen))


def _sorted(rows: list[dict[str, str]], spec: str | None) -> list[dict[str, str]]:
    """``?s=docs.count:desc,index``: applied last key first so earlier keys dominate."""
    if not spec:
        return sorted(rows, key=lambda r: r["index"])
    for part in reversed([p for p in spec.split(",") if p]):
        column, _, order = part.partition(":")
        if column not in _CAT_COLUMNS or order not in ("", "asc", "desc"):
            raise BadRequest(f"cannot sort by [{part}]")

        def key(row: dict[str, str], column: str = column) -> Any:
            return int(row[column]) if column in _NUMERIC else row[column]

        rows = sorted(rows, key=key, reverse=order == "desc")
    return rows


def _table(rows: list[dict[str, str]], columns: list[str], header: bool) -> str:
    """Elasticsearch's cat layout: space-separated columns, numbers right-aligned."""
    titles = {c: c for c in columns}
    lines = [titles, *rows] if header else rows
    widths = {c: max((len(line[c]) for line in lines), default=0) for c in columns}

    def cell(line: dict[str, str], c: str) -> str:
        numeric = c in _NUMERIC and line is not titles
        return line[c].rjust(widths[c]) if numeric else line[c].ljust(widths[c])

    return "".join(" ".join(cell(line, c) for c in columns).rstrip() + "\n" for line in lines)

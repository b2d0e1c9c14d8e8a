"""``/v1/collections/{name}/_search``: the Elasticsearch search body and response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from aggregata.api.deps import ServicesDep, blocking, json_body
from aggregata.api.responses import JSONResponse

router = APIRouter(prefix="/v1/collections", tags=["search"])

SEARCH_EXAMPLE = {
    "query": {
        "bool": {
            "filter": [
                {"term": {"category": "Electronics"}},
                {"range": {"created_date": {"gte": "now-90d/d"}}},
            ],
            "must_not": [{"term": {"in_stock": False}}],
        }
    },
    "sort": [{"price": "desc"}],
    "size": 5,
    "_source": ["name", "price", "category"],
}


@router.get(
    "/{name}/_search",
    summary="Search documents (body optional)",
    operation_id="search_get",
    response_model=dict[str, Any],
)
@router.post(
    "/{name}/_search",
    summary="Search documents",
    operation_id="search",
    response_model=dict[str, Any],
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": {"type": "object"}, "example": SEARCH_EXAMPLE}}
        }
    },
)
async def search(name: str, request: Request, services: ServicesDep) -> Response:
    """Elasticsearch `_search`: `query`, `size`, `from`, `sort`, `_source`, `track_total_hits`, `profile`."""
    body = await json_body(request)
    # Rendered here with orjson: FastAPI would first walk the whole answer to re-validate it.
    return JSONResponse(await blocking(services.search.search, name, body))

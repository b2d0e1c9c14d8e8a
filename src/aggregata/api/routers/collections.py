"""Collections and their documents: create, list, inspect, delete, add documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from aggregata.api.deps import ServicesDep, blocking, json_body
from aggregata.api.responses import JSONResponse
from aggregata.errors import ParsingError
from aggregata.ingest.events import EVENT_MAPPING, EVENT_SETTINGS
from aggregata.model.mapping import Mapping
from aggregata.storage.engine import DOCUMENTS, EVENTS, Collection

router = APIRouter(prefix="/v1/collections", tags=["collections"])

DOCS_EXAMPLE = [
    {"_id": "p-1", "name": "Trail shoe", "category": "Sports", "price": 89.9, "tags": ["running"]},
    {"_id": "p-2", "name": "Kettle", "category": "Home & Kitchen", "price": 34.5},
]


class CreateCollection(BaseModel):
    """Body of ``PUT /v1/collections/{name}``: an optional Elasticsearch-style mapping."""

    mappings: dict[str, Any] | None = Field(
        None, examples=[{"properties": {"name": {"type": "text"}, "price": {"type": "double"}}}]
    )
    kind: str = Field(
        DOCUMENTS,
        description="`documents` or `events` (event collections get the core event fields).",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description='e.g. `{"dynamic": false}` for strict mappings.'
    )


def describe(coll: Collection, count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": coll.name,
        "kind": coll.kind,
        "mappings": coll.mapping.to_es(),
        "settings": coll.settings,
    }
    if count is not None:
        out["count"] = count
    return out


@router.get("", summary="List collections")
async def list_collections(services: ServicesDep) -> dict[str, Any]:
    colls = services.engine.list_collections()
    counts = [await blocking(services.engine.count, c.name) for c in colls]
    return {
        "collections": [
            {"name": c.name, "kind": c.kind, "count": n} for c, n in zip(colls, counts, strict=True)
        ]
    }


@router.put("/{name}", summary="Create a collection", status_code=201)
async def create_collection(name: str, request: Request, services: ServicesDep) -> JSONResponse:
    """Create a collection, optionally with a mapping; without one the mapping is inferred."""
    body = await json_body(request) or {}
    try:
        spec = CreateCollection.model_validate(body)
    except ValueError as exc:
        raise ParsingError(f"invalid collection body: {exc}") from None
    if spec.kind not in (DOCUMENTS, EVENTS):
        raise ParsingError(f"unknown collection kind [{spec.kind}]; use documents or events")
    mapping = Mapping.from_es(spec.mappings)
    if spec.kind == EVENTS:
        mapping = EVENT_MAPPING.with_fields(*mapping)
        spec.settings = {**EVENT_SETTINGS, **spec.settings}
    coll = await blocking(
        services.engine.create_collection, name, mapping, kind=spec.kind, settings=spec.settings
    )
    return JSONResponse({"acknowledged": True, **describe(coll)}, status_code=201)


@router.get("/{name}", summary="Describe a collection")
async def get_collection(name: str, services: ServicesDep) -> dict[str, Any]:
    coll = services.engine.get_collection(name)
    return describe(coll, await blocking(services.engine.count, name))


@router.get("/{name}/_mapping", summary="The collection's mapping")
def get_mapping(name: str, services: ServicesDep) -> dict[str, Any]:
    return {name: {"mappings": services.engine.get_collection(name).mapping.to_es()}}


@router.delete("/{name}", summary="Delete a collection and its data")
async def delete_collection(name: str, services: ServicesDep) -> dict[str, Any]:
    await blocking(services.engine.drop_collection, name)
    return {"acknowledged": True}


@router.post(
    "/{name}/documents",
    summary="Add documents (JSON array or NDJSON)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "example": DOCS_EXAMPLE,
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"_id": "p-1", "price": 1.5}\n{"_id": "p-2", "price": 2}\n',
                },
            },
        }
    },
)
async def add_documents(name: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """Store documents; the collection is created on first use. A 200 means committed to disk.

    Good documents are stored and bad ones reported per item (position, reason); documents
    whose `_id` is already stored count as `duplicates` and are not stored twice.
    """
    body = await request.body()
    result = await blocking(services.ingest.ingest_body, name, body, request.headers.get("content-type"))
    return result.to_json()

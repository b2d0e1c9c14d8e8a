"""Index endpoints: create, exists, get, delete, mappings, refresh. An index is a collection.

Mappings translate as follows. ``properties`` become the collection's mapping.
``dynamic: strict`` becomes a strict collection (documents with undeclared fields are
rejected); ``dynamic: true`` is the default. ``dynamic: false`` and ``runtime`` are refused:
Elasticsearch would keep unmapped fields in ``_source`` without indexing them, and a
columnar store has nowhere to keep them. ``_meta``, ``_source`` and ``_routing`` are
accepted and ignored; ``settings`` (shards, replicas, analysis) are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from aggregata.api.deps import ServicesDep, blocking
from aggregata.api.errors import ElasticsearchError
from aggregata.api.es.common import check_params, es_body, es_router, head, object_body
from aggregata.errors import BadRequest, CollectionNotFound, Conflict, ParsingError
from aggregata.ingest.bulk import SHARDS, index_uuid
from aggregata.model.documents import Batch
from aggregata.model.mapping import Field, FieldType, Mapping, parent_conflict
from aggregata.storage.engine import Collection, validate_collection_name

router = es_router()

_INDEX_PARAMS = {"timeout", "master_timeout", "wait_for_active_shards", "ignore_unavailable"}
_GET_PARAMS = {
    "allow_no_indices",
    "expand_wildcards",
    "flat_settings",
    "ignore_unavailable",
    "include_defaults",
    "local",
    "master_timeout",
}
_IGNORED_MAPPING_KEYS = frozenset({"_meta", "_source", "_routing"})


def parse_mappings(body: Any) -> tuple[Mapping, bool | None]:
    """An Elasticsearch ``mappings`` object → the mapping and ``dynamic`` (None: not given)."""
    spec = object_body(body, "mappings")
    unknown = sorted(set(spec) - {"properties", "dynamic"} - _IGNORED_MAPPING_KEYS)
    if unknown:
        raise BadRequest(
            f"mapping parameter [{unknown[0]}] is not supported", type="mapper_parsing_exception"
        )
    dynamic: bool | None = None
    if "dynamic" in spec:
        value = spec["dynamic"]
        if value in (True, "true"):
            dynamic = True
        elif value == "strict":
            dynamic = False
        else:
            raise BadRequest(
                f"[dynamic: {value}] is not supported: unmapped fields cannot be kept;"
                " use [strict] to reject them or [true] to map them",
                type="mapper_parsing_exception",
            )
    return Mapping.from_es({"properties": spec.get("properties", {})}), dynamic


def mappings_json(coll: Collection) -> dict[str, Any]:
    """The collection's mapping as Elasticsearch shows it (``{}`` when it has no fields)."""
    out: dict[str, Any] = {}
    if coll.settings.get("dynamic", True) is False:
        out["dynamic"] = "strict"
    if len(coll.mapping):
        out.update(coll.mapping.to_es())
    return out


def _exists_error(name: str) -> ElasticsearchError:
    uuid = index_uuid(name)
    return ElasticsearchError(
        400,
        "resource_already_exists_exception",
        f"index [{name}/{uuid}] already exists",
        index_uuid=uuid,
        index=name,
    )


@router.get("/_mapping", summary="Mappings of all indices")
def all_mappings(request: Request, services: ServicesDep) -> dict[str, Any]:
    check_params(request, _GET_PARAMS)
    return {c.name: {"mappings": mappings_json(c)} for c in services.engine.list_collections()}


@router.post("/_refresh", summary="Refresh all indices (no-op)")
@router.get("/_refresh", include_in_schema=False)
def refresh_all(request: Request) -> dict[str, Any]:
    """A no-op: every acknowledged write is committed and searchable already."""
    check_params(request, _GET_PARAMS)
    return {"_shards": SHARDS}


@router.post("/{index}/_refresh", summary="Refresh an index (no-op)")
@router.get("/{index}/_refresh", include_in_schema=False)
def refresh_index(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """A no-op that still answers 404 for a missing index, as Elasticsearch does."""
    check_params(request, _GET_PARAMS)
    services.engine.get_collection(index)
    return {"_shards": SHARDS}


@router.put("/{index}", summary="Create an index")
async def create_index(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """``mappings`` become the collection's mapping; ``settings`` are accepted and ignored."""
    check_params(request, _INDEX_PARAMS)
    body = object_body(await es_body(request), "create index")
    unknown = sorted(set(body) - {"mappings", "settings", "aliases"})
    if unknown:
        raise ParsingError(f"unknown key [{unknown[0]}] for create index")
    if body.get("aliases"):
        raise BadRequest("aliases are not supported")
    object_body(body.get("settings"), "settings")
    validate_collection_name(index)
    mapping, dynamic = parse_mappings(body.get("mappings"))
    settings = {"dynamic": False} if dynamic is False else {}
    try:
        await blocking(services.engine.create_collection, index, mapping, settings=settings)
    except Conflict:
        raise _exists_error(index) from None
    return {"acknowledged": True, "shards_acknowledged": True, "index": index}


@router.head("/{index}", summary="Does the index exist?")
def index_exists(index: str, services: ServicesDep) -> Response:
    try:
        services.engine.get_collection(index)
    except CollectionNotFound:
        return head(404)
    return head(200)


@router.get("/{index}", summary="Describe an index")
def get_index(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    check_params(request, _GET_PARAMS)
    coll = services.engine.get_collection(index)
    index_settings = {
        "number_of_shards": "1",
        "number_of_replicas": "0",
        "uuid": index_uuid(index),
        "provided_name": index,
    }
    return {index: {"aliases": {}, "mappings": mappings_json(coll), "settings": {"index": index_settings}}}


@router.delete("/{index}", summary="Delete an index and its documents")
async def delete_index(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    check_params(request, _INDEX_PARAMS | {"allow_no_indices", "expand_wildcards"})
    await blocking(services.engine.drop_collection, index)
    return {"acknowledged": True}


@router.get("/{index}/_mapping", summary="The index's mapping")
def get_mapping(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    check_params(request, _GET_PARAMS)
    return {index: {"mappings": mappings_json(services.engine.get_collection(index))}}


@router.put("/{index}/_mapping", summary="Add fields to the index's mapping")
@router.post("/{index}/_mapping", include_in_schema=False)
async def put_mapping(index: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """New fields are added; changing an existing field's type is a 400, as in Elasticsearch."""
    check_params(request, _INDEX_PARAMS | {"allow_no_indices", "expand_wildcards", "write_index_only"})
    coll = services.engine.get_collection(index)
    mapping, dynamic = parse_mappings(await es_body(request))
    changed = _new_fields(coll.mapping, mapping)
    if changed:
        await blocking(services.engine.write, index, Batch(changed=changed))
    if dynamic is not None and dynamic != (coll.settings.get("dynamic", True) is not False):
        settings = {**coll.settings, "dynamic": dynamic}
        await blocking(services.engine.update_settings, index, settings)
    return {"acknowledged": True}


def _new_fields(current: Mapping, incoming: Mapping) -> list[Field]:
    """Fields of ``incoming`` to add to ``current``; type changes and object clashes are a 400."""
    changed = []
    for f in incoming:
        have = current.get(f.name)
        if have is None:
            clash = parent_conflict(current, f.name)
            if clash is not None:
                raise BadRequest(f"can't merge field [{f.name}] with the existing field [{clash}]")
            changed.append(f)
            continue
        if have.type is not f.type or have.dims != f.dims:
            raise BadRequest(
                f"mapper [{f.name}] cannot be changed from type [{have.type.value}] to [{f.type.value}]"
            )
        if f.type is FieldType.NESTED:
            subs = _new_fields(have.properties or Mapping(), f.properties or Mapping())
            if subs:
                changed.append(f)
    return changed

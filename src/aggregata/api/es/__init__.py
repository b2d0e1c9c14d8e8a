"""The Elasticsearch-compatible REST API, mounted at ``/es``.

Point an Elasticsearch or OpenSearch client at ``http://host:8000/es``: indices are
collections, and documents, bulk writes, searches and counts go through the same services
as the native API. Errors take Elasticsearch's shape (``api/errors.py``). Routers are
included most specific first: ``/_bulk`` and ``/_cat/...`` must win over ``/{index}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from aggregata.api.errors import ES_PREFIX
from aggregata.api.es import cluster, documents, indices, search

router = APIRouter()
for module in (cluster, documents, search, indices):
    router.include_router(module.router, prefix=ES_PREFIX)

__all__ = ["router"]

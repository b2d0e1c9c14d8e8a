"""``GET /health``: is the service up, on which engine, with which data directory."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from aggregata import __version__
from aggregata.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service status")
def health(services: ServicesDep) -> dict[str, Any]:
    """Status, engine, version and where the data lives."""
    return {
        "status": "ok",
        "engine": services.engine.dialect,
        "version": __version__,
        "data_dir": str(services.settings.data_dir.resolve()),
        "collections": len(services.engine.list_collections()),
    }

"""``create_app(settings)``: the HTTP application, composed explicitly and in visible order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from aggregata import __version__
from aggregata.api import errors, es
from aggregata.api.limits import BodyLimit
from aggregata.api.responses import JSONResponse
from aggregata.api.routers import collections, events, health, insights, search
from aggregata.services import Services, build_services
from aggregata.settings import Settings

DESCRIPTION = """Aggregata: Elasticsearch-style search and aggregations, and product analytics,
over typed columnar collections in DuckDB. Errors are `{"error": {"type", "reason"}, "status"}`."""


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app. Storage opens in the lifespan, not at import or construction time."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or build_services(settings)
        try:
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="Aggregata",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (health, collections, events, search, insights):
        app.include_router(module.router)
    app.include_router(insights.collections_router)
    app.include_router(es.router)  # the Elasticsearch-compatible API at /es
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app

"""``/v1/insights/*``: product analytics (trends, stickiness, lifecycle, funnels, retention).

Thin: read the JSON body, run the insight in a worker thread, return its answer. Each
insight is one ``@insight`` function naming the service method that answers it; add new
ones the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from aggregata.api.deps import ServicesDep, blocking, json_body
from aggregata.insights.funnels import FunnelService
from aggregata.insights.retention import RetentionService
from aggregata.services import Services

router = APIRouter(prefix="/v1/insights", tags=["insights"])
# Quick looks at any collection live under the collection's path.
collections_router = APIRouter(prefix="/v1/collections", tags=["insights"])

Answer = Callable[[Any], dict[str, Any]]
"""A service method: the request body → the insight's response."""
Endpoint = Callable[[Request, Services], Awaitable[dict[str, Any]]]


def insight(
    path: str, summary: str, example: dict[str, Any]
) -> Callable[[Callable[[Services], Answer]], Endpoint]:
    """Route ``POST path`` to the service method the decorated function picks, run in a worker
    thread with the JSON body. The function's name and docstring name and document the route."""

    def add(pick: Callable[[Services], Answer]) -> Endpoint:
        async def endpoint(request: Request, services: ServicesDep) -> dict[str, Any]:
            return await blocking(pick(services), await json_body(request))

        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            name=pick.__name__,
            summary=summary,
            description=inspect.cleandoc(pick.__doc__ or ""),
            openapi_extra={
                "requestBody": {
                    "content": {"application/json": {"schema": {"type": "object"}, "example": example}}
                }
            },
        )
        return endpoint

    return add


TRENDS_EXAMPLE = {
    "collection": "events",
    "series": [{"event": "pageview", "math": "total", "name": "A"}],
    "interval": "day",
    "date_from": "-30d",
    "timezone": "UTC",
    "breakdown": ["country"],
    "breakdown_limit": 10,
}


@insight("/trends", "Trends: events, actors or property values per interval", TRENDS_EXAMPLE)
def trends(services: Services) -> Answer:
    """Series of `total`, `unique_actors`, `dau`/`wau`/`mau`, property aggregates
    (`sum`, `avg`, `min`, `max`, `median`, `p90`, `p95`, `p99`) or per-actor counts per
    bucket, with breakdowns, comparison to the previous period, formulas and cumulative
    display. `source` says whether raw events or a rollup answered."""
    return services.insights.trends


STICKINESS_EXAMPLE = {
    "collection": "events",
    "series": [{"event": "pageview"}],
    "interval": "day",
    "date_from": "-30d",
}


@insight("/stickiness", "Stickiness: actors by number of active intervals", STICKINESS_EXAMPLE)
def stickiness(services: Services) -> Answer:
    """For 1…N intervals of the range, how many actors did the event in exactly that many."""
    return services.insights.stickiness


@insight("/lifecycle", "Lifecycle: new, returning, resurrecting and dormant actors", STICKINESS_EXAMPLE)
def lifecycle(services: Services) -> Answer:
    """Per interval, four series by `status`; `dormant` counts are negative, as PostHog charts them."""
    return services.insights.lifecycle


@collections_router.get("/{name}/time-series", summary="A date field as a time series")
async def time_series(name: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """`field` (date; default the timestamp field), `math` (`count`, `sum`, `avg`, `min`, `max`,
    `median`, `p95`, …) of `value_field`, `interval`, `date_from`, `date_to`, `timezone`, and
    equality filters `filter.<field>=value`."""
    return await blocking(services.insights.time_series, name, dict(request.query_params))


@collections_router.get("/{name}/distribution/{field}", summary="The most frequent values of a field")
async def distribution(name: str, field: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """Top `size` values (default 20) with counts and percentages of all documents; also
    `missing` and `other`. Accepts `filter.<field>=value`."""
    return await blocking(services.insights.distribution, name, field, dict(request.query_params))


FUNNEL_EXAMPLE = {
    "collection": "events",
    "steps": [
        {"event": "pageview", "name": "Visited"},
        {"event": "signup"},
        {"event": "purchase", "filters": [{"property": "price", "operator": "gt", "value": 20}]},
    ],
    "window": {"value": 7, "unit": "day"},
    "order": "ordered",
    "exclusions": [{"event": "logout", "from_step": 1, "to_step": 2}],
    "breakdown": "browser",
    "date_from": "-30d",
    "timezone": "UTC",
}


@insight(
    "/funnels",
    "Funnels: actors through a sequence of steps, conversion and time between steps",
    FUNNEL_EXAMPLE,
)
def funnels(services: Services) -> Answer:
    """2-20 `steps` within a conversion `window` from the first step; `order` `ordered`
    (each step strictly after the previous), `strict` (no other event in between) or
    `unordered`; `exclusions` disqualify an attempt; `breakdown` by a property of the
    entry event. `funnel_viz`: `steps` (default), `time_to_convert` (`from_step`,
    `to_step`, `bins`) or `trends` (conversion per `interval` of entry)."""
    return FunnelService(services.insights.engine, clock=services.insights.clock).funnel


RETENTION_EXAMPLE = {
    "collection": "events",
    "start_event": {"event": "signup"},
    "return_event": {"event": "pageview"},
    "period": "week",
    "periods": 6,
    "retention_type": "first_time",
    "date_from": "-5w",
    "timezone": "UTC",
}


@insight(
    "/retention", "Retention: cohorts by start period, and who came back n periods later", RETENTION_EXAMPLE
)
def retention(services: Services) -> Answer:
    """Cohorts of actors by the `period` (`day`, `week`, `month`) of their `start_event`
    (`first_time`: first ever; `recurring`: every period they did it), and per cohort how
    many did the `return_event` 0…`periods`-1 periods later; `overall` is the size-weighted
    curve; `breakdown` by a property of the start event."""
    return RetentionService(services.insights.engine, clock=services.insights.clock).retention

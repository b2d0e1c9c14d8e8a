"""Load the demo dataset (products and events) into a store, for ``make run`` and tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from aggregata.demo.generate import generate_events, generate_products
from aggregata.ingest.service import IngestResult, IngestService

PRODUCTS = "products"
EVENTS = "events"


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def seed_demo(
    ingest: IngestService,
    *,
    events: int,
    products: int = 2_000,
    seed: int = 42,
    progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Ingest ``products`` catalogue documents and ``events`` events; returns the totals."""
    total = IngestResult()
    for batch in chunks(generate_products(products, seed=seed), 5_000):
        total.add(ingest.ingest(PRODUCTS, batch))
        if progress:
            progress(len(batch))
    for batch in chunks(generate_events(events, seed=seed), 10_000):
        total.add(ingest.ingest_events(batch, collection=EVENTS))
        if progress:
            progress(len(batch))
    return total

"""The ``aggregata`` command: serve, import, generate.

Every option is also an ``AGGREGATA_*`` environment variable (see ``Settings``).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from aggregata import __version__
from aggregata.errors import AggregataError
from aggregata.ingest.body import Chunk, detect_format, read_batches
from aggregata.ingest.service import IngestResult
from aggregata.model.documents import ItemError
from aggregata.settings import Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Aggregata: a self-hosted analytics engine.",
)
# Messages carry user text (field names in [brackets]): never interpret it as rich markup.
console = Console(stderr=True, markup=False, highlight=False)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory [env AGGREGATA_DATA_DIR].")]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _progress(transfer: bool = False) -> Progress:
    columns: list[Any] = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn()]
    if transfer:
        columns = [TextColumn("{task.description}", markup=False), BarColumn(), TransferSpeedColumn()]
    return Progress(*columns, TimeElapsedColumn(), console=console, disable=not console.is_terminal)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [env AGGREGATA_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env AGGREGATA_PORT].")] = None,
    data_dir: DataDir = None,
    demo: Annotated[
        bool | None, typer.Option("--demo", help="Seed demo data when the store is empty.")
    ] = None,
    demo_events: Annotated[int | None, typer.Option(help="Events seeded by --demo.")] = None,
) -> None:
    """Serve the HTTP API on an embedded DuckDB in the data directory."""
    import uvicorn

    from aggregata.api.app import create_app
    from aggregata.services import build_services

    settings = _settings(host=host, port=port, data_dir=data_dir, demo=demo, demo_events=demo_events)
    services = build_services(settings)
    try:
        if settings.demo and not services.engine.list_collections():
            _seed(services, settings.demo_events)
        console.print(
            f"Aggregata {__version__} on http://{settings.host}:{settings.port}  "
            f"(data: {settings.data_dir.resolve()}, docs: /docs)"
        )
        uvicorn.run(
            create_app(settings, services),
            host=settings.host,
            port=settings.port,
            log_level="warning",
        )
    finally:
        services.close()


def _seed(services: Any, events: int) -> None:
    from aggregata.demo.seed import seed_demo

    products = 2_000
    console.print(f"Seeding demo data: {products:,} products and {events:,} events ...")
    with _progress() as bar:
        task = bar.add_task("demo data", total=products + events)
        result = seed_demo(
            services.ingest,
            events=events,
            products=products,
            progress=lambda n: bar.advance(task, n),
        )
    services.engine.checkpoint()
    console.print(f"Seeded {result.stored:,} documents.")


@app.command("import")
def import_file(
    collection: Annotated[str, typer.Argument(help="Target collection (created if missing).")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON, JSON, CSV or Parquet file.")
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="ndjson | json | csv | parquet (default: by suffix)."),
    ] = None,
    events: Annotated[bool, typer.Option("--events", help="Rows are PostHog-style events.")] = False,
    batch_size: Annotated[int, typer.Option(help="Documents per committed batch.")] = 10_000,
    data_dir: DataDir = None,
    url: Annotated[
        str | None,
        typer.Option(help="Import through a running server, e.g. http://127.0.0.1:8000."),
    ] = None,
) -> None:
    """Stream a file into a collection, in committed batches, with a progress bar."""
    fmt = fmt or detect_format(file)
    total = IngestResult()
    size = file.stat().st_size
    sink = (
        HttpSink(url, collection, events)
        if url
        else LocalSink(_settings(data_dir=data_dir), collection, events)
    )
    try:
        with _progress(transfer=True) as bar, file.open("rb") as fh:
            task = bar.add_task(f"{file.name} → {collection}", total=size)
            for chunk in read_batches(fh, fmt, batch_size):
                total.add(sink.write(chunk))
                bar.update(task, completed=min(fh.tell(), size))
            bar.update(task, completed=size)
    finally:
        sink.close()
    console.print(f"stored {total.stored:,}, duplicates {total.duplicates:,}, failed {len(total.errors):,}")
    for err in total.errors[:10]:
        console.print(f"  item {err.position}: {err.reason}")
    if total.errors and not total.stored and not total.duplicates:
        raise typer.Exit(1)


class LocalSink:
    """Writes chunks straight into the data directory (no server may hold it open)."""

    def __init__(self, settings: Settings, collection: str, events: bool) -> None:
        from aggregata.services import build_services

        self.services = build_services(settings)
        self.collection = collection
        self.events = events

    def write(self, chunk: Chunk) -> IngestResult:
        result = self.services.ingest.ingest_body(
            self.collection, chunk.body, "application/x-ndjson", events=self.events
        )
        return _shifted(result, chunk.first)

    def close(self) -> None:
        self.services.close()


class HttpSink:
    """Posts chunks as NDJSON to a running server."""

    def __init__(self, url: str, collection: str, events: bool) -> None:
        import httpx

        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=120)
        self.path = (
            f"/v1/events?collection={collection}" if events else f"/v1/collections/{collection}/documents"
        )

    def write(self, chunk: Chunk) -> IngestResult:
        response = self.client.post(
            self.path, content=chunk.body, headers={"content-type": "application/x-ndjson"}
        )
        if response.status_code != 200:
            raise AggregataError(f"server answered {response.status_code}: {response.text[:300]}")
        data = response.json()
        errors = [ItemError(i["position"], i["error"]["type"], i["error"]["reason"]) for i in data["items"]]
        result = IngestResult(stored=data["stored"], duplicates=data["duplicates"], errors=errors)
        return _shifted(result, chunk.first)

    def close(self) -> None:
        self.client.close()


def _shifted(result: IngestResult, first: int) -> IngestResult:
    """Positions within a chunk → positions within the file."""
    result.errors = [replace(e, position=e.position + first) for e in result.errors]
    return result


@app.command()
def generate(
    events: Annotated[int, typer.Option(help="Number of events.")] = 100_000,
    products: Annotated[int, typer.Option(help="Number of products.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    out: Annotated[Path, typer.Option(help="Directory for events.ndjson and products.ndjson.")] = Path(
        "demo-data"
    ),
    load: Annotated[
        bool,
        typer.Option("--load", help="Ingest into the data directory instead of writing files."),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Generate the seeded demo dataset: a product catalogue and a product-analytics event stream."""
    from aggregata.demo.generate import generate_events, generate_products, write_ndjson

    if load:
        from aggregata.services import build_services

        services = build_services(_settings(data_dir=data_dir))
        try:
            _seed_custom(services, events, products, seed)
        finally:
            services.close()
        return
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as bar:
        task = bar.add_task("products", total=products)
        n = write_ndjson(_tick(generate_products(products, seed=seed), bar, task), out / "products.ndjson")
        task = bar.add_task("events", total=events)
        m = write_ndjson(_tick(generate_events(events, seed=seed), bar, task), out / "events.ndjson")
    console.print(
        f"wrote {n:,} products to {out / 'products.ndjson'} and {m:,} events to {out / 'events.ndjson'}"
    )


def _tick(items: Any, bar: Progress, task: Any) -> Any:
    for i, item in enumerate(items, 1):
        if i % 10_000 == 0:
            bar.update(task, completed=i)
        yield item


def _seed_custom(services: Any, events: int, products: int, seed: int) -> None:
    from aggregata.demo.seed import seed_demo

    with _progress() as bar:
        task = bar.add_task("loading", total=products + events)
        result = seed_demo(
            services.ingest,
            events=events,
            products=products,
            seed=seed,
            progress=lambda n: bar.advance(task, n),
        )
    console.print(f"stored {result.stored:,} documents, {result.duplicates:,} duplicates")


rollup_app = typer.Typer(no_args_is_help=True, help="Rollups of event collections (see docs/insights.md).")
app.add_typer(rollup_app, name="rollup")


@rollup_app.command("refresh")
def rollup_refresh(
    date_from: Annotated[
        str | None, typer.Option("--from", help="Start: ISO date/time or -7d style (default: everything).")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="End (exclusive); default: now.")] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="One event collection (default: all).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild rollups from the events, for a time range (widened to whole UTC days) or whole."""
    from datetime import UTC, datetime

    from aggregata.insights.common import resolve_date_range, timezone
    from aggregata.services import build_services

    services = build_services(_settings(data_dir=data_dir))
    try:
        start = end = None
        if date_from is not None or date_to is not None:
            start, end = resolve_date_range(
                date_from, date_to, now=datetime.now(UTC), tz=timezone("UTC"), default_from="all"
            )
        names = [collection] if collection else [c.name for c in services.engine.list_collections()]
        for name in names:
            result = services.rollups.refresh(name, start, end)
            if result["rollups"]:
                span = f"{result['from']} .. {result['to']}" if result["from"] else "everything"
                console.print(f"{name}: rollups rebuilt ({span})")
            elif collection:
                raise AggregataError(f"collection [{name}] has no rollups (not events, or disabled)")
    finally:
        services.close()


def main() -> None:
    try:
        app()
    except AggregataError as exc:
        console.print(f"error: {exc.reason}")
        sys.exit(2)


if __name__ == "__main__":
    main()

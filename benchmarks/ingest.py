"""Ingestion benchmark: HTTP NDJSON with concurrent clients, CLI import, and raw DuckDB.

    .venv/bin/python benchmarks/ingest.py --events 1000000 --rss-events 5000000

Prints events/second and peak RSS for:
  * HTTP: NDJSON batches of 1,000 events from 4 concurrent clients to a real server process;
  * CLI: ``aggregata import events FILE --events`` of an NDJSON file;
  * raw DuckDB: appending the same rows from Arrow directly, in the same run, into a table
    of the same schema, in 1,000-row transactions and in one bulk append. (The server does
    more: it parses JSON, validates, enriches, and checks every id against the stored ones
    so a retried batch is not stored twice.)
The generated events come from ``aggregata.demo.generate`` (seeded).
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import psutil
import pyarrow as pa
from client import Client

from aggregata.demo.generate import generate_events, write_ndjson
from aggregata.ingest.events import EVENT_MAPPING, events_table
from aggregata.model.columnar import columnar_batch, flatten, read_ndjson
from aggregata.model.mapping import Mapping
from aggregata.sql.ddl import create_table
from aggregata.sql.dialects import render

ROOT = Path(__file__).resolve().parent.parent


def dataset(n: int, directory: Path) -> Path:
    """Generated events in timestamp order, as a live stream arrives (cached)."""
    path = directory / f"events-{n}-by-time.ndjson"
    if not path.exists():
        print(f"generating {n:,} events → {path}", file=sys.stderr)
        events = sorted(generate_events(n, seed=7), key=lambda e: e["timestamp"])
        write_ndjson(events, path)
    return path


def batches(path: Path, size: int) -> list[bytes]:
    out, lines = [], []
    with path.open("rb") as fh:
        for line in fh:
            lines.append(line)
            if len(lines) == size:
                out.append(b"".join(lines))
                lines = []
    if lines:
        out.append(b"".join(lines))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakRSS:
    """Samples a process's resident memory (with its children) until stopped."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def http_ingest(bodies: list[bytes], clients: int, data_dir: Path, rollups: bool) -> tuple[float, int, int]:
    port = free_port()
    env = {**os.environ, "AGGREGATA_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregata.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    admin = Client(port)
    try:
        admin.wait_ready(30)
        settings = {"rollups": {"enabled": rollups}}
        admin.request("PUT", "/v1/collections/events", orjson.dumps({"kind": "events", "settings": settings}))
        admin.close()
        rss = PeakRSS(server.pid)
        work: queue.Queue[bytes] = queue.Queue()
        for body in bodies:
            work.put(body)
        stored = [0] * clients

        def client(k: int) -> None:
            c = Client(port, timeout=120)
            try:
                while True:
                    try:
                        body = work.get_nowait()
                    except queue.Empty:
                        return
                    answer = c.request("POST", "/v1/events", body, "application/x-ndjson")
                    stored[k] += orjson.loads(answer)["stored"]
            finally:
                c.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        return elapsed, sum(stored), rss.stop()
    finally:
        server.terminate()
        server.wait(30)


def cli_import(path: Path, data_dir: Path) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregata.cli",
            "import",
            "events",
            str(path),
            "--events",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rss = PeakRSS(proc.pid)
    proc.wait()
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError("import failed")
    return elapsed, rss.stop()


def stored_tables(bodies: list[bytes], size: int) -> tuple[list[pa.Table], Mapping]:
    """The exact Arrow rows the server appends for these bodies (built untimed)."""
    received = datetime.now(UTC)
    mapping = EVENT_MAPPING
    tables = []
    for body in bodies:
        table = events_table(read_ndjson(body, mapping), received, lambda: "")
        batch = columnar_batch(flatten(table), mapping, new_id=lambda: "")
        mapping = batch.mapping
        assert batch.table is not None
        tables.append(batch.table)
    whole = pa.concat_tables(tables, promote_options="default").combine_chunks()
    return [whole.slice(i, size) for i in range(0, whole.num_rows, size)], mapping


def raw_duckdb(bodies: list[bytes], size: int, directory: Path) -> tuple[float, float]:
    """Rows/s of DuckDB appending from Arrow: in ``size``-row transactions, and in bulk."""
    tables, mapping = stored_tables(bodies, size)
    rates = []
    for batched in (True, False):
        con = duckdb.connect(str(directory / f"raw-{batched}.duckdb"))
        con.execute(render(create_table("events", mapping, "duckdb"), "duckdb"))
        names = ", ".join(f'"{n}"' for n in tables[0].column_names)
        started = time.perf_counter()
        if batched:
            for batch in tables:
                con.execute("BEGIN")
                con.register("batch", batch)
                con.execute(f"INSERT INTO events ({names}) SELECT * FROM batch")
                con.execute("COMMIT")
        else:
            whole = pa.concat_tables(tables)
            con.register("whole", whole)
            con.execute(f"INSERT INTO events ({names}) SELECT * FROM whole")
        rates.append(sum(t.num_rows for t in tables) / (time.perf_counter() - started))
        con.close()
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events for the HTTP and raw runs")
    parser.add_argument("--import-events", type=int, default=1_000_000, help="events in the CLI import file")
    parser.add_argument(
        "--rss-events", type=int, default=0, help="also ingest this many over HTTP for peak RSS"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    args = parser.parse_args()
    args.data.mkdir(exist_ok=True)
    rows: list[tuple[str, int, float, str]] = []
    with tempfile.TemporaryDirectory(dir=args.data) as tmp:
        work = Path(tmp)
        bodies = batches(dataset(args.events, args.data), args.batch)
        batched, bulk = raw_duckdb(bodies, args.batch, work)
        rates = {}
        for rollups in (False, True):
            elapsed, stored, peak = http_ingest(bodies, args.clients, work / f"http-{rollups}", rollups)
            assert stored == args.events, f"stored {stored} of {args.events}"
            rates[rollups] = stored / elapsed
            label = "rollups on" if rollups else "rollups off"
            rows.append(
                (
                    f"HTTP NDJSON, {args.clients} clients x {args.batch}, {label}",
                    stored,
                    rates[rollups],
                    f"{peak / 2**20:,.0f} MiB",
                )
            )
        http_rate = rates[False]
        if args.rss_events:
            big = batches(dataset(args.rss_events, args.data), args.batch)
            elapsed, stored, peak = http_ingest(big, args.clients, work / "rss", True)
            rows.append(
                (
                    f"HTTP NDJSON, {args.clients} clients (RSS run)",
                    stored,
                    stored / elapsed,
                    f"{peak / 2**20:,.0f} MiB",
                )
            )
            del big
        path = dataset(args.import_events, args.data)
        elapsed, peak = cli_import(path, work / "cli")
        rows.append(
            (
                "CLI import NDJSON",
                args.import_events,
                args.import_events / elapsed,
                f"{peak / 2**20:,.0f} MiB",
            )
        )
        rows.append((f"raw DuckDB, same schema, {args.batch}-row txns", args.events, batched, "-"))
        rows.append(("raw DuckDB, same schema, one bulk append", args.events, bulk, "-"))
    print("\n| path | events | events/s | peak RSS |\n|---|---:|---:|---:|")
    for name, n, rate, rss in rows:
        print(f"| {name} | {n:,} | {rate:,.0f} | {rss} |")
    print(f"\nHTTP (rollups off) / raw DuckDB {args.batch}-row txns: {http_rate / batched:.0%}")
    print(f"HTTP (rollups off) / raw DuckDB bulk: {http_rate / bulk:.0%}")
    print(f"HTTP (rollups on) / raw DuckDB bulk: {rates[True] / bulk:.0%}")


if __name__ == "__main__":
    main()

"""Product-analytics benchmark: funnels, retention, trends and DAU, API vs chDB and DuckDB.

    .venv/bin/python benchmarks/insights.py --events 10000000 --actors 500000 --days 90

Loads the seeded event stream once (cached under bench-data/, rollups by country on),
starts a real server on a copy of it and reports median latencies of (the funnels and
retention timed in turns with the queries they are compared with, ``interleaved_ms``):
  * a 4-step funnel (7-day window) through the API, beside ClickHouse's ``windowFunnel``
    hand-written on chDB over the same events and a plain ``GROUP BY distinct_id`` count
    on DuckDB; and the funnel at 2, 5, 10 and 20 steps (cost should grow ~linearly);
  * weekly retention over 12 periods through the API, beside the same query hand-written on chDB;
  * a daily trend broken down by country, and DAU over 90 days, each from raw events and
    from rollups (``use_rollups: false`` forces raw);
  * how long an ingested event takes to show in trends through both paths.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from client import Client

from aggregata.demo.generate import DEFAULT_END, generate_events, write_ndjson
from aggregata.ingest.events import EVENT_MAPPING, EVENT_SETTINGS
from aggregata.storage.duckdb import DuckDBEngine, arrow_result

ROOT = Path(__file__).resolve().parent.parent
STEP_EVENTS = ["pageview", "signup", "add_to_cart", "purchase", "search", "pageview"]


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    """Median ms of ``fn`` over ``runs`` calls after a warm-up."""
    return interleaved_ms({"fn": fn}, runs)["fn"]


def interleaved_ms(fns: dict[str, Callable[[], Any]], runs: int, *, burst: int = 1) -> dict[str, float]:
    """Median ms of each function, timed in turns: one warm-up each, then ``runs`` rounds
    with the order rotating every round. On a noisy machine, timing one path after the
    other compares different minutes; in turns, the paths compared share the same ones.

    With ``burst`` > 1 a turn calls its function ``burst`` times back to back and times
    the calls after the first: each path then runs warm, as a query a dashboard repeats
    does, instead of on the CPU caches the path before it left. That matters for queries
    of a few ms, and most for the server, a process of its own on its own copy of the
    file: on 10-20 ms aggregations its first call in a turn took 0.9-1.4 ms longer than
    its next ones, the in-process service 0.5-0.6 ms, hand-written SQL 0-0.4 ms.
    """
    for fn in fns.values():
        fn()
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for call in range(burst):
                started = time.perf_counter()
                fns[name]()
                if call or burst == 1:
                    times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}


def server_copy(directory: Path) -> Path:
    """A fresh copy of the dataset for a server process: DuckDB lets one process hold a
    database file, and a copy lets the hand-written SQL run on the same data while the
    server is up (fresh, so events a run ingests stay out of the next run)."""
    copy = directory.with_name(directory.name + "-server")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(directory, copy)
    return copy


def load(args: argparse.Namespace) -> Path:
    directory = args.data / f"insights-{args.events}-{args.actors}-{args.days}"
    if (directory / "aggregata.duckdb").exists():
        settle(directory)
        return directory
    source = args.data / f"insights-{args.events}-{args.actors}-{args.days}.ndjson"
    if not source.exists():
        print(f"generating {args.events:,} events", file=sys.stderr)
        write_ndjson(generate_events(args.events, seed=11, n_users=args.actors, days=args.days), source)
    tmp = directory.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    engine = DuckDBEngine(tmp / "aggregata.duckdb")
    settings = {**EVENT_SETTINGS, "rollups": {"breakdowns": ["country"]}}
    engine.create_collection("events", EVENT_MAPPING, kind="events", settings=settings)
    engine.close()
    print(f"importing {args.events:,} events (rollups on)", file=sys.stderr)
    cmd = [sys.executable, "-m", "aggregata.cli", "import", "events", str(source), "--events"]
    subprocess.run([*cmd, "--data-dir", str(tmp)], check=True, stdout=subprocess.DEVNULL)
    tmp.rename(directory)
    settle(directory)
    return directory


def settle(directory: Path) -> None:
    """Fold the rollup rows the import left staged, as a server does when it starts, so that
    servers started on copies of the file have no such work running while they are timed."""
    from aggregata.insights.rollup_service import RollupService

    engine = DuckDBEngine(directory / "aggregata.duckdb")
    try:
        RollupService(engine).ensure_all()
    finally:
        engine.close()


def funnel_body(steps: int, date_from: str) -> dict[str, Any]:
    names = [STEP_EVENTS[i % len(STEP_EVENTS)] for i in range(steps)]
    return {
        "collection": "events",
        "steps": [{"event": e, "name": f"{i}:{e}"} for i, e in enumerate(names)],
        "window": {"value": 7, "unit": "day"},
        "order": "ordered",
        "date_from": date_from,
        "date_to": DEFAULT_END.isoformat(),
    }


def chdb_funnel(steps: int, since: datetime) -> str:
    names = [STEP_EVENTS[i % len(STEP_EVENTS)] for i in range(steps)]
    conds = ", ".join(f"ifNull(event = '{e}', 0)" for e in names)  # non-Nullable: > 8 arguments
    events = ", ".join(f"'{e}'" for e in dict.fromkeys(names))
    lo, hi = since.strftime("%Y-%m-%d %H:%M:%S"), DEFAULT_END.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "SELECT level, count() FROM (SELECT distinct_id,"
        f" windowFunnel(604800)(toDateTime(assumeNotNull(`timestamp`)), {conds}) AS level FROM events"
        f" WHERE event IN ({events}) AND `timestamp` >= toDateTime64('{lo}', 6, 'UTC')"
        f" AND `timestamp` < toDateTime64('{hi}', 6, 'UTC') + INTERVAL 7 DAY GROUP BY distinct_id)"
        " GROUP BY level ORDER BY level"
    )


def chdb_retention(since: datetime) -> str:
    """Weekly first-time retention, 12 periods, hand-written for ClickHouse.

    (Its ``retention()`` aggregate refuses more than 8 conditions over Nullable columns.)
    """
    lo = since.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "SELECT first_week, dateDiff('week', first_week, toMonday(`timestamp`)) AS k, uniqExact(distinct_id)"
        " FROM events JOIN (SELECT distinct_id, toMonday(min(`timestamp`)) AS first_week FROM events"
        f" WHERE event = 'signup' AND `timestamp` >= toDateTime64('{lo}', 6, 'UTC') GROUP BY distinct_id) s"
        " USING distinct_id WHERE event = 'pageview' AND k BETWEEN 0 AND 11"
        " GROUP BY first_week, k ORDER BY first_week, k"
    )


def chdb_engine(duck_dir: Path) -> Any:
    from aggregata.model.documents import Batch
    from aggregata.storage.clickhouse import ClickHouseEngine

    duck = DuckDBEngine(duck_dir / "aggregata.duckdb")
    engine = ClickHouseEngine(duck_dir.with_name(duck_dir.name + "-chdb"), query_timeout_s=600)
    if not any(c.name == "events" for c in engine.list_collections()):
        coll = duck.get_collection("events")
        settings = {**coll.settings, "rollups": {"enabled": False}}
        engine.create_collection("events", coll.mapping, kind=coll.kind, settings=settings)
        total = duck.count("events")
        print(f"loading {total:,} events into chDB", file=sys.stderr)
        for offset in range(0, total, 1_000_000):
            part = duck.query_sql(f"SELECT * FROM events ORDER BY _id LIMIT 1000000 OFFSET {offset}")
            engine.write("events", Batch(table=part, mapping=coll.mapping))
    duck.close()
    return engine


def raw_duckdb(engine: DuckDBEngine) -> Callable[..., Any]:
    """Hand-written SQL on a plain cursor of the same database, to Arrow by the cheapest
    call DuckDB has (``arrow_result``: one submit, 0.5-0.7 ms less than
    ``cur.sql(q).to_arrow_table()`` on a 10 ms query; ``fetchall`` is as fast but needs
    pytz for time-zoned timestamps). None of our engine's code is in the way."""
    cur = engine._db.cursor()
    return lambda sql, params=None: arrow_result(cur, sql, params)


def raw_chdb(engine: Any) -> Callable[[str], Any]:
    """Hand-written SQL as a chDB user runs it: ``query`` on the engine's chDB session,
    to Arrow, none of our engine's code in the way."""
    session = engine._reader()._raw
    return lambda sql: session.query(sql, "ArrowTable")


class Server:
    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "AGGREGATA_DATA_DIR": str(directory), "AGGREGATA_QUERY_TIMEOUT_S": "600"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregata.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = Client(self.port)
        self.client.wait_ready(60)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, body)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(60)


def visibility_ms(server: Server) -> dict[str, Any]:
    """Time from an event's 2xx to its appearance in trends, raw and rollup."""
    marker = f"bench-{uuid.uuid4().hex[:8]}"
    body = {"collection": "events", "series": [{"event": marker, "math": "total"}], "interval": "day"}
    out: dict[str, Any] = {}
    now = datetime.now(UTC).isoformat()
    server.post("/v1/events", {"event": marker, "distinct_id": "bench", "timestamp": now})
    acked = time.perf_counter()
    for use_rollups in (False, True):
        while True:
            got = server.post("/v1/insights/trends", {**body, "date_from": "-1d", "use_rollups": use_rollups})
            if got["series"] and got["series"][0]["total"] >= 1:
                out["rollup" if use_rollups else "raw"] = (time.perf_counter() - acked) * 1000
                out["rollup_source" if use_rollups else "raw_source"] = got["source"]
                break
            if time.perf_counter() - acked > 10:
                out["rollup" if use_rollups else "raw"] = float("inf")
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--actors", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    args = parser.parse_args()
    args.data.mkdir(exist_ok=True)
    directory = load(args)
    since = DEFAULT_END - timedelta(days=args.days)
    date_from = since.isoformat()
    rows: list[tuple[str, float, str]] = []

    # The API (a server on a copy of the file), chDB and DuckDB in turns (``interleaved_ms``).
    ch = chdb_engine(directory)
    duck = DuckDBEngine(directory / "aggregata.duckdb")
    server = Server(server_copy(directory))
    duck_raw, ch_raw = raw_duckdb(duck), raw_chdb(ch)
    group_by = (
        "SELECT count(*) FROM (SELECT distinct_id FROM events WHERE event IN "
        "('pageview', 'signup', 'add_to_cart', 'purchase') AND \"timestamp\" >= $lo GROUP BY distinct_id)"
    )
    try:
        funnel: dict[int, dict[str, float]] = {}
        for n in (2, 4, 5, 10, 20):
            paths: dict[str, Callable[[], Any]] = {
                "api": lambda n=n: server.post("/v1/insights/funnels", funnel_body(n, date_from)),
                "windowFunnel": lambda n=n: ch_raw(chdb_funnel(n, since)),
            }
            if n == 4:
                paths["group_by"] = lambda: duck_raw(group_by, {"lo": since})
            funnel[n] = interleaved_ms(paths, args.runs)
        f4 = funnel[4]
        rows.append(
            (
                "funnel 4 steps, 7-day window (API)",
                f4["api"],
                f"chDB windowFunnel {f4['windowFunnel']:.0f} ms ({f4['api'] / f4['windowFunnel']:.2f}x); "
                f"GROUP BY distinct_id {f4['group_by']:.0f} ms ({f4['api'] / f4['group_by']:.2f}x)",
            )
        )
        for n in (2, 5, 10, 20):
            rows.append(
                (
                    f"funnel {n} steps (API)",
                    funnel[n]["api"],
                    f"chDB windowFunnel {funnel[n]['windowFunnel']:.0f} ms",
                )
            )
        retention = {
            "collection": "events",
            "start_event": {"event": "signup"},
            "return_event": {"event": "pageview"},
            "period": "week",
            "periods": 12,
            "retention_type": "first_time",
            "date_from": date_from,
            "date_to": DEFAULT_END.isoformat(),
        }
        kept = interleaved_ms(
            {
                "api": lambda: server.post("/v1/insights/retention", retention),
                "chdb": lambda: ch_raw(chdb_retention(since)),
            },
            args.runs,
        )
        rows.append(
            (
                "retention weekly x 12 (API)",
                kept["api"],
                f"chDB hand-written {kept['chdb']:.0f} ms ({kept['api'] / kept['chdb']:.2f}x)",
            )
        )
        trend = {
            "collection": "events",
            "series": [{"event": "pageview", "math": "total"}],
            "interval": "day",
            "breakdown": ["country"],
            "date_from": date_from,
            "date_to": DEFAULT_END.isoformat(),
        }
        dau = {**trend, "series": [{"event": None, "math": "dau"}], "breakdown": None}
        for label, body in (("daily trend by country", trend), ("DAU over 90 days", dau)):
            # In turns, warm (``burst``): a rollup query's first call after a second-long raw
            # one runs on caches the raw one emptied, which a dashboard's repeats do not.
            paths = {
                "raw": lambda b=body: server.post("/v1/insights/trends", {**b, "use_rollups": False}),
                "rollup": lambda b=body: server.post("/v1/insights/trends", b),
            }
            timed = interleaved_ms(paths, args.runs, burst=3)
            raw, fast = timed["raw"], timed["rollup"]
            source = server.post("/v1/insights/trends", body)["source"]
            rows.append((f"{label}, raw (API)", raw, ""))
            rows.append((f"{label}, {source} (API)", fast, f"{raw / fast:.1f}x faster than raw"))
        seen = visibility_ms(server)
        rows.append(("ingested event visible in trends, raw", seen["raw"], f"source {seen['raw_source']}"))
        rows.append(
            ("ingested event visible in trends, rollup", seen["rollup"], f"source {seen['rollup_source']}")
        )
    finally:
        server.close()
        duck.close()
        ch.close()

    print(f"\n{args.events:,} events, {args.actors:,} actors, {args.days} days; median of {args.runs}\n")
    print("| query | median ms | comparison |\n|---|---:|---|")
    for name, ms, note in rows:
        print(f"| {name} | {ms:,.1f} | {note} |")


if __name__ == "__main__":
    main()

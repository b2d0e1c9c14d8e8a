"""Aggregation benchmark: our API vs hand-written SQL on DuckDB and chDB, and pandas.

    .venv/bin/python benchmarks/aggs.py --events 10000000

Loads the seeded event stream once (cached under bench-data/), then for each request
reports the median latency through the HTTP API (a real server process), through the
Python API (``SearchService``), through our ClickHouse dialect on chDB, of the equivalent
hand-written SQL on raw DuckDB and on raw chDB, and of a pandas implementation — all in
the same run, and the first five in turns, request by request (``interleaved_ms``; the
server reads a copy of the database file), so the ratios compare the same minutes. Also
checks accuracy: percentiles against exact values, cardinality below and above
``precision_threshold``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from insights import Server, chdb_engine, interleaved_ms, median_ms, raw_chdb, raw_duckdb, server_copy
from insights import load as load_events  # the same cached dataset as benchmarks/insights.py

from aggregata.search.service import SearchService
from aggregata.storage.duckdb import DuckDBEngine

ROOT = Path(__file__).resolve().parent.parent

Q_PURCHASE = {"term": {"event": "purchase"}}
PANDAS_COLUMNS = [
    "event",
    "distinct_id",
    "timestamp",
    "properties.country",
    "properties.browser",
    "properties.price",
]

# name → (ES request body, hand-written DuckDB SQL, hand-written ClickHouse SQL)
REQUESTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "terms top-10": (
        {"size": 0, "aggs": {"t": {"terms": {"field": "properties.country", "size": 10}}}},
        'SELECT "properties.country" k, count(*) c FROM events WHERE "properties.country" IS NOT NULL '
        "GROUP BY k ORDER BY c DESC, k LIMIT 10",
        "SELECT `properties:country` k, count() c FROM events WHERE `properties:country` IS NOT NULL "
        "GROUP BY k ORDER BY c DESC, k LIMIT 10",
    ),
    "terms x avg": (
        {
            "size": 0,
            "aggs": {
                "t": {
                    "terms": {"field": "properties.country", "size": 10},
                    "aggs": {"p": {"avg": {"field": "properties.price"}}},
                }
            },
        },
        'SELECT "properties.country" k, count(*) c, avg("properties.price") FROM events '
        'WHERE "properties.country" IS NOT NULL GROUP BY k ORDER BY c DESC, k LIMIT 10',
        "SELECT `properties:country` k, count() c, avg(`properties:price`) FROM events "
        "WHERE `properties:country` IS NOT NULL GROUP BY k ORDER BY c DESC, k LIMIT 10",
    ),
    "date_histogram day": (
        {"size": 0, "aggs": {"d": {"date_histogram": {"field": "timestamp", "calendar_interval": "day"}}}},
        "SELECT date_trunc('day', \"timestamp\") d, count(*) FROM events GROUP BY d ORDER BY d",
        "SELECT toStartOfDay(`timestamp`) d, count() FROM events GROUP BY d ORDER BY d",
    ),
    # Not in the set: local days cost a time-zone conversion per row when written by
    # hand; our compiler counts per UTC hour first (sql/aggs/slots.py).
    "date_histogram day Europe/Berlin": (
        {
            "size": 0,
            "aggs": {
                "d": {
                    "date_histogram": {
                        "field": "timestamp",
                        "calendar_interval": "day",
                        "time_zone": "Europe/Berlin",
                    }
                }
            },
        },
        "SELECT timezone('Europe/Berlin', date_trunc('day', timezone('Europe/Berlin', \"timestamp\"))) d, "
        "count(*) FROM events GROUP BY d ORDER BY d",
        "SELECT toStartOfDay(`timestamp`, 'Europe/Berlin') d, count() FROM events GROUP BY d ORDER BY d",
    ),
    "stats": (
        {"size": 0, "aggs": {"s": {"stats": {"field": "properties.price"}}}},
        'SELECT count("properties.price"), min("properties.price"), max("properties.price"), '
        'avg("properties.price"), sum("properties.price") FROM events',
        "SELECT count(`properties:price`), min(`properties:price`), max(`properties:price`), "
        "avg(`properties:price`), sum(`properties:price`) FROM events",
    ),
    "percentiles": (
        {"size": 0, "aggs": {"p": {"percentiles": {"field": "properties.price", "percents": [50, 95, 99]}}}},
        'SELECT quantile_cont("properties.price", [0.5, 0.95, 0.99]) FROM events',
        # Exact and interpolated like ours and DuckDB's quantile_cont (``quantiles`` samples).
        "SELECT quantilesExactInclusive(0.5, 0.95, 0.99)(`properties:price`) FROM events",
    ),
    "cardinality": (
        {"size": 0, "aggs": {"c": {"cardinality": {"field": "distinct_id"}}}},
        "SELECT count(DISTINCT distinct_id) FROM events",
        "SELECT uniqCombined(distinct_id) FROM events",
    ),
    "filtered terms": (
        {"size": 0, "query": Q_PURCHASE, "aggs": {"t": {"terms": {"field": "properties.browser"}}}},
        "SELECT \"properties.browser\" k, count(*) c FROM events WHERE event = 'purchase' "
        'AND "properties.browser" IS NOT NULL GROUP BY k ORDER BY c DESC, k LIMIT 10',
        "SELECT `properties:browser` k, count() c FROM events WHERE event = 'purchase' "
        "AND `properties:browser` IS NOT NULL GROUP BY k ORDER BY c DESC, k LIMIT 10",
    ),
    "3-level terms/date_histogram/avg": (
        {
            "size": 0,
            "aggs": {
                "t": {
                    "terms": {"field": "properties.country", "size": 5},
                    "aggs": {
                        "d": {
                            "date_histogram": {"field": "timestamp", "calendar_interval": "week"},
                            "aggs": {"p": {"avg": {"field": "properties.price"}}},
                        }
                    },
                }
            },
        },
        'WITH top AS (SELECT "properties.country" k FROM events WHERE k IS NOT NULL GROUP BY k '
        "ORDER BY count(*) DESC, k LIMIT 5) "
        'SELECT e."properties.country", date_trunc(\'week\', "timestamp") w, count(*), '
        'avg("properties.price") FROM events e JOIN top ON e."properties.country" = top.k '
        "GROUP BY ALL ORDER BY ALL",
        "WITH top AS (SELECT `properties:country` k FROM events WHERE k IS NOT NULL GROUP BY k "
        "ORDER BY count() DESC, k LIMIT 5) "
        "SELECT `properties:country`, toMonday(`timestamp`) w, count(), avg(`properties:price`) "
        "FROM events WHERE `properties:country` IN (SELECT k FROM top) GROUP BY ALL ORDER BY ALL",
    ),
}


def pandas_impl(frame: Callable[[list[str]], pd.DataFrame]) -> dict[str, Callable[[], Any]]:
    """Each request in pandas; ``frame(columns)`` supplies the columns it reads."""

    def top(f: pd.DataFrame, col: str, n: int = 10) -> pd.Series:
        return f[col].value_counts().head(n)

    def three_level() -> Any:
        f = frame(["country", "timestamp", "price"])
        return (
            f[f["country"].isin(top(f, "country", 5).index)]
            .groupby(["country", f["timestamp"].dt.to_period("W")])["price"]
            .agg(["count", "mean"])
        )

    def filtered() -> Any:
        f = frame(["event", "browser"])
        return top(f[f["event"] == "purchase"], "browser")

    def by_day() -> Any:
        f = frame(["timestamp"])
        return f.groupby(f["timestamp"].dt.floor("D")).size()

    def by_local_day() -> Any:
        f = frame(["timestamp"])
        return f.groupby(f["timestamp"].dt.tz_convert("Europe/Berlin").dt.normalize()).size()

    return {
        "terms top-10": lambda: top(frame(["country"]), "country"),
        "terms x avg": lambda: (
            frame(["country", "price"])
            .groupby("country")["price"]
            .agg(["count", "mean"])
            .nlargest(10, "count")
        ),
        "date_histogram day": by_day,
        "date_histogram day Europe/Berlin": by_local_day,
        "stats": lambda: frame(["price"])["price"].agg(["count", "min", "max", "mean", "sum"]),
        "percentiles": lambda: frame(["price"])["price"].quantile([0.5, 0.95, 0.99]),
        "cardinality": lambda: frame(["distinct_id"])["distinct_id"].nunique(),
        "filtered terms": filtered,
        "3-level terms/date_histogram/avg": three_level,
    }


def parquet_reader(engine: DuckDBEngine, directory: Path) -> Callable[[list[str]], pd.DataFrame]:
    """The columns a request reads, loaded from a Parquet copy of the events (cached): what
    a pandas user does for each question, since the data does not live in their process."""
    path = directory.with_name(directory.name + "-pandas.parquet")
    if not path.exists():
        select = ", ".join(f'"{c}" AS "{c.removeprefix("properties.")}"' for c in PANDAS_COLUMNS)
        engine.query_sql(f"COPY (SELECT {select} FROM events) TO '{path}' (FORMAT parquet)")
    return lambda columns: pd.read_parquet(path, columns=columns)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    args.data.mkdir(exist_ok=True)
    directory = load_events(
        argparse.Namespace(events=args.events, actors=args.events // 20, days=90, data=args.data)
    )

    # Every path of one request in turns (``interleaved_ms``): the server on a copy of the
    # file, the in-process service and the hand-written SQL on the original, and chDB.
    ch_engine = chdb_engine(directory)
    ch_service = SearchService(ch_engine)
    server = Server(server_copy(directory))
    engine = DuckDBEngine(directory / "aggregata.duckdb")
    service = SearchService(engine)
    duck_raw, ch_raw = raw_duckdb(engine), raw_chdb(ch_engine)
    results: dict[str, dict[str, float]] = {}
    try:
        for name, (body, duck_sql, ch_sql) in REQUESTS.items():
            paths: dict[str, Callable[[], Any]] = {
                "http": lambda b=body: server.post("/v1/collections/events/_search", b),
                "python": lambda b=body: service.search("events", b),
                "duckdb": lambda q=duck_sql: duck_raw(q),
                "chdb_api": lambda b=body: ch_service.search("events", b),
                "chdb": lambda q=ch_sql: ch_raw(q),
            }
            results[name] = interleaved_ms(paths, args.runs, burst=3)
    finally:
        server.close()
        ch_engine.close()

    arrow = engine.query_sql("SELECT " + ", ".join(f'"{c}"' for c in PANDAS_COLUMNS) + " FROM events")
    read = parquet_reader(engine, directory)
    exact = accuracy(engine, service)
    engine.close()

    if not args.skip_pandas:
        df = arrow.to_pandas().rename(columns={c: c.removeprefix("properties.") for c in PANDAS_COLUMNS})
        pandas_runs = max(1, args.runs // 3)
        for name, fn in pandas_impl(lambda _: df).items():
            results[name]["pandas"] = median_ms(fn, pandas_runs)
        for name, fn in pandas_impl(read).items():
            results[name]["pandas_read"] = median_ms(fn, pandas_runs)

    report(results, args.events, exact)


def accuracy(engine: DuckDBEngine, service: SearchService) -> list[str]:
    """Percentiles against exact values; cardinality below and above the threshold."""
    lines = []
    prices = engine.query_sql('SELECT "properties.price" p FROM events WHERE p IS NOT NULL LIMIT 1000000')
    values = prices.column(0).to_numpy()
    sample = engine.query_sql(
        'SELECT min(_id) lo, max(_id) hi FROM (SELECT _id FROM events WHERE "properties.price" IS NOT NULL '
        "ORDER BY _id LIMIT 1000000)"
    ).to_pylist()[0]
    body = {
        "size": 0,
        "query": {"range": {"_id": {"gte": sample["lo"], "lte": sample["hi"]}}},
        "aggs": {"p": {"percentiles": {"field": "properties.price", "percents": [1, 25, 50, 75, 95, 99]}}},
    }
    got = service.search("events", body)["aggregations"]["p"]["values"]
    for pct, value in got.items():
        want = float(np.percentile(values, float(pct)))
        lines.append(
            f"percentile {pct}: {value:.4f} vs exact {want:.4f} ({abs(value - want) / want:.3%} off)"
        )
    distinct = engine.query_sql("SELECT count(DISTINCT distinct_id) FROM events").column(0)[0].as_py()
    body = {"size": 0, "aggs": {"c": {"cardinality": {"field": "distinct_id"}}}}
    approx = service.search("events", body)["aggregations"]["c"]["value"]
    error = abs(approx - distinct) / distinct
    lines.append(f"cardinality (above threshold): {approx:,} vs exact {distinct:,} ({error:.3%} off)")
    small = engine.query_sql('SELECT count(DISTINCT "properties.country") FROM events').column(0)[0].as_py()
    body = {"size": 0, "aggs": {"c": {"cardinality": {"field": "properties.country"}}}}
    got_small = service.search("events", body)["aggregations"]["c"]["value"]
    verdict = "exact" if got_small == small else "WRONG"
    lines.append(f"cardinality (below threshold): {got_small} vs exact {small} ({verdict})")
    return lines


def _ratio(r: dict[str, float], a: str, b: str) -> str:
    return f"{r[a] / r[b]:.2f}x" if a in r and b in r else "-"


def report(results: dict[str, dict[str, float]], n: int, exact: list[str]) -> None:
    cols = ["http", "python", "duckdb", "chdb_api", "chdb", "pandas", "pandas_read"]
    pairs = (("http", "duckdb"), ("chdb_api", "chdb"), ("pandas", "http"), ("pandas_read", "http"))
    print(f"\nmedian latency in ms over {n:,} events\n")
    print("| request | " + " | ".join(cols + [f"{a}/{b}" for a, b in pairs]) + " |")
    print("|---|" + "---:|" * (len(cols) + len(pairs)))
    for name, r in results.items():
        cells = [f"{r[c]:.1f}" if c in r else "-" for c in cols]
        ratios = [_ratio(r, a, b) for a, b in pairs]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")
    print()
    for line in exact:
        print("- " + line)


if __name__ == "__main__":
    main()

"""Aggregation benchmark: our API vs hand-written SQL on DuckDB and chDB, and pandas.

    .venv/bin/python benchmarks/aggs.py --events 10000000

Loads the seeded event stream once (cached under bench-data/), then for each request
reports the median latency through the HTTP API (a real server process), through the
Python API (``SearchService``), through our ClickHouse dialect on chDB, of the equivalent
hand-written SQL on raw DuckDB and on raw chDB, and of a pandas implementation — all in
the same run. Also checks accuracy: percentiles against exact values, cardinality below
and above ``precision_threshold``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from insights import Server, median_ms
from insights import load as load_events  # the same cached dataset as benchmarks/insights.py

from aggregata.search.service import SearchService
from aggregata.storage.duckdb import DuckDBEngine

ROOT = Path(__file__).resolve().parent.parent

Q_PURCHASE = {"term": {"event": "purchase"}}

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
        "SELECT quantiles(0.5, 0.95, 0.99)(`properties:price`) FROM events",
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


def pandas_impl(df: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    def top(frame: pd.DataFrame, col: str, n: int = 10) -> pd.Series:
        return frame[col].value_counts().head(n)

    return {
        "terms top-10": lambda: top(df, "country"),
        "terms x avg": lambda: df.groupby("country")["price"].agg(["count", "mean"]).nlargest(10, "count"),
        "date_histogram day": lambda: df.groupby(df["timestamp"].dt.floor("D")).size(),
        "stats": lambda: df["price"].agg(["count", "min", "max", "mean", "sum"]),
        "percentiles": lambda: df["price"].quantile([0.5, 0.95, 0.99]),
        "cardinality": lambda: df["distinct_id"].nunique(),
        "filtered terms": lambda: top(df[df["event"] == "purchase"], "browser"),
        "3-level terms/date_histogram/avg": lambda: (
            df[df["country"].isin(top(df, "country", 5).index)]
            .groupby(["country", df["timestamp"].dt.to_period("W")])["price"]
            .agg(["count", "mean"])
        ),
    }


def http_medians(directory: Path, runs: int) -> dict[str, float]:
    server = Server(directory)
    try:
        return {
            name: median_ms(lambda b=body: server.post("/v1/collections/events/_search", b), runs)
            for name, (body, _, _) in REQUESTS.items()
        }
    finally:
        server.close()


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

    results: dict[str, dict[str, float]] = {name: {} for name in REQUESTS}
    for name, ms in http_medians(directory, args.runs).items():
        results[name]["http"] = ms

    engine = DuckDBEngine(directory / "aggregata.duckdb")
    service = SearchService(engine)
    for name, (body, duck_sql, _) in REQUESTS.items():
        results[name]["python"] = median_ms(lambda b=body: service.search("events", b), args.runs)
        results[name]["duckdb"] = median_ms(lambda q=duck_sql: engine.query_sql(q), args.runs)

    columns = [
        "event",
        "distinct_id",
        "timestamp",
        "properties.country",
        "properties.browser",
        "properties.price",
    ]
    arrow = engine.query_sql("SELECT " + ", ".join(f'"{c}"' for c in columns) + " FROM events")
    exact = accuracy(engine, service)
    ch_engine, ch_service = clickhouse(engine, directory)
    engine.close()
    for name, (body, _, ch_sql) in REQUESTS.items():
        results[name]["chdb_api"] = median_ms(lambda b=body: ch_service.search("events", b), args.runs)
        results[name]["chdb"] = median_ms(lambda q=ch_sql: ch_engine.query_sql(q), args.runs)
    ch_engine.close()

    if not args.skip_pandas:
        df = arrow.to_pandas().rename(columns={c: c.removeprefix("properties.") for c in columns})
        for name, fn in pandas_impl(df).items():
            results[name]["pandas"] = median_ms(fn, max(1, args.runs // 3))

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


def clickhouse(duck: DuckDBEngine, directory: Path) -> tuple[Any, SearchService]:
    """The same events in chDB (loaded once through our ClickHouse engine, then cached)."""
    from aggregata.model.documents import Batch
    from aggregata.storage.clickhouse import ClickHouseEngine

    engine = ClickHouseEngine(directory.with_name(directory.name + "-chdb"), query_timeout_s=600)
    if not any(c.name == "events" for c in engine.list_collections()):
        coll = duck.get_collection("events")
        engine.create_collection("events", coll.mapping, kind=coll.kind, settings=coll.settings)
        total = duck.count("events")
        print(f"loading {total:,} events into chDB", file=sys.stderr)
        for offset in range(0, total, 1_000_000):
            part = duck.query_sql(f"SELECT * FROM events ORDER BY _id LIMIT 1000000 OFFSET {offset}")
            engine.write("events", Batch(table=part, mapping=coll.mapping))
    return engine, SearchService(engine)


def _ratio(r: dict[str, float], a: str, b: str) -> str:
    return f"{r[a] / r[b]:.2f}x" if a in r and b in r else "-"


def report(results: dict[str, dict[str, float]], n: int, exact: list[str]) -> None:
    cols = ["http", "python", "duckdb", "chdb_api", "chdb", "pandas"]
    print(f"\nmedian latency in ms over {n:,} events\n")
    print("| request | " + " | ".join(cols) + " | http/duckdb | chdb_api/chdb | pandas/http |")
    print("|---|" + "---:|" * (len(cols) + 3))
    for name, r in results.items():
        cells = [f"{r[c]:.1f}" if c in r else "-" for c in cols]
        ratios = [_ratio(r, a, b) for a, b in (("http", "duckdb"), ("chdb_api", "chdb"), ("pandas", "http"))]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")
    print()
    for line in exact:
        print("- " + line)


if __name__ == "__main__":
    main()

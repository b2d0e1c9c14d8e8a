"""Aggregata: a self-hosted analytics engine.

Elasticsearch-style search and aggregations and product analytics (trends, funnels,
retention) over typed columnar collections stored in DuckDB, compiled through sqlglot so
the same requests also run on ClickHouse.
"""

__version__ = "0.1.0"

"""Golden SQL: what representative searches compile to, in each dialect, checked in.

A change to the compiler or a dialect shows up as a readable diff of the SQL the engines
run. After an intended change, regenerate with ``AGGREGATA_UPDATE_SNAPSHOTS=1 pytest
tests/sql/test_golden.py`` and review the diff. Execution (and correctness against an
oracle) is tested elsewhere; this pins the text.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from aggregata.dsl.search import parse_search
from aggregata.model.mapping import Mapping
from aggregata.sql import ddl
from aggregata.sql.dialects import DIALECTS, render
from aggregata.sql.search import compile_search
from tests.conftest import NOW

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("AGGREGATA_UPDATE_SNAPSHOTS") == "1"

MAPPING = Mapping.from_es(
    {
        "properties": {
            "k": {"type": "keyword"},
            "n": {"type": "long"},
            "x": {"type": "double"},
            "flag": {"type": "boolean"},
            "when": {"type": "date"},
            "tags": {"type": "keyword", "array": True},
            "user": {"properties": {"country": {"type": "keyword"}, "age": {"type": "long"}}},
        }
    }
)

CASES: dict[str, dict[str, Any]] = {
    "term": {"query": {"term": {"k": "a"}}},
    "terms_on_array": {"query": {"terms": {"tags": ["red", "blue"]}}},
    # DuckDB: a semi-join on the values (sql/dialects.py:_semi_joined), ClickHouse: IN.
    "terms_keyword": {"query": {"terms": {"k": ["a", "b", "c"]}}},
    "range_date_math": {"query": {"range": {"when": {"gte": "now-7d/d", "lt": "now/d"}}}},
    "bool_must_not_should_msm": {
        "query": {
            "bool": {
                "filter": [{"range": {"n": {"gte": 0}}}],
                "must_not": [{"term": {"flag": True}}],
                "should": [
                    {"term": {"k": "a"}},
                    {"term": {"tags": "red"}},
                    {"range": {"x": {"gt": 1.5}}},
                ],
                "minimum_should_match": 2,
            }
        }
    },
    "exists_object_prefix": {"query": {"exists": {"field": "user"}}},
    "sort_from_size": {
        "query": {"term": {"user.country": "DE"}},
        "sort": [{"n": "desc"}, {"when": {"order": "asc", "missing": "_first"}}],
        "from": 5,
        "size": 7,
        "_source": ["k", "user.*"],
        "track_total_hits": 100,
    },
}


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def compiled_sql(body: dict[str, Any], dialect: str) -> str:
    """The snapshot text: each statement the engine runs, then the bound parameters."""
    compiled = compile_search(parse_search(body), "docs", MAPPING, now=NOW)
    parts = [
        f"-- {label}\n{render(tree, dialect)};"
        for label, tree in (("hits", compiled.hits), ("total", compiled.total))
        if tree is not None
    ]
    params = orjson.dumps({k: _json(v) for k, v in compiled.params.values.items()}).decode()
    return "\n".join([*parts, f"-- params: {params}"]) + "\n"


def check_snapshot(case: str, dialect: str, text: str) -> None:
    path = SNAPSHOTS / case / f"{dialect}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; run with AGGREGATA_UPDATE_SNAPSHOTS=1 to create it")
    assert text == path.read_text()


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_search_sql(case: str, dialect: str) -> None:
    check_snapshot(case, dialect, compiled_sql(CASES[case], dialect))


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_create_table_sql(dialect: str) -> None:
    text = render(ddl.create_table("docs", MAPPING, dialect), dialect) + ";\n"
    check_snapshot("create_table", dialect, text)


def test_every_snapshot_has_a_case() -> None:
    """A renamed or removed case must not leave a stale snapshot behind."""
    on_disk = {p.name for p in SNAPSHOTS.iterdir() if p.is_dir()} if SNAPSHOTS.exists() else set()
    assert on_disk <= {*CASES, "create_table", "aggs"}

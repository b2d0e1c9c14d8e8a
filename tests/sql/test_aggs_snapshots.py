"""Golden SQL of representative aggregation requests, per dialect, checked in.

A change to the aggregation compiler or a dialect shows up as a readable diff of the
statements the engines run. After an intended change, regenerate with
``AGGREGATA_UPDATE_SNAPSHOTS=1 pytest tests/sql/test_aggs_snapshots.py`` and review the
diff. Results are checked against the oracle elsewhere; this pins the text (and keeps it
the SQL one would write by hand: no needless subqueries, nothing that was not asked).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlglot import exp

from aggregata.dsl.aggs import parse_aggs
from aggregata.dsl.search import parse_search
from aggregata.model.mapping import Mapping
from aggregata.sql.aggs.chosen import ChosenKeys
from aggregata.sql.aggs.plan import plan_aggs
from aggregata.sql.dialects import DIALECTS, render
from aggregata.sql.search import compile_search
from tests.conftest import NOW

SNAPSHOTS = Path(__file__).parent / "snapshots" / "aggs"
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
            "user": {"properties": {"country": {"type": "keyword"}}},
            "comments": {
                "type": "nested",
                "properties": {"author": {"type": "keyword"}, "stars": {"type": "long"}},
            },
        }
    }
)

CASES: dict[str, dict[str, Any]] = {
    "terms_top10": {"aggs": {"t": {"terms": {"field": "k"}}}},
    "terms_avg": {"aggs": {"t": {"terms": {"field": "k"}, "aggs": {"a": {"avg": {"field": "x"}}}}}},
    "terms_order_by_metric": {
        "aggs": {
            "t": {
                "terms": {"field": "k", "size": 5, "order": {"a": "desc"}},
                "aggs": {"a": {"avg": {"field": "x"}}},
            }
        }
    },
    "terms_on_array": {"aggs": {"t": {"terms": {"field": "tags", "include": "r.*", "missing": "none"}}}},
    "filtered_terms": {
        "query": {"term": {"flag": True}},
        "aggs": {"t": {"terms": {"field": "user.country"}}},
    },
    "date_histogram_day": {"aggs": {"d": {"date_histogram": {"field": "when", "calendar_interval": "day"}}}},
    "date_histogram_month_berlin": {
        "aggs": {
            "d": {
                "date_histogram": {
                    "field": "when",
                    "calendar_interval": "month",
                    "time_zone": "Europe/Berlin",
                }
            }
        }
    },
    "date_histogram_fixed_new_york": {
        "aggs": {
            "d": {
                "date_histogram": {"field": "when", "fixed_interval": "12h", "time_zone": "America/New_York"}
            }
        }
    },
    "stats": {"aggs": {"s": {"stats": {"field": "x"}}}},
    "extended_stats_missing": {"aggs": {"s": {"extended_stats": {"field": "n", "missing": 0}}}},
    "percentiles": {"aggs": {"p": {"percentiles": {"field": "x"}}}},
    "cardinality": {"aggs": {"c": {"cardinality": {"field": "k"}}}},
    "three_levels": {
        "aggs": {
            "t": {
                "terms": {"field": "k"},
                "aggs": {
                    "d": {
                        "date_histogram": {"field": "when", "calendar_interval": "day"},
                        "aggs": {"a": {"avg": {"field": "x"}}},
                    }
                },
            }
        }
    },
    "terms_under_terms": {
        "aggs": {
            "t": {
                "terms": {"field": "k", "size": 3},
                "aggs": {"u": {"terms": {"field": "user.country", "size": 2}}},
            }
        }
    },
    "histogram_bounds": {
        "aggs": {"h": {"histogram": {"field": "x", "interval": 10, "hard_bounds": {"min": 0, "max": 100}}}}
    },
    "range_and_filters": {
        "aggs": {
            "r": {"range": {"field": "n", "ranges": [{"to": 0}, {"from": 0, "to": 10}, {"from": 10}]}},
            "f": {
                "filters": {
                    "filters": {"a": {"term": {"k": "a"}}, "red": {"term": {"tags": "red"}}},
                    "other_bucket": True,
                }
            },
        }
    },
    "nested_reverse_nested": {
        "aggs": {
            "c": {
                "nested": {"path": "comments"},
                "aggs": {"a": {"terms": {"field": "comments.author"}, "aggs": {"r": {"reverse_nested": {}}}}},
            }
        }
    },
    "composite_after": {
        "aggs": {
            "c": {
                "composite": {
                    "size": 2,
                    "sources": [
                        {"k": {"terms": {"field": "k"}}},
                        {"d": {"date_histogram": {"field": "when", "calendar_interval": "day"}}},
                    ],
                    "after": {"k": "a", "d": 1767225600000},
                }
            }
        }
    },
    "top_hits_per_bucket": {
        "aggs": {
            "t": {
                "terms": {"field": "k", "size": 2},
                "aggs": {"h": {"top_hits": {"size": 1, "sort": [{"n": "desc"}], "_source": ["k"]}}},
            }
        }
    },
}


def _keys_shown(tree: exp.Select) -> exp.Select:
    """Keys an earlier statement selects (bound when it has run) as one placeholder ``s<n>_<column>``."""
    tree = tree.copy()
    for marker in list(tree.find_all(ChosenKeys)):
        name = f"s{marker.args['statement']}_{marker.args['column']}"
        marker.replace(exp.In(this=marker.this, expressions=[exp.Placeholder(this=name)]))
    return tree


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def aggs_sql(body: dict[str, Any], dialect: str) -> str:
    """Each aggregation statement the engine runs, then the bound parameters."""
    request = parse_search({"size": 0, **body})
    compiled = compile_search(request, "docs", MAPPING, now=NOW)
    plan = plan_aggs(
        parse_aggs(request.aggs),
        "docs",
        MAPPING,
        params=compiled.params,
        now=NOW,
        where=compiled.where,
        count_hits=compiled.total is not None,
    )
    parts = []
    for i, statement in enumerate(plan.statements):
        parts.append(f"-- statement {i}\n{render(_keys_shown(statement.tree), dialect)};")
        if statement.exact is not None:
            exact = render(_keys_shown(statement.exact), dialect)
            parts.append(f"-- statement {i}, exact cardinality\n{exact};")
    params = orjson.dumps({k: _json(v) for k, v in compiled.params.values.items()}).decode()
    return "\n".join([*parts, f"-- params: {params}"]) + "\n"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_aggregation_sql(case: str, dialect: str) -> None:
    text = aggs_sql(CASES[case], dialect)
    path = SNAPSHOTS / case / f"{dialect}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; run with AGGREGATA_UPDATE_SNAPSHOTS=1 to create it")
    assert text == path.read_text()


def test_every_snapshot_has_a_case() -> None:
    on_disk = {p.name for p in SNAPSHOTS.iterdir() if p.is_dir()} if SNAPSHOTS.exists() else set()
    assert on_disk <= set(CASES)


def test_top_level_terms_is_one_flat_statement() -> None:
    sql = aggs_sql(CASES["terms_top10"], "duckdb")
    assert sql.count("SELECT") == 1 and "LIMIT 10" in sql and "SUM(COUNT(*)) OVER ()" in sql

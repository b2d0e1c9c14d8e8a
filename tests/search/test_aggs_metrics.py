"""Metric aggregations against the plain-Python oracle, on each backend.

Every metric type and parameter runs on generated documents (missing values, arrays,
negatives), one document, no documents, and a field no document has; inside a filtered
query too. Results must equal the oracle's (floats to 1e-9 relative).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.backends import BACKENDS
from tests.search.agg_fixtures import Loaded, assert_close, loaded_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    yield from loaded_fixture(request, tmp_path_factory)


METRICS: list[dict[str, Any]] = [
    {"avg": {"field": "n"}},
    {"avg": {"field": "x", "missing": 1000}},
    {"avg": {"field": "nums"}},
    {"avg": {"field": "when"}},
    {"sum": {"field": "n"}},
    {"sum": {"field": "nums", "missing": 1}},
    {"sum": {"field": "x"}},
    {"min": {"field": "x"}},
    {"min": {"field": "nums"}},
    {"min": {"field": "when"}},
    {"max": {"field": "n", "missing": 500}},
    {"max": {"field": "nums"}},
    {"max": {"field": "when"}},
    {"max": {"field": "flag"}},
    {"value_count": {"field": "k"}},
    {"value_count": {"field": "tags"}},
    {"value_count": {"field": "n", "missing": 0}},
    {"value_count": {"field": "when"}},
    {"stats": {"field": "x"}},
    {"stats": {"field": "nums"}},
    {"stats": {"field": "when"}},
    {"stats": {"field": "user.age", "missing": 0}},
    {"extended_stats": {"field": "x"}},
    {"extended_stats": {"field": "n", "sigma": 3}},
    {"extended_stats": {"field": "nums"}},
    {"cardinality": {"field": "k"}},
    {"cardinality": {"field": "tags"}},
    {"cardinality": {"field": "n", "missing": 999}},
    {"cardinality": {"field": "x", "precision_threshold": 10}},
    {"cardinality": {"field": "nums"}},
    {"percentiles": {"field": "x"}},
    {"percentiles": {"field": "n", "percents": [0, 10, 50, 99.9, 100]}},
    {"percentiles": {"field": "nums", "keyed": False}},
    {"percentiles": {"field": "when", "percents": [50]}},
    {"percentile_ranks": {"field": "x", "values": [-50, 0, 50.5]}},
    {"percentile_ranks": {"field": "nums", "values": [0], "keyed": False}},
    {"median_absolute_deviation": {"field": "x"}},
    {"median_absolute_deviation": {"field": "nums"}},
    {"median_absolute_deviation": {"field": "n", "missing": 0}},
]
IDS = [f"{next(iter(m))}-{next(iter(m.values()))}"[:70] for m in METRICS]


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
@pytest.mark.parametrize("collection", ["docs", "single", "empty"])
def test_metric_matches_oracle(loaded: Loaded, metric: dict[str, Any], collection: str) -> None:
    aggs = {"m": metric}
    got, want = loaded.search(collection, aggs), loaded.oracle(collection, aggs)
    threshold = metric.get("cardinality", {}).get("precision_threshold", 3000)
    if "cardinality" in metric and want["m"]["value"] > threshold:
        # Above precision_threshold the count is a HyperLogLog estimate (a few percent).
        assert abs(got["m"]["value"] - want["m"]["value"]) <= 0.05 * want["m"]["value"]
        return
    assert_close(got, want, rel=1e-7)


@pytest.mark.parametrize("metric", METRICS[::3], ids=IDS[::3])
def test_metric_under_a_query(loaded: Loaded, metric: dict[str, Any]) -> None:
    aggs = {"m": metric}
    query = {"bool": {"filter": [{"range": {"n": {"gte": -10}}}], "must_not": [{"term": {"k": "a"}}]}}
    assert_close(loaded.search("docs", aggs, query), loaded.oracle("docs", aggs, query), rel=1e-7)


@pytest.mark.parametrize(
    "kind",
    [
        "avg",
        "sum",
        "min",
        "max",
        "value_count",
        "stats",
        "extended_stats",
        "cardinality",
        "percentiles",
        "median_absolute_deviation",
    ],
)
def test_field_no_document_has(loaded: Loaded, kind: str) -> None:
    field = "none" if kind in ("value_count", "cardinality") else "user.age"
    aggs = {"m": {kind: {"field": field}}}
    query = {"bool": {"must_not": {"exists": {"field": "user.age"}}}}
    assert_close(loaded.search("docs", aggs, query), loaded.oracle("docs", aggs, query))


def test_many_metrics_in_one_request_and_meta(loaded: Loaded) -> None:
    aggs = {
        "a": {"avg": {"field": "n"}, "meta": {"owner": "me", "n": [1, 2]}},
        "b": {"stats": {"field": "x"}},
        "c": {"cardinality": {"field": "k"}},
        "d": {"percentiles": {"field": "x", "percents": [50]}},
    }
    got = loaded.search("docs", aggs)
    assert got["a"]["meta"] == {"owner": "me", "n": [1, 2]}
    assert_close(got, loaded.oracle("docs", aggs), rel=1e-7)


def test_date_metric_strings(loaded: Loaded) -> None:
    got = loaded.search("single", {"lo": {"min": {"field": "when"}}, "s": {"stats": {"field": "when"}}})
    assert got["lo"] == {"value": 1774744200000.0, "value_as_string": "2026-03-29T00:30:00.000Z"}
    assert got["s"]["min_as_string"] == "2026-03-29T00:30:00.000Z"


def test_extended_stats_of_one_value_reports_nan_like_elasticsearch(loaded: Loaded) -> None:
    got = loaded.search("single", {"e": {"extended_stats": {"field": "n"}}})["e"]
    assert got["variance_sampling"] == "NaN" and got["std_deviation_sampling"] == "NaN"
    assert got["variance"] == 0.0 and got["std_deviation_bounds"]["upper"] == 5.0


def test_metric_format(loaded: Loaded) -> None:
    got = loaded.search("single", {"s": {"sum": {"field": "x", "format": "0.00"}}})
    assert got["s"] == {"value": 2.5, "value_as_string": "2.50"}

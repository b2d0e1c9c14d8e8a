"""Hostile and invalid aggregation requests: guards answer 400 naming the problem, fast and safely."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from aggregata.dsl.aggs import AggLimits
from aggregata.errors import BadRequest
from aggregata.search.service import SearchService
from tests.backends import BACKENDS
from tests.conftest import NOW
from tests.search.agg_fixtures import Loaded, loaded_fixture


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    yield from loaded_fixture(request, tmp_path_factory)


def _error(service: SearchService, aggs: dict[str, Any], collection: str = "docs") -> BadRequest:
    with pytest.raises(BadRequest) as err:
        service.search(collection, {"size": 0, "aggs": aggs})
    assert err.value.status == 400
    return err.value


TOO_MANY = {
    "terms": {"t": {"terms": {"field": "x", "size": 1000}}},
    "terms_x_terms": {
        "t": {"terms": {"field": "k", "size": 20}, "aggs": {"u": {"terms": {"field": "n", "size": 40}}}}
    },
    "histogram_tiny_interval": {"h": {"histogram": {"field": "x", "interval": 0.001, "min_doc_count": 1}}},
    "histogram_gap_fill": {"h": {"histogram": {"field": "n", "interval": 1e-9}}},
    "histogram_extended_bounds": {
        "h": {"histogram": {"field": "n", "interval": 1, "extended_bounds": {"min": 0, "max": 1e12}}}
    },
    "date_histogram_gap_fill": {"d": {"date_histogram": {"field": "when", "fixed_interval": "1s"}}},
    "date_histogram_extended": {
        "d": {
            "date_histogram": {
                "field": "when",
                "calendar_interval": "minute",
                "extended_bounds": {"min": "2000-01-01", "max": "2030-01-01"},
            }
        }
    },
    "composite": {"c": {"composite": {"size": 100_000, "sources": [{"x": {"terms": {"field": "x"}}}]}}},
    "filters_under_terms": {
        "t": {
            "terms": {"field": "n", "size": 200},
            "aggs": {"f": {"filters": {"filters": [{"match_all": {}}]}}},
        }
    },
}


@pytest.mark.parametrize("name", list(TOO_MANY), ids=list(TOO_MANY))
def test_too_many_buckets(loaded: Loaded, name: str) -> None:
    service = SearchService(loaded.engine, clock=lambda: NOW, limits=AggLimits(max_buckets=200))
    started = time.perf_counter()
    err = _error(service, TOO_MANY[name])
    assert err.type == "too_many_buckets_exception"
    assert err.reason.startswith(
        "Trying to create too many buckets. Must be less than or equal to: [200] but was ["
    )
    assert time.perf_counter() - started < 5


def test_default_limit_is_elasticsearch_s(loaded: Loaded) -> None:
    err = _error(loaded.service, {"d": {"date_histogram": {"field": "when", "fixed_interval": "1m"}}})
    assert "less than or equal to: [65535]" in err.reason


def test_huge_size_is_capped_not_an_error(loaded: Loaded) -> None:
    got = loaded.search("docs", {"t": {"terms": {"field": "k", "size": 2**31 - 1}}})
    assert len(got["t"]["buckets"]) == 8 and got["t"]["sum_other_doc_count"] == 0
    top = loaded.search(
        "docs", {"c": {"composite": {"size": 2**31 - 1, "sources": [{"k": {"terms": {"field": "k"}}}]}}}
    )
    assert len(top["c"]["buckets"]) == 8


INJECTIONS = [
    'k"; DROP TABLE "docs"; --',
    "k' OR '1'='1",
    "k`",
    "$p0",
    "{p0:String}",
    "user.country\x00",
    "*",
]


@pytest.mark.parametrize("field", INJECTIONS)
@pytest.mark.parametrize("kind", ["terms", "avg", "histogram", "missing", "cardinality"])
def test_injection_in_field_names_is_an_unknown_field(loaded: Loaded, kind: str, field: str) -> None:
    spec: dict[str, Any] = {"field": field}
    if kind == "histogram":
        spec["interval"] = 1
    err = _error(loaded.service, {"a": {kind: spec}})
    assert f"field [{field}]" in err.reason and "not mapped" in err.reason
    assert loaded.engine.count("docs") == 500


HOSTILE_VALUES: list[dict[str, Any]] = [
    {
        "t": {
            "terms": {
                "field": "k",
                "include": "a'.*|\"; DROP TABLE docs; --",
                "missing": "'; DROP TABLE docs; --",
            }
        }
    },
    {"t": {"terms": {"field": "k", "exclude": ["'", '"', "\\", "$p1", "{p1:String}"]}}},
    {"f": {"filters": {"filters": {"'); --": {"term": {"k": "'; DROP TABLE docs"}}}}}},
    {"r": {"date_range": {"field": "when", "ranges": [{"key": "'\"", "from": "2026-01-01"}]}}},
    {
        "c": {
            "composite": {
                "sources": [{"k": {"terms": {"field": "k"}}}],
                "after": {"k": "'); DROP TABLE docs; --"},
            }
        }
    },
]


@pytest.mark.parametrize("aggs", HOSTILE_VALUES, ids=[str(i) for i in range(len(HOSTILE_VALUES))])
def test_hostile_values_are_parameters(loaded: Loaded, aggs: dict[str, Any]) -> None:
    loaded.search("docs", aggs)
    assert loaded.engine.count("docs") == 500


def test_aggregation_names_never_reach_sql(loaded: Loaded) -> None:
    names = ['a"; DROP TABLE docs; --', "x' OR 1=1", "ünï cødé", "with space", "$p0"]
    got = loaded.search("docs", {name: {"max": {"field": "n"}} for name in names})
    assert list(got) == names and all(v == {"value": 60.0} for v in got.values())


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"a": {"avg": {"field": "k"}}}, "Field [k] of type [keyword] is not supported for aggregation [avg]"),
    ({"a": {"terms": {"field": "comments"}}}, "Field [comments] of type [nested] is not supported"),
    ({"a": {"terms": {"field": "nope"}}}, "field [nope] of aggregation [a] is not mapped"),
    ({"a": {"nested": {"path": "k"}}}, "nested path [k] of aggregation [a] is not nested"),
    ({"a": {"reverse_nested": {}}}, "can only be used inside a [nested] aggregation"),
    (
        {"a": {"nested": {"path": "comments"}, "aggs": {"b": {"terms": {"field": "k"}}}}},
        "inside nested path [comments]",
    ),
    ({"a": {"terms": {"field": "k", "order": {"nope": "asc"}}}}, "Invalid aggregation order path [nope]"),
    (
        {
            "a": {
                "terms": {"field": "k", "order": {"p.50": "asc"}},
                "aggs": {"p": {"percentiles": {"field": "x"}}},
            }
        },
        "Invalid aggregation order path",
    ),
    ({"a": {"avg": {"field": "n", "missing": "lots"}}}, "[missing] of aggregation [a]"),
    (
        {"a": {"date_histogram": {"field": "when", "calendar_interval": "day", "time_zone": "Mars/Olympus"}}},
        "unknown time zone [Mars/Olympus]",
    ),
    (
        {"a": {"date_range": {"field": "when", "ranges": [{"from": "yesterday-ish"}]}}},
        "failed to parse range [yesterday-ish]",
    ),
    ({"a": {"terms": {"field": "n", "include": "1.*"}}}, "a regular expression needs a keyword field"),
    (
        {"a": {"range": {"field": "when", "ranges": [{"to": 5}]}}},
        "Field [when] of type [date] is not supported for aggregation [range]",
    ),
]


@pytest.mark.parametrize(("aggs", "message"), BAD_FIELDS, ids=[m[:40] for _, m in BAD_FIELDS])
def test_invalid_requests_name_the_problem(loaded: Loaded, aggs: dict[str, Any], message: str) -> None:
    assert message in _error(loaded.service, aggs).reason


def test_profile_returns_sql_and_timings_per_statement(loaded: Loaded) -> None:
    body = {
        "size": 0,
        "profile": True,
        "aggs": {"t": {"terms": {"field": "k"}, "aggs": {"a": {"avg": {"field": "x"}}}}},
    }
    profile = loaded.service.search("docs", body)["profile"]
    runs = profile["aggregations"]
    assert (
        len(runs) == 1 and "GROUP BY" in runs[0]["sql"] and runs[0]["rows"] == 8 and runs[0]["time_ms"] >= 0
    )
    assert runs[0]["sql"] in profile["sql"] and "aggs_ms" in profile["timings"]


def test_over_http_errors_and_results_have_elasticsearch_shape(client: Any) -> None:
    docs = [{"_id": str(i), "k": "ab"[i % 2], "n": i} for i in range(10)]
    assert client.post("/v1/collections/c/documents", json=docs).status_code in (200, 201)
    body = {"size": 0, "aggs": {"t": {"terms": {"field": "k"}, "aggs": {"s": {"sum": {"field": "n"}}}}}}
    got = client.post("/v1/collections/c/_search", json=body).json()["aggregations"]
    assert got == {
        "t": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [
                {"key": "a", "doc_count": 5, "s": {"value": 20.0}},
                {"key": "b", "doc_count": 5, "s": {"value": 25.0}},
            ],
        }
    }
    r = client.post("/v1/collections/c/_search", json={"aggs": {"t": {"terms": {"field": "nope"}}}})
    assert r.status_code == 400
    assert (
        r.json()["error"]["type"] == "illegal_argument_exception" and "[nope]" in r.json()["error"]["reason"]
    )
    r = client.post(
        "/v1/collections/c/_search", json={"aggs": {"t": {"histogram": {"field": "n", "interval": 1e-6}}}}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "too_many_buckets_exception"
    r = client.post("/v1/collections/c/_search", json={"aggs": {"t": {"avg": {"field": "n", "bogus": 1}}}})
    assert r.status_code == 400 and "unknown field [bogus]" in r.json()["error"]["reason"]


def test_pipelines_run_on_the_sql_results(loaded: Loaded) -> None:
    aggs = {
        "h": {
            "histogram": {"field": "n", "interval": 20},
            "aggs": {"s": {"sum": {"field": "n"}}, "d": {"derivative": {"buckets_path": "s"}}},
        },
        "best": {"max_bucket": {"buckets_path": "h>s"}},
    }
    got = loaded.search("docs", aggs)
    sums = [b["s"]["value"] for b in got["h"]["buckets"]]
    assert [b["d"]["value"] for b in got["h"]["buckets"][1:]] == [b - a for a, b in itertools.pairwise(sums)]
    assert got["best"]["value"] == max(sums)


def test_a_bad_pipeline_is_a_400_before_any_query(loaded: Loaded) -> None:
    err = _error(
        loaded.service,
        {"h": {"histogram": {"field": "n", "interval": 20}}, "b": {"max_bucket": {"buckets_path": "nope>s"}}},
    )
    assert "nope" in err.reason

"""Bucket aggregations (and their sub-aggregations) against the plain-Python oracle, on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.backends import BACKENDS
from tests.search.agg_fixtures import COLLECTIONS, Loaded, assert_close, loaded_fixture
from tests.search.oracle import matches


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    yield from loaded_fixture(request, tmp_path_factory)


AVG_X = {"avg_x": {"avg": {"field": "x"}}}

CASES: dict[str, dict[str, Any]] = {
    # terms
    "terms_keyword": {"terms": {"field": "k"}},
    "terms_size_3": {"terms": {"field": "k", "size": 3}},
    "terms_long_negative_keys": {"terms": {"field": "n", "size": 5}},
    "terms_double": {"terms": {"field": "x", "size": 4, "order": {"_key": "desc"}}},
    "terms_boolean": {"terms": {"field": "flag"}},
    "terms_date": {"terms": {"field": "when", "size": 3, "order": {"_key": "asc"}}},
    "terms_array_counts_once_per_doc": {"terms": {"field": "tags"}},
    "terms_long_array": {"terms": {"field": "nums", "size": 6}},
    "terms_order_key_asc": {"terms": {"field": "k", "order": {"_key": "asc"}}},
    "terms_order_count_asc": {"terms": {"field": "k", "order": {"_count": "asc"}}},
    "terms_order_by_metric": {"terms": {"field": "k", "order": {"avg_x": "desc"}}, "aggs": AVG_X},
    "terms_order_by_stats_path": {
        "terms": {"field": "user.country", "order": [{"s.max": "asc"}, {"_count": "desc"}]},
        "aggs": {"s": {"stats": {"field": "n"}}},
    },
    "terms_min_doc_count": {"terms": {"field": "n", "min_doc_count": 12, "size": 100}},
    "terms_missing": {"terms": {"field": "k", "missing": "N/A"}},
    "terms_missing_numeric": {"terms": {"field": "user.age", "missing": -1, "size": 3}},
    "terms_include_regex": {"terms": {"field": "k", "include": "[a-c].*"}},
    "terms_exclude_regex": {"terms": {"field": "tags", "exclude": "r.*|x"}},
    "terms_include_values": {"terms": {"field": "k", "include": ["a", "b", "nope"]}},
    "terms_exclude_values_numbers": {"terms": {"field": "n", "exclude": [0, 1, 2], "size": 4}},
    "terms_on_field_nobody_has": {"terms": {"field": "none"}},
    "terms_min_doc_count_zero": {"terms": {"field": "k", "min_doc_count": 0, "size": 20}},
    "terms_min_doc_count_zero_key_order": {
        "terms": {"field": "tags", "min_doc_count": 0, "size": 3, "order": {"_key": "asc"}},
        "aggs": AVG_X,
    },
    "terms_min_doc_count_zero_under_terms": {
        "terms": {"field": "k", "size": 3},
        "aggs": {
            "u": {
                "terms": {"field": "user.country", "min_doc_count": 0, "order": [{"a": "desc"}]},
                "aggs": {"a": {"max": {"field": "n"}}},
            }
        },
    },
    # histogram
    "histogram": {"histogram": {"field": "n", "interval": 10}},
    "histogram_offset": {"histogram": {"field": "x", "interval": 25, "offset": 5}},
    "histogram_fraction": {"histogram": {"field": "x", "interval": 7.5}},
    "histogram_min_doc_count": {"histogram": {"field": "n", "interval": 5, "min_doc_count": 10}},
    "histogram_extended_bounds": {
        "histogram": {"field": "n", "interval": 10, "extended_bounds": {"min": -200, "max": 150}}
    },
    "histogram_hard_bounds": {
        "histogram": {"field": "x", "interval": 10, "hard_bounds": {"min": -25, "max": 30}}
    },
    "histogram_keyed": {"histogram": {"field": "n", "interval": 20, "keyed": True}},
    "histogram_array": {"histogram": {"field": "nums", "interval": 5}},
    "histogram_missing": {"histogram": {"field": "n", "interval": 50, "missing": 1000, "min_doc_count": 1}},
    # ranges
    "range": {
        "range": {
            "field": "x",
            "ranges": [{"to": -50}, {"from": -50, "to": 0}, {"from": 0, "to": 50}, {"from": 50}],
        }
    },
    "range_boundaries_inclusive_exclusive": {
        "range": {
            "field": "n",
            "ranges": [{"from": -10, "to": 0}, {"from": 0, "to": 10}, {"key": "ten", "from": 10, "to": 11}],
        }
    },
    "range_overlapping_unsorted": {
        "range": {"field": "n", "ranges": [{"from": 0, "to": 30}, {"to": 5}, {"from": -20, "to": 10}]}
    },
    "range_keyed": {
        "range": {
            "field": "x",
            "keyed": True,
            "ranges": [{"key": "low", "to": 0}, {"key": "high", "from": 0}],
        }
    },
    "range_array": {"range": {"field": "nums", "ranges": [{"to": 0}, {"from": 0, "to": 10}, {"from": 10}]}},
    "range_missing": {"range": {"field": "x", "missing": 0, "ranges": [{"from": -1, "to": 1}]}},
    "date_range": {
        "date_range": {
            "field": "when",
            "ranges": [
                {"to": "2026-03-08T07:00:00Z"},
                {"from": "2026-03-08T07:00:00Z", "to": "2026-10-25"},
                {"from": "2026-10-25"},
            ],
        }
    },
    "date_range_math_and_zone": {
        "date_range": {
            "field": "when",
            "time_zone": "Europe/Berlin",
            "ranges": [
                {"from": "now-20d/d", "to": "now-10d/d"},
                {"from": "now-10d/d"},
                {"to": "now-1M/M", "key": "old"},
            ],
        }
    },
    # single buckets
    "filter": {"filter": {"term": {"k": "a"}}, "aggs": AVG_X},
    "filter_bool": {
        "filter": {"bool": {"must_not": {"exists": {"field": "tags"}}, "filter": {"range": {"n": {"gt": 0}}}}}
    },
    "filters_named": {
        "filters": {"filters": {"reds": {"term": {"tags": "red"}}, "as": {"terms": {"k": ["a", "A"]}}}},
        "aggs": AVG_X,
    },
    "filters_other_bucket": {
        "filters": {
            "filters": {"pos": {"range": {"n": {"gt": 0}}}, "neg": {"range": {"n": {"lt": 0}}}},
            "other_bucket_key": "rest",
        }
    },
    "filters_anonymous": {
        "filters": {
            "filters": [{"term": {"flag": True}}, {"exists": {"field": "user"}}],
            "other_bucket": True,
        }
    },
    "filters_named_not_keyed": {
        "filters": {"keyed": False, "filters": {"b": {"term": {"k": "b"}}, "a": {"term": {"k": "a"}}}}
    },
    "missing": {"missing": {"field": "k"}, "aggs": AVG_X},
    "missing_array": {"missing": {"field": "tags"}},
    "global": {"global": {}, "aggs": {"c": {"value_count": {"field": "k"}}}},
    # nesting
    "terms_terms_avg": {
        "terms": {"field": "user.country", "size": 3},
        "aggs": {"t": {"terms": {"field": "k", "size": 2}, "aggs": AVG_X}},
    },
    "terms_array_under_terms": {
        "terms": {"field": "tags", "size": 2},
        "aggs": {"t": {"terms": {"field": "nums", "size": 3, "order": {"_key": "asc"}}}},
    },
    "histogram_terms_cardinality": {
        "histogram": {"field": "n", "interval": 40},
        "aggs": {
            "t": {"terms": {"field": "k", "size": 2}, "aggs": {"c": {"cardinality": {"field": "tags"}}}}
        },
    },
    "range_filters_stats": {
        "range": {"field": "x", "ranges": [{"to": 0}, {"from": 0}]},
        "aggs": {
            "f": {
                "filters": {"filters": {"a": {"term": {"k": "a"}}, "b": {"term": {"k": "b"}}}},
                "aggs": {"s": {"stats": {"field": "n"}}},
            }
        },
    },
    "filter_terms_min_doc_count_metric_order": {
        "filter": {"exists": {"field": "user"}},
        "aggs": {
            "t": {
                "terms": {"field": "k", "order": {"m": "asc"}, "min_doc_count": 3},
                "aggs": {
                    "m": {"max": {"field": "n"}},
                    "p": {"percentiles": {"field": "x", "percents": [50]}},
                },
            }
        },
    },
    "ranges_and_filters_under_terms": {
        "terms": {"field": "k", "size": 2},
        "aggs": {
            "r": {"range": {"field": "n", "ranges": [{"to": 0}, {"from": 0}]}, "aggs": AVG_X},
            "f": {
                "filters": {"filters": [{"term": {"flag": True}}], "other_bucket": True},
                "aggs": {"c": {"cardinality": {"field": "tags"}}},
            },
        },
    },
    "four_levels": {
        "terms": {"field": "flag"},
        "aggs": {
            "u": {
                "terms": {"field": "user.country", "size": 2},
                "aggs": {
                    "h": {
                        "histogram": {"field": "n", "interval": 50},
                        "aggs": {"t": {"terms": {"field": "tags", "size": 1}}},
                    }
                },
            }
        },
    },
    "missing_under_terms": {
        "terms": {"field": "k", "size": 3},
        "aggs": {"m": {"missing": {"field": "x"}, "aggs": AVG_X}},
    },
    "nested": {
        "nested": {"path": "comments"},
        "aggs": {
            "a": {"terms": {"field": "comments.author"}, "aggs": {"s": {"avg": {"field": "comments.stars"}}}}
        },
    },
    "nested_reverse_nested": {
        "nested": {"path": "comments"},
        "aggs": {
            "a": {
                "terms": {"field": "comments.author"},
                "aggs": {
                    "back": {
                        "reverse_nested": {},
                        "aggs": {"k": {"terms": {"field": "k", "size": 2}}, "x": {"sum": {"field": "x"}}},
                    }
                },
            }
        },
    },
    "nested_terms_min_doc_count_zero": {
        "filter": {"term": {"k": "zz"}},
        "aggs": {
            "c": {
                "nested": {"path": "comments"},
                "aggs": {"a": {"terms": {"field": "comments.author", "min_doc_count": 0}}},
            }
        },
    },
    "nested_filter_metric": {
        "nested": {"path": "comments"},
        "aggs": {
            "f": {
                "filter": {"term": {"comments.author": "ann"}},
                "aggs": {"s": {"avg": {"field": "comments.stars"}}},
            },
            "m": {"missing": {"field": "comments.stars"}},
            "r": {"range": {"field": "comments.stars", "ranges": [{"to": 3}, {"from": 3}]}},
        },
    },
    "terms_nested_stats": {
        "terms": {"field": "k", "size": 2},
        "aggs": {
            "c": {"nested": {"path": "comments"}, "aggs": {"s": {"stats": {"field": "comments.stars"}}}}
        },
    },
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("collection", ["docs", "single", "empty"])
def test_bucket_matches_oracle(loaded: Loaded, case: str, collection: str) -> None:
    aggs = {"b": CASES[case]}
    assert_close(loaded.search(collection, aggs), loaded.oracle(collection, aggs), rel=1e-7)


QUERY = {"bool": {"should": [{"range": {"x": {"gt": -20}}}, {"term": {"tags": "blue"}}]}}


@pytest.mark.parametrize("case", list(CASES)[::2], ids=list(CASES)[::2])
def test_bucket_under_a_query(loaded: Loaded, case: str) -> None:
    aggs = {"b": CASES[case]}
    assert_close(loaded.search("docs", aggs, QUERY), loaded.oracle("docs", aggs, QUERY), rel=1e-7)


def test_global_ignores_the_query(loaded: Loaded) -> None:
    aggs = {"g": {"global": {}, "aggs": {"k": {"terms": {"field": "k"}}}}, "k": {"terms": {"field": "k"}}}
    query = {"term": {"k": "a"}}
    got = loaded.search("docs", aggs, query)
    assert_close(got, loaded.oracle("docs", aggs, query))
    assert len(got["g"]["k"]["buckets"]) > 1 and len(got["k"]["buckets"]) == 1


def test_sum_other_doc_count_and_error_bound(loaded: Loaded) -> None:
    got = loaded.search(
        "docs", {"t": {"terms": {"field": "tags", "size": 2, "show_term_doc_count_error": True}}}
    )["t"]
    want = loaded.oracle("docs", {"t": {"terms": {"field": "tags", "size": 2}}})["t"]
    assert got["sum_other_doc_count"] == want["sum_other_doc_count"] > 0
    assert all(b["doc_count_error_upper_bound"] == 0 for b in got["buckets"])


PARENT_TERMS: dict[str, dict[str, Any]] = {
    "keyword": {"field": "k", "size": 3},
    "long": {"field": "n", "size": 4},
    "double": {"field": "x", "size": 2, "order": {"_key": "desc"}},
    "boolean": {"field": "flag"},
    "date": {"field": "when", "size": 3},
    "missing": {"field": "user.age", "missing": -1, "size": 3},
    "array": {"field": "tags", "size": 2},
    "min_doc_count": {"field": "n", "min_doc_count": 12, "size": 5},
    "metric_order": {"field": "k", "size": 2, "order": {"a": "asc"}},
    "nobody": {"field": "none"},
    "beyond_bound_keys": {"field": "k", "size": 2000},  # restricted by a CTE instead
}


@pytest.mark.parametrize("parent", list(PARENT_TERMS), ids=list(PARENT_TERMS))
@pytest.mark.parametrize("query", [None, QUERY], ids=["all", "query"])
def test_sub_aggregations_see_the_buckets_their_terms_selected(
    loaded: Loaded, parent: str, query: dict[str, Any] | None
) -> None:
    """Children of a ``terms`` are restricted to its buckets with the keys its statement returned."""
    subs = {
        "a": {"avg": {"field": "x"}},
        "d": {"date_histogram": {"field": "when", "calendar_interval": "week"}, "aggs": AVG_X},
        "u": {"terms": {"field": "user.country", "size": 2}, "aggs": {"c": {"cardinality": {"field": "k"}}}},
        "r": {"range": {"field": "n", "ranges": [{"to": 0}, {"from": 0}]}},
        "h": {"top_hits": {"size": 1, "sort": [{"x": "desc"}], "_source": ["x"]}},
    }
    aggs = {"t": {"terms": PARENT_TERMS[parent], "aggs": subs}}
    got, want = loaded.search("docs", aggs, query), loaded.oracle("docs", aggs, query)
    for g, w in zip(got["t"]["buckets"], want["t"]["buckets"], strict=True):
        assert [h["_id"] for h in g.pop("h")["hits"]["hits"]] == w.pop("h")["hits"]["ids"]
    assert_close(got, want, rel=1e-7)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("query", [None, QUERY], ids=["all", "query"])
def test_hits_total_beside_each_aggregation(loaded: Loaded, case: str, query: dict[str, Any] | None) -> None:
    """The aggregation statement may count the hits too; the count is the query's, whatever the key."""
    want = sum(matches(query, d) for d in COLLECTIONS["docs"])
    body: dict[str, Any] = {"size": 0, "aggs": {"b": CASES[case]}, "query": query}
    for track, total in ((None, {"value": want, "relation": "eq"}), (10, {"value": 10, "relation": "gte"})):
        response = loaded.service.search("docs", {**body, "track_total_hits": track})
        assert response["hits"]["total"] == total
    empty = loaded.service.search("empty", body)
    assert empty["hits"]["total"] == {"value": 0, "relation": "eq"}


@pytest.mark.parametrize(
    "aggs",
    [
        {"t": {"terms": {"field": "k"}}},
        {"d": {"date_histogram": {"field": "when", "calendar_interval": "day"}}},
        {"s": {"stats": {"field": "x"}}, "t": {"terms": {"field": "k"}}},
    ],
)
def test_hits_total_needs_no_statement_of_its_own(loaded: Loaded, aggs: dict[str, Any]) -> None:
    body = {"size": 0, "query": QUERY, "aggs": aggs, "profile": True}
    response = loaded.service.search("docs", body)
    assert response["hits"]["total"]["value"] == sum(matches(QUERY, d) for d in COLLECTIONS["docs"])
    assert len(response["profile"]["sql"]) == len(response["profile"]["aggregations"])
    assert "total_ms" not in response["profile"]["timings"]


@pytest.mark.parametrize(
    "aggs",
    [
        {"t": {"terms": {"field": "tags"}}},
        {"t": {"terms": {"field": "k", "include": ["a", "b"]}}},
        {"h": {"histogram": {"field": "n", "interval": 5, "min_doc_count": 10}}},
        {"h": {"histogram": {"field": "x", "interval": 10, "hard_bounds": {"min": 0, "max": 30}}}},
        {"r": {"range": {"field": "n", "ranges": [{"to": 0}]}}},
    ],
)
def test_hits_total_of_statements_that_do_not_see_every_hit(loaded: Loaded, aggs: dict[str, Any]) -> None:
    body = {"size": 0, "query": QUERY, "aggs": aggs, "profile": True}
    response = loaded.service.search("docs", body)
    assert response["hits"]["total"]["value"] == sum(matches(QUERY, d) for d in COLLECTIONS["docs"])
    assert "total_ms" in response["profile"]["timings"]


def test_hits_total_when_no_hit_has_the_key(loaded: Loaded) -> None:
    """All hits lack the key: the aggregation returns no row, so the hits are counted apart."""
    body = {"size": 0, "aggs": {"t": {"terms": {"field": "none"}}}, "profile": True}
    response = loaded.service.search("docs", body)
    assert response["hits"]["total"] == {"value": 500, "relation": "eq"}
    assert response["aggregations"]["t"]["buckets"] == [] and "total_ms" in response["profile"]["timings"]


def test_size_zero_search_with_hits_total(loaded: Loaded) -> None:
    response = loaded.service.search("docs", {"size": 0, "aggs": {"t": {"terms": {"field": "k", "size": 1}}}})
    assert response["hits"]["hits"] == [] and response["hits"]["total"]["value"] == 500
    assert len(response["aggregations"]["t"]["buckets"]) == 1


TOP_HITS: list[dict[str, Any]] = [
    {"size": 2},
    {"size": 3, "sort": [{"n": "desc"}]},
    {"size": 2, "from": 1, "sort": [{"x": {"order": "asc"}}], "_source": ["k", "x"]},
    {"size": 1, "sort": [{"when": "desc"}], "_source": False},
]


@pytest.mark.parametrize("spec", TOP_HITS, ids=[str(s) for s in TOP_HITS])
def test_top_hits_per_bucket(loaded: Loaded, spec: dict[str, Any]) -> None:
    aggs = {
        "t": {"terms": {"field": "k", "size": 4}, "aggs": {"top": {"top_hits": spec}}},
        "all": {"top_hits": spec},
    }
    got, want = loaded.search("docs", aggs), loaded.oracle("docs", aggs)
    pairs = [(got["all"], want["all"])]
    pairs += [(g["top"], w["top"]) for g, w in zip(got["t"]["buckets"], want["t"]["buckets"], strict=True)]
    docs = {d["_id"]: d for d in COLLECTIONS["docs"]}
    for g, w in pairs:
        assert g["hits"]["total"] == w["hits"]["total"]
        assert [h["_id"] for h in g["hits"]["hits"]] == w["hits"]["ids"]
        for hit in g["hits"]["hits"]:
            assert hit["_index"] == "docs"
            if spec.get("_source") is False:
                assert "_source" not in hit
            elif "_source" in spec:
                assert hit["_source"] == {
                    k: docs[hit["_id"]][k] for k in spec["_source"] if k in docs[hit["_id"]]
                }
            else:  # dates come back normalized (milliseconds), as in search hits
                source = {k: v for k, v in docs[hit["_id"]].items() if k not in ("_id", "when")}
                assert {k: v for k, v in hit["_source"].items() if k != "when"} == source
            if "sort" in spec:
                assert hit["_score"] is None and len(hit["sort"]) == 1
            else:
                assert hit["_score"] == 1.0


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("metric", ["sum", "stats"])
def test_terms_by_a_sum_rank_an_empty_bucket_at_zero(loaded: Loaded, direction: str, metric: str) -> None:
    path = "m" if metric == "sum" else "m.sum"
    aggs = {
        "t": {
            "terms": {"field": "k", "size": 2, "order": {path: direction}},
            "aggs": {"m": {metric: {"field": "n"}}},
        }
    }
    assert_close(loaded.search("sums", aggs), loaded.oracle("sums", aggs))

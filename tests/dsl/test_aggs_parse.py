"""Parsing the ``aggs`` tree: typed nodes, Elasticsearch's defaults, and a 400 naming every mistake."""

from __future__ import annotations

from typing import Any

import pytest

from aggregata.dsl.aggs import AggLimits, Pipeline, parse_aggs
from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.aggs import metrics as m
from aggregata.dsl.query import Term
from aggregata.errors import BadRequest, ParsingError


def test_metrics_and_defaults() -> None:
    (avg, pct, card, top) = parse_aggs(
        {
            "a": {"avg": {"field": "x", "missing": 0}},
            "p": {"percentiles": {"field": "x"}},
            "c": {"cardinality": {"field": "k", "precision_threshold": 100_000}},
            "t": {"top_hits": {"sort": {"n": "desc"}, "_source": ["k"]}},
        }
    )
    assert avg.spec == m.Avg(field="x", missing=0) and avg.type_name == "avg"
    assert isinstance(pct.spec, m.Percentiles) and pct.spec.percents == (
        1.0,
        5.0,
        25.0,
        50.0,
        75.0,
        95.0,
        99.0,
    )
    assert pct.spec.keyed is True
    assert isinstance(card.spec, m.Cardinality) and card.spec.precision_threshold == 40_000
    assert isinstance(top.spec, m.TopHits) and top.spec.size == 3 and top.spec.sort[0].descending


def test_buckets_sub_aggs_meta_and_pipelines() -> None:
    (terms,) = parse_aggs(
        {
            "t": {
                "terms": {"field": "k", "order": {"_term": "asc"}},
                "meta": {"color": "blue"},
                "aggs": {"m": {"max": {"field": "n"}}, "d": {"derivative": {"buckets_path": "m"}}},
            }
        }
    )
    assert isinstance(terms.spec, b.Terms) and terms.spec.order == (b.OrderKey("_key", False),)
    assert terms.meta == {"color": "blue"}
    assert [s.name for s in terms.subs] == ["m", "d"]
    assert terms.subs[1].spec == Pipeline("derivative", {"buckets_path": "m"})


def test_date_intervals_offsets_and_filters() -> None:
    (cal, fixed, filters) = parse_aggs(
        {
            "c": {"date_histogram": {"field": "w", "calendar_interval": "1M", "offset": "-6h"}},
            "f": {"date_histogram": {"field": "w", "fixed_interval": "90m"}},
            "x": {
                "filters": {
                    "filters": {"z": {"term": {"k": "a"}}, "a": {"match_all": {}}},
                    "other_bucket": True,
                }
            },
        }
    )
    assert isinstance(cal.spec, b.DateHistogram) and cal.spec.interval.unit == "month"
    assert cal.spec.offset_ms == -6 * 3_600_000
    assert isinstance(fixed.spec, b.DateHistogram) and fixed.spec.interval.fixed_ms == 90 * 60_000
    assert isinstance(filters.spec, b.Filters)
    assert [k for k, _ in filters.spec.filters] == ["a", "z"]  # sorted by name, as Elasticsearch does
    assert filters.spec.filters[1][1] == Term("k", "a") and filters.spec.other_bucket_key == "_other_"


BAD: list[tuple[dict[str, Any], str]] = [
    ({"a": {"nope": {"field": "x"}}}, "Unknown aggregation type [nope]"),
    ({"a": {"avg": {"field": "x", "feild": 1}}}, "unknown field [feild]"),
    ({"a": {"avg": {}}}, "[field] is required"),
    (
        {"a": {"avg": {"field": "x"}, "aggs": {"b": {"max": {"field": "y"}}}}},
        "cannot accept sub-aggregations",
    ),
    ({"a": {"terms": {"field": "x", "size": 0}}}, "[size] must be greater than or equal to 1"),
    ({"a": {"terms": {"field": "x", "size": 10**12}}}, "[size] must be at most"),
    ({"a": {"terms": {"field": "x", "size": "ten"}}}, "[size] must be an integer"),
    ({"a": {"terms": {"field": "x", "order": {"_count": "up"}}}}, "Unknown order direction [up]"),
    ({"a": {"terms": {"field": "x", "include": "("}}}, "not a valid regular expression"),
    ({"a": {"histogram": {"field": "x"}}}, "[interval] must be provided"),
    ({"a": {"histogram": {"field": "x", "interval": -1}}}, "[interval] must be greater than 0"),
    (
        {"a": {"date_histogram": {"field": "x", "calendar_interval": "2d"}}},
        "could not be parsed as a calendar interval",
    ),
    (
        {"a": {"date_histogram": {"field": "x", "fixed_interval": "1M"}}},
        "could not be parsed as a fixed interval",
    ),
    ({"a": {"date_histogram": {"field": "x", "interval": "1d"}}}, "[interval] was removed"),
    ({"a": {"date_histogram": {"field": "x"}}}, "exactly one of [calendar_interval] or [fixed_interval]"),
    ({"a": {"range": {"field": "x", "ranges": []}}}, "[ranges] must be a non-empty array"),
    ({"a": {"range": {"field": "x", "ranges": [{"from": "abc"}]}}}, "[from] of a range must be a number"),
    ({"a": {"filters": {"filters": 3}}}, "[filters] must be an object"),
    ({"a": {"filter": {"nope": {}}}}, "unknown query [nope]"),
    ({"a": {"terms": {"field": "k"}, "aggs": {"g": {"global": {}}}}}, "cannot be a sub-aggregation"),
    ({"a": {"avg": {"field": "x"}, "max": {"field": "y"}}}, "Found two aggregation type definitions in [a]"),
    ({"a": {}}, "Missing definition for aggregation [a]"),
    ({"a>b": {"avg": {"field": "x"}}}, "Invalid aggregation name [a>b]"),
    ({"a": {"avg": {"field": "x", "script": "doc.x"}}}, "scripts are not supported"),
    ({"a": {"percentiles": {"field": "x", "percents": [101]}}}, "percent must be in [0,100]"),
    ({"a": {"percentile_ranks": {"field": "x"}}}, "[values] must be provided"),
    ({"a": {"composite": {"sources": [{"s": {"geo": {"field": "x"}}}]}}}, "invalid source type [geo]"),
    (
        {"a": {"composite": {"sources": [{"s": {"terms": {"field": "x"}}}], "after": {"t": 1}}}},
        "[after] must be",
    ),
    ({"a": {"top_hits": {"size": 200}}}, "Top hits result window is too large"),
    (
        {"a": {"terms": {"field": "x", "include": {"partition": 0, "num_partitions": 2}}}},
        "partitioned [include]",
    ),
    ({"a": 5}, "Expected [START_OBJECT] under aggregation [a]"),
    ({"a": {"avg": {"field": 5}}}, "[field] must be a string"),
]


@pytest.mark.parametrize(("body", "message"), BAD, ids=[m for _, m in BAD])
def test_mistakes_are_400_naming_them(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_aggs(body)
    assert message in err.value.reason
    assert err.value.status == 400


def test_unknown_type_has_elasticsearch_type() -> None:
    with pytest.raises(ParsingError) as err:
        parse_aggs({"a": {"avg_of_things": {}}})
    assert err.value.type == "named_object_not_found_exception"


def _nest(depth: int) -> dict[str, Any]:
    body: dict[str, Any] = {"leaf": {"avg": {"field": "x"}}}
    for i in range(depth):
        body = {f"l{i}": {"terms": {"field": "k"}, "aggs": body}}
    return body


def test_depth_limit() -> None:
    parse_aggs(_nest(9))
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_aggs(_nest(10))
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_aggs(_nest(3), limits=AggLimits(max_depth=3))


def test_count_limit() -> None:
    with pytest.raises(BadRequest, match="too many aggregations in the request: the maximum is \\[100\\]"):
        parse_aggs({f"a{i}": {"avg": {"field": "x"}} for i in range(101)})
    parse_aggs({f"a{i}": {"avg": {"field": "x"}} for i in range(100)})


def test_deep_hostile_nesting_fails_fast() -> None:
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_aggs(_nest(500))


def test_pipeline_types_can_be_supplied() -> None:
    with pytest.raises(ParsingError, match="Unknown aggregation type \\[derivative\\]"):
        parse_aggs({"a": {"derivative": {}}}, pipeline_types=frozenset())

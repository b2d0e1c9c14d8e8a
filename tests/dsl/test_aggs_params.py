"""Declared aggregation parameters: defaults, reading order, ignored keys, and the registry."""

from __future__ import annotations

from typing import Any

import pytest

from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.aggs import metrics as m
from aggregata.dsl.aggs import parse_aggs
from aggregata.dsl.aggs.params import SPECS, AggSpec
from aggregata.errors import BadRequest

# The smallest valid body of every type, and the spec it must parse to: all else defaulted.
MINIMAL: list[tuple[str, dict[str, Any], AggSpec]] = [
    ("avg", {"field": "x"}, m.Avg(field="x")),
    ("sum", {"field": "x"}, m.Sum(field="x")),
    ("min", {"field": "x"}, m.Min(field="x")),
    ("max", {"field": "x"}, m.Max(field="x")),
    ("value_count", {"field": "x"}, m.ValueCount(field="x")),
    ("stats", {"field": "x"}, m.Stats(field="x")),
    ("extended_stats", {"field": "x"}, m.ExtendedStats(field="x", sigma=2.0)),
    ("cardinality", {"field": "x"}, m.Cardinality(field="x", precision_threshold=3000)),
    ("percentiles", {"field": "x"}, m.Percentiles(field="x", percents=m.DEFAULT_PERCENTS, keyed=True)),
    ("percentile_ranks", {"field": "x", "values": [1]}, m.PercentileRanks(field="x", values=(1.0,))),
    ("median_absolute_deviation", {"field": "x"}, m.MedianAbsoluteDeviation(field="x")),
    ("top_hits", {}, m.TopHits(size=3, offset=0, sort=())),
    ("terms", {"field": "k"}, b.Terms(field="k", size=10, order=b.DEFAULT_TERMS_ORDER, min_doc_count=1)),
    ("histogram", {"field": "x", "interval": 5}, b.Histogram(field="x", interval=5.0, order=b.KEY_ORDER)),
    (
        "date_histogram",
        {"field": "w", "calendar_interval": "day"},
        b.DateHistogram(field="w", interval=b.DateInterval("day", unit="day"), offset_ms=0),
    ),
    (
        "range",
        {"field": "x", "ranges": [{"to": 1}]},
        b.Range(field="x", ranges=(b.RangeSpec(None, None, 1.0),)),
    ),
    (
        "date_range",
        {"field": "w", "ranges": [{"to": "now"}]},
        b.DateRange(field="w", ranges=(b.RangeSpec(None, None, "now"),)),
    ),
    ("missing", {"field": "x"}, b.Missing(field="x")),
    ("global", {}, b.Global()),
    ("nested", {"path": "n"}, b.Nested(path="n")),
    ("reverse_nested", {}, b.ReverseNested()),
]


@pytest.mark.parametrize(("type_name", "body", "spec"), MINIMAL, ids=[t for t, _, _ in MINIMAL])
def test_absent_parameters_keep_the_declared_default(
    type_name: str, body: dict[str, Any], spec: AggSpec
) -> None:
    (agg,) = parse_aggs({"a": {type_name: body}})
    assert agg.spec == spec and type(agg.spec) is type(spec)


def test_every_type_is_registered_under_its_name() -> None:
    assert {t for t, _, _ in MINIMAL} | {"filter", "filters", "composite"} == set(SPECS)
    assert all(spec.type_name == name for name, spec in SPECS.items())


FIRST_MISTAKE: list[tuple[dict[str, Any], str]] = [
    # Parameters marked ``first`` are read before ``field``: their mistake is the one reported.
    ({"terms": {"size": 0}}, "[size] must be greater than or equal to 1"),
    ({"extended_stats": {"sigma": -1}}, "[sigma] must be greater than or equal to 0. Found [-1.0]"),
    ({"cardinality": {"precision_threshold": "x"}}, "[precision_threshold] must be an integer"),
    ({"percentiles": {"percents": [101]}}, "percent must be in [0,100], got [101.0]"),
    ({"percentiles": {"tdigest": 1, "percents": [101]}}, "[tdigest] must be an object"),
    ({"histogram": {"field": 5}}, "[interval] must be provided"),
    ({"histogram": {"interval": 1, "offset": "x"}}, "[offset] must be a number"),
    # Otherwise the declaration order: field, then the rest.
    ({"date_histogram": {"calendar_interval": "2d"}}, "[field] is required"),
    ({"range": {"field": "x", "keyed": 3}}, "[ranges] must be a non-empty array"),
    # A reader may use the parameters read before it.
    ({"top_hits": {"size": 90, "from": 20, "sort": 5}}, "Top hits result window is too large"),
    ({"composite": {"sources": [{"s": {"terms": {"field": "x"}}}], "after": {"t": 1}, "size": 0}}, "[after]"),
]


@pytest.mark.parametrize(("body", "message"), FIRST_MISTAKE, ids=[m for _, m in FIRST_MISTAKE])
def test_the_first_parameter_read_reports_its_mistake(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_aggs({"a": body})
    assert message in err.value.reason


def test_ignored_parameters_add_up_through_subclasses() -> None:
    assert m.Cardinality.ignored == ("value_type", "rehash", "execution_hint")
    parse_aggs({"a": {"cardinality": {"field": "x", "value_type": "long", "rehash": True}}})
    with pytest.raises(BadRequest, match="unknown field \\[rehash\\]"):
        parse_aggs({"a": {"avg": {"field": "x", "rehash": True}}})


def test_key_can_differ_from_the_field_name() -> None:
    (agg,) = parse_aggs({"a": {"top_hits": {"from": 2, "_source": False}}})
    assert isinstance(agg.spec, m.TopHits) and agg.spec.offset == 2 and not agg.spec.source.enabled
    with pytest.raises(BadRequest, match="unknown field \\[offset\\]"):
        parse_aggs({"a": {"top_hits": {"offset": 2}}})


def test_a_type_with_a_field_it_cannot_read_is_refused() -> None:
    with pytest.raises(TypeError, match="fields \\['x'\\] have no reader"):

        class Unreadable(AggSpec, type_name="unreadable_for_test"):
            x: int

    assert "unreadable_for_test" not in SPECS

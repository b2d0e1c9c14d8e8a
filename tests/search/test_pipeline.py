"""Pipeline aggregations over results in Elasticsearch's shape, against hand computations.

Expected numbers are written out by hand (or computed by small index-based oracles in
plain Python below) from Elasticsearch's documented/implemented semantics; the module
under test is never used to produce an expectation.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregata.errors import BadRequest, ParsingError
from aggregata.search.pipeline import PIPELINE_TYPES, apply_pipelines, plan_pipelines, split_pipelines
from aggregata.search.pipeline.movfn import holt_winters
from aggregata.search.pipeline.paths import java_double, parse_path

JSON = dict[str, Any]
DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def histo(values: list[float | None], counts: list[int] | None = None, *, step: int = DAY) -> JSON:
    """A date_histogram result with a ``sales`` metric; a None value defaults to doc_count 0."""
    buckets = []
    for i, v in enumerate(values):
        key = T0 + i * step
        count = counts[i] if counts is not None else (0 if v is None else 1)
        buckets.append({"key_as_string": iso(key), "key": key, "doc_count": count, "sales": {"value": v}})
    return {"buckets": buckets}


def request(pipelines: JSON, *, parent_body: JSON | None = None, siblings: JSON | None = None) -> JSON:
    body = {"field": "t", "fixed_interval": "1d", **(parent_body or {})}
    aggs = {"sales": {"sum": {"field": "x"}}, **{k: {t: b} for k, (t, b) in pipelines.items()}}
    return {"h": {"date_histogram": body, "aggs": aggs}, **(siblings or {})}


def run(
    pipelines: JSON, values: list[float | None], counts: list[int] | None = None, **kw: Any
) -> list[JSON]:
    result = apply_pipelines(request(pipelines, **kw), {"h": histo(values, counts)})
    return list(result["h"]["buckets"])


def out(buckets: list[JSON], name: str, field: str = "value") -> list[Any]:
    """The pipeline's field per bucket; ``"-"`` where the bucket has no output at all."""
    return [b[name][field] if name in b else "-" for b in buckets]


def nan_eq(got: list[Any], want: list[Any]) -> bool:
    return len(got) == len(want) and all(
        g == w if not isinstance(w, float) else isinstance(g, float) and g == pytest.approx(w, rel=1e-12)
        for g, w in zip(got, want, strict=True)
    )


# -- derivative ------------------------------------------------------------------------------


def test_derivative_basic_and_gap_policies() -> None:
    values: list[float | None] = [10.0, 15.0, None, 30.0, 27.0]
    assert out(run({"d": ("derivative", {"buckets_path": "sales"})}, values), "d") == [
        "-",
        5.0,
        None,
        None,
        -3.0,
    ]
    zeros = run({"d": ("derivative", {"buckets_path": "sales", "gap_policy": "insert_zeros"})}, values)
    assert out(zeros, "d") == ["-", 5.0, -15.0, 30.0, -3.0]
    # sum of an empty bucket is 0.0: skip treats it as a gap, keep_values uses the 0.0
    empty_sum: list[float | None] = [10.0, 15.0, 0.0, 30.0]
    counts = [1, 1, 0, 1]
    skip = run({"d": ("derivative", {"buckets_path": "sales"})}, empty_sum, counts)
    assert out(skip, "d") == ["-", 5.0, None, None]
    keep = run(
        {"d": ("derivative", {"buckets_path": "sales", "gap_policy": "keep_values"})}, empty_sum, counts
    )
    assert out(keep, "d") == ["-", 5.0, -15.0, 30.0]
    by_count = run({"d": ("derivative", {"buckets_path": "_count"})}, empty_sum, counts)
    assert out(by_count, "d") == ["-", 0.0, -1.0, 1.0]  # _count never has gaps


def test_derivative_unit_normalizes_by_bucket_distance() -> None:
    values: list[float | None] = [10.0, 16.0, 4.0]
    day = run({"d": ("derivative", {"buckets_path": "sales", "unit": "1d"})}, values)
    assert out(day, "d", "normalized_value") == ["-", 6.0, -12.0]
    hour = run({"d": ("derivative", {"buckets_path": "sales", "unit": "hour"})}, values)
    assert out(hour, "d", "normalized_value") == ["-", 0.25, -0.5]
    ten_s = run({"d": ("derivative", {"buckets_path": "sales", "unit": "10s"})}, values)
    assert out(ten_s, "d", "normalized_value") == ["-", 6.0 / 8640, -12.0 / 8640]
    assert out(ten_s, "d") == ["-", 6.0, -12.0]
    # month is Java's average month (30.436875 days): 31 January days are 1.0185... months
    jan_feb = {
        "buckets": [
            {"key": T0, "doc_count": 1, "s": {"value": 1.0}},
            {"key": T0 + 31 * DAY, "doc_count": 1, "s": {"value": 6.0}},
        ]
    }
    req = {
        "h": {
            "date_histogram": {"field": "t"},
            "aggs": {
                "s": {"sum": {"field": "x"}},
                "d": {"derivative": {"buckets_path": "s", "unit": "month"}},
            },
        }
    }
    d = apply_pipelines(req, {"h": jan_feb})["h"]["buckets"][1]["d"]
    assert d == {"value": 5.0, "normalized_value": pytest.approx(5.0 / (31 * 86_400 / 2_629_746))}
    no_unit = run({"d": ("derivative", {"buckets_path": "sales"})}, values)
    assert "normalized_value" not in no_unit[1]["d"]
    with pytest.raises(BadRequest, match="unit is missing or unrecognized") as info:
        run({"d": ("derivative", {"buckets_path": "sales", "unit": "fortnight"})}, values)
    assert info.value.type == "parse_exception"


def test_second_derivative_and_derivative_of_later_declared_cumulative_sum() -> None:
    squares: list[float | None] = [1.0, 4.0, 9.0, 16.0]
    pipes = {
        "d2": ("derivative", {"buckets_path": "d1"}),  # declared first, depends on d1
        "d1": ("derivative", {"buckets_path": "sales"}),
    }
    buckets = run(pipes, squares)
    assert out(buckets, "d1") == ["-", 3.0, 5.0, 7.0]
    assert out(buckets, "d2") == ["-", "-", 2.0, 2.0]
    pipes = {
        "dcs": ("derivative", {"buckets_path": "cs"}),
        "cs": ("cumulative_sum", {"buckets_path": "sales"}),
    }
    buckets = run(pipes, [3.0, 1.0, 4.0])
    assert out(buckets, "cs") == [3.0, 4.0, 8.0]
    assert out(buckets, "dcs") == ["-", 1.0, 4.0]


def test_single_empty_and_keyed_bucket_lists() -> None:
    assert run({"d": ("derivative", {"buckets_path": "sales"})}, []) == []
    one = run(
        {"d": ("derivative", {"buckets_path": "sales"}), "c": ("cumulative_sum", {"buckets_path": "sales"})},
        [7.0],
    )
    assert out(one, "d") == ["-"] and out(one, "c") == [7.0]
    keyed = {"buckets": {b["key_as_string"]: b for b in histo([1.0, 3.0, 6.0])["buckets"]}}
    req = request(
        {"d": ("derivative", {"buckets_path": "sales"}), "c": ("cumulative_sum", {"buckets_path": "sales"})}
    )
    result = apply_pipelines(req, {"h": keyed})["h"]["buckets"]
    assert isinstance(result, dict)
    assert [b.get("d", {}).get("value") for b in result.values()] == [None, 2.0, 3.0]
    assert [b["c"]["value"] for b in result.values()] == [1.0, 4.0, 10.0]


def test_cumulative_sum_ignores_gaps_and_non_finite() -> None:
    buckets = run(
        {"c": ("cumulative_sum", {"buckets_path": "sales"})}, [1.0, None, 2.5, None, 4.0], [1, 0, 3, 5, 1]
    )
    assert out(buckets, "c") == [1.0, 1.0, 3.5, 3.5, 7.5]
    by_count = run({"c": ("cumulative_sum", {"buckets_path": "_count"})}, [1.0, None, 2.5], [2, 0, 3])
    assert out(by_count, "c") == [2.0, 2.0, 5.0]


# -- serial_diff, moving_avg, moving_fn ------------------------------------------------------------


def test_serial_diff() -> None:
    squares: list[float | None] = [1.0, 4.0, 9.0, 16.0, 25.0]
    assert out(run({"s": ("serial_diff", {"buckets_path": "sales"})}, squares), "s") == [
        "-",
        3.0,
        5.0,
        7.0,
        9.0,
    ]
    assert out(run({"s": ("serial_diff", {"buckets_path": "sales", "lag": 2})}, squares), "s") == [
        "-",
        "-",
        8.0,
        12.0,
        16.0,
    ]
    gaps: list[float | None] = [1.0, None, 9.0, 16.0]
    assert out(run({"s": ("serial_diff", {"buckets_path": "sales"})}, gaps), "s") == ["-", "-", "-", 7.0]
    zeros = run({"s": ("serial_diff", {"buckets_path": "sales", "gap_policy": "insert_zeros"})}, gaps)
    assert out(zeros, "s") == ["-", -1.0, 9.0, 7.0]


@pytest.mark.parametrize(
    ("model", "settings_", "expected"),
    [
        ("simple", None, ["-", 1.0, 1.5, 2.0, 3.0]),
        # Elasticsearch divides by 1 + sum(weights): (1*1) / 2, (1*1 + 2*2) / 4, ...
        ("linear", None, ["-", 0.5, 1.25, 2.0, 20.0 / 7]),
        ("ewma", {"alpha": 0.5}, ["-", 1.0, 1.5, 2.25, 3.25]),
        ("holt", {"alpha": 0.5, "beta": 0.5}, ["-", 1.0, 1.5, 2.375, 3.375]),
    ],
)
def test_moving_avg_models_use_the_window_before_each_bucket(
    model: str, settings_: JSON | None, expected: list[Any]
) -> None:
    body: JSON = {"buckets_path": "sales", "window": 3, "model": model}
    if settings_:
        body["settings"] = settings_
    got = out(run({"m": ("moving_avg", body)}, [1.0, 2.0, 3.0, 4.0, 5.0]), "m")
    assert nan_eq(got, expected)


def test_moving_avg_defaults_and_gaps() -> None:
    got = out(
        run({"m": ("moving_avg", {"buckets_path": "sales"})}, [1.0, None, 3.0, 5.0, 7.0, 9.0, 11.0]), "m"
    )
    assert got == ["-", "-", 1.0, 2.0, 3.0, 4.0, 5.0]  # window 5, simple; the gap is skipped entirely
    ewma_default = out(
        run({"m": ("moving_avg", {"buckets_path": "sales", "model": "ewma"})}, [1.0, 2.0, 4.0]), "m"
    )
    assert ewma_default == ["-", 1.0, pytest.approx(2 * 0.3 + 1 * 0.7)]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("MovingFunctions.unweightedAvg(values)", [None, 1.0, 1.5, 2.0, 3.0]),
        ("MovingFunctions.max(values)", [None, 1.0, 2.0, 3.0, 4.0]),
        ("MovingFunctions.min(values)", [None, 1.0, 1.0, 1.0, 2.0]),
        ("MovingFunctions.sum(values)", [0.0, 1.0, 3.0, 6.0, 9.0]),  # sum of nothing is 0
        ("MovingFunctions.linearWeightedAvg(values)", [None, 0.5, 1.25, 2.0, 20.0 / 7]),
        ("MovingFunctions.ewma(values, 0.5)", [None, 1.0, 1.5, 2.25, 3.25]),
        ("MovingFunctions.holt(values, 0.5, 0.5)", [None, 1.0, 1.5, 2.375, 3.375]),
        (
            "MovingFunctions.stdDev(values, MovingFunctions.unweightedAvg(values))",
            [None, 0.0, 0.5, math.sqrt(2 / 3), math.sqrt(2 / 3)],
        ),
        ("values.length", [0.0, 1.0, 2.0, 3.0, 3.0]),
        (
            "MovingFunctions.max(values) - MovingFunctions.min(values) + params.k",
            [None, 10.0, 11.0, 12.0, 12.0],
        ),
    ],
)
def test_moving_fn_functions(script: str, expected: list[Any]) -> None:
    body = {"buckets_path": "sales", "window": 3, "script": {"source": script, "params": {"k": 10}}}
    got = out(run({"m": ("moving_fn", body)}, [1.0, 2.0, 3.0, 4.0, 5.0]), "m")
    assert nan_eq(got, expected)


def test_moving_fn_shift_and_gaps() -> None:
    avg = "MovingFunctions.unweightedAvg(values)"
    values: list[float | None] = [1.0, 2.0, 3.0, 4.0]
    assert out(
        run({"m": ("moving_fn", {"buckets_path": "sales", "window": 2, "script": avg})}, values), "m"
    ) == [None, 1.0, 1.5, 2.5]
    shifted = run(
        {"m": ("moving_fn", {"buckets_path": "sales", "window": 2, "shift": 1, "script": avg})}, values
    )
    assert out(shifted, "m") == [1.0, 1.5, 2.5, 3.5]  # shift 1 includes the current bucket
    ahead = run(
        {"m": ("moving_fn", {"buckets_path": "sales", "window": 2, "shift": 3, "script": avg})}, values
    )
    assert out(ahead, "m") == [2.5, 3.5, 4.0, None]
    gaps = run(
        {"m": ("moving_fn", {"buckets_path": "sales", "window": 2, "script": avg})}, [1.0, None, 3.0, 4.0]
    )
    assert out(gaps, "m") == [None, "-", 1.0, 2.0]  # the gap gets nothing and is not in any window


def test_holt_winters_hand_computed() -> None:
    assert holt_winters([1.0, 2.0, 3.0, 4.0], 0.5, 0.5, 0.5, 2, False) == pytest.approx(367 / 96)
    script = "values.length >= 4 ? MovingFunctions.holtWinters(values, 0.5, 0.5, 0.5, 2, false) : Double.NaN"
    got = out(
        run(
            {"m": ("moving_fn", {"buckets_path": "sales", "window": 4, "script": script})},
            [1.0, 2.0, 3.0, 4.0, 9.0],
        ),
        "m",
    )
    assert got[:4] == [None] * 4 and got[4] == pytest.approx(367 / 96)
    with pytest.raises(BadRequest, match="requires at least"):
        run(
            {
                "m": (
                    "moving_fn",
                    {
                        "buckets_path": "sales",
                        "window": 4,
                        "script": "MovingFunctions.holtWinters(values, 0.5, 0.5, 0.5, 2, false)",
                    },
                )
            },
            [1.0, 2.0],
        )


# -- bucket_script, bucket_selector, bucket_sort -------------------------------------------------


def test_bucket_script_forms_gaps_and_results() -> None:
    values: list[float | None] = [10.0, None, 8.0]
    counts = [2, 0, 4]
    ratio = {"buckets_path": {"s": "sales", "c": "_count"}, "script": "params.s / params.c"}
    assert out(run({"r": ("bucket_script", ratio)}, values, counts), "r") == [5.0, "-", 2.0]
    zeros = run({"r": ("bucket_script", {**ratio, "gap_policy": "insert_zeros"})}, values, counts)
    assert out(zeros, "r") == [5.0, None, 2.0]  # 0/0 is NaN: rendered null, but present
    arr = {"buckets_path": ["sales", "_count"], "script": "params._value0 * params._value1"}
    assert out(run({"r": ("bucket_script", arr)}, values, counts), "r") == [20.0, "-", 32.0]
    single = {"buckets_path": "sales", "script": {"source": "params._value0 * params.k", "params": {"k": 3}}}
    assert out(run({"r": ("bucket_script", single)}, values, counts), "r") == [30.0, "-", 24.0]
    div0 = {"buckets_path": {"s": "sales", "c": "_count"}, "script": "params.s / (params.c - 2)"}
    assert out(run({"r": ("bucket_script", div0)}, values, counts), "r") == [None, "-", 4.0]
    maybe = {"buckets_path": {"s": "sales"}, "script": "params.s > 9 ? params.s : null"}
    assert out(run({"r": ("bucket_script", maybe)}, values, counts), "r") == [10.0, "-", "-"]
    with pytest.raises(BadRequest, match="must return a number"):
        run(
            {"r": ("bucket_script", {"buckets_path": {"s": "sales"}, "script": "params.s > 1"})},
            values,
            counts,
        )
    with pytest.raises(ParsingError, match=r"unknown variable \[sale\]"):
        run(
            {"r": ("bucket_script", {"buckets_path": {"s": "sales"}, "script": "params.sale * 2"})},
            values,
            counts,
        )


def _terms_with_metrics() -> tuple[JSON, JSON]:
    buckets = []
    for i, (key, n) in enumerate([("x", 4), ("y", 2)]):
        buckets.append(
            {
                "key": key,
                "doc_count": n,
                "st": {"count": n, "min": 1.0, "max": 9.0 + i, "avg": 5.0, "sum": 5.0 * n},
                "pct": {"values": {"50.0": 3.0 + i, "99.9": 7.0 + i}},
                "f": {"doc_count": n - 1, "m": {"value": 2.0 * (i + 1)}},
                "by_type": {
                    "buckets": [
                        {"key": "hat", "doc_count": 1, "m": {"value": 11.0 + i}},
                        {"key": "cap", "doc_count": 1, "m": {"value": 1.0}},
                    ]
                },
            }
        )
    req = {
        "t": {
            "terms": {"field": "k"},
            "aggs": {
                "st": {"stats": {"field": "v"}},
                "pct": {"percentiles": {"field": "v", "percents": [50, 99.9]}},
                "f": {"filter": {"term": {"a": 1}}, "aggs": {"m": {"max": {"field": "v"}}}},
                "by_type": {"terms": {"field": "type"}, "aggs": {"m": {"max": {"field": "v"}}}},
            },
        }
    }
    return req, {"t": {"buckets": buckets}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("st.avg", [5.0, 5.0]),
        ("st.max", [9.0, 10.0]),
        ("pct[99.9]", [7.0, 8.0]),
        ("pct.50", [3.0, 4.0]),
        ("f>m", [2.0, 4.0]),
        ("f._count", [3.0, 1.0]),
        ("f>_count", [3.0, 1.0]),
        ("by_type['hat']>m", [11.0, 12.0]),
        ("by_type._bucket_count", [2.0, 2.0]),
        ("_count", [4.0, 2.0]),
    ],
)
def test_buckets_path_forms(path: str, expected: list[float]) -> None:
    req, result = _terms_with_metrics()
    req["t"]["aggs"]["r"] = {"bucket_script": {"buckets_path": {"v": path}, "script": "params.v"}}
    buckets = apply_pipelines(req, result)["t"]["buckets"]
    assert out(buckets, "r") == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("st", r"but \[st\] contains multiple values. Please specify which to use"),
        ("_key", r"got: \[String\] at aggregation \[_key\]"),
        ("by_type>m", r"got: \[Object\[\]\] at aggregation \[by_type\]"),
        ("st.median", r"path not supported for \[st\]: \[median\]"),
        ("pct[75]", r"Percent requested \[75.0\] was not one of the computed percentiles"),
    ],
)
def test_unresolvable_values_are_400(path: str, message: str) -> None:
    req, result = _terms_with_metrics()
    req["t"]["aggs"]["r"] = {"bucket_script": {"buckets_path": {"v": path}, "script": "params.v"}}
    with pytest.raises(BadRequest, match=message):
        apply_pipelines(req, result)


def test_missing_sub_aggregation_in_one_bucket_skips_it() -> None:
    result = histo([1.0, 2.0, 3.0])
    del result["buckets"][1]["sales"]
    req = request({"r": ("bucket_script", {"buckets_path": {"s": "sales"}, "script": "params.s * 2"})})
    assert out(apply_pipelines(req, {"h": result})["h"]["buckets"], "r") == [2.0, "-", 6.0]


def test_bucket_selector() -> None:
    values: list[float | None] = [10.0, 5.0, None, 20.0]
    keep = run(
        {"sel": ("bucket_selector", {"buckets_path": {"s": "sales"}, "script": "params.s > 8"})}, values
    )
    assert [b["sales"]["value"] for b in keep] == [10.0, 20.0]
    ne = run(
        {"sel": ("bucket_selector", {"buckets_path": {"s": "sales"}, "script": "params.s != 5"})}, values
    )
    assert [b["sales"]["value"] for b in ne] == [10.0, None, 20.0]  # NaN != 5 is true, as in Java
    keyed = {"buckets": {b["key_as_string"]: b for b in histo([1.0, 9.0, 3.0])["buckets"]}}
    req = request({"sel": ("bucket_selector", {"buckets_path": {"s": "sales"}, "script": "params.s < 5"})})
    kept = apply_pipelines(req, {"h": keyed})["h"]["buckets"]
    assert list(kept) == [iso(T0), iso(T0 + 2 * DAY)]
    with pytest.raises(BadRequest, match="must return a boolean"):
        run({"sel": ("bucket_selector", {"buckets_path": {"s": "sales"}, "script": "params.s"})}, values)


def _terms(values: dict[str, float | None], counts: dict[str, int] | None = None) -> JSON:
    counts = counts or {k: (0 if v is None else 1) for k, v in values.items()}
    return {"buckets": [{"key": k, "doc_count": counts[k], "m": {"value": v}} for k, v in values.items()]}


def _sort(body: JSON, values: dict[str, float | None], counts: dict[str, int] | None = None) -> list[str]:
    req = {"t": {"terms": {"field": "k"}, "aggs": {"m": {"max": {"field": "v"}}, "s": {"bucket_sort": body}}}}
    return [b["key"] for b in apply_pipelines(req, {"t": _terms(values, counts)})["t"]["buckets"]]


def test_bucket_sort() -> None:
    values: dict[str, float | None] = {"a": 3.0, "b": None, "c": 5.0, "d": 3.0}
    assert _sort({"sort": [{"m": {"order": "desc"}}]}, values) == ["c", "a", "d"]  # stable; gap dropped
    assert _sort({"sort": [{"m": "desc"}], "from": 1, "size": 1}, values) == ["a"]
    assert _sort({"sort": ["m"]}, values) == ["a", "d", "c"]
    assert _sort({"sort": [{"_key": {"order": "desc"}}]}, values) == ["d", "c", "b", "a"]
    assert _sort({"sort": [{"m": "desc"}, {"_key": "desc"}]}, values) == ["c", "d", "a", "b"]  # b has a _key
    assert _sort({"sort": [{"_count": "asc"}, {"_key": "asc"}]}, values) == ["b", "a", "c", "d"]
    assert _sort({"sort": [{"m": "desc"}], "gap_policy": "insert_zeros"}, values) == ["c", "a", "d", "b"]
    assert _sort({"size": 2}, values) == ["a", "b"]
    assert _sort({"from": 4}, values) == []
    assert _sort({"from": 1, "size": 10}, values) == ["b", "c", "d"]
    assert _sort({"sort": [{"m": "desc"}]}, {}) == []
    # a bucket missing the first sort value sorts after those that have it, in either order
    two = {
        "buckets": [
            {"key": "x", "doc_count": 1, "n": {"value": 1.0}},
            {"key": "y", "doc_count": 1, "m": {"value": 1.0}, "n": {"value": 5.0}},
        ]
    }
    req = {
        "t": {
            "terms": {"field": "k"},
            "aggs": {
                "m": {"max": {"field": "v"}},
                "n": {"max": {"field": "w"}},
                "s": {"bucket_sort": {"sort": [{"m": "asc"}, {"n": "asc"}]}},
            },
        }
    }
    assert [b["key"] for b in apply_pipelines(req, {"t": two})["t"]["buckets"]] == ["y", "x"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, r"\[s\] is configured to perform nothing"),
        ({"size": 0}, r"\[size\] must be a positive integer: \[0\]"),
        ({"from": -1, "size": 1}, r"\[from\] must be a non-negative integer: \[-1\]"),
        ({"sort": [{"m": {"order": "up"}}]}, r"unknown sort order \[up\]"),
        ({"sort": [{"m": {"mode": "avg"}}]}, r"unsupported sort option \[mode\]"),
        ({"sort": [{"nope": "asc"}]}, r"No aggregation found for path \[nope\]"),
    ],
)
def test_bucket_sort_errors(body: JSON, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        _sort(body, {"a": 1.0})


# -- sibling pipelines ----------------------------------------------------------------------------


def sibling(type_: str, body: JSON, values: list[float | None], counts: list[int] | None = None) -> JSON:
    req = request({}, siblings={"p": {type_: {"buckets_path": "h>sales", **body}}})
    return dict(apply_pipelines(req, {"h": histo(values, counts)})["p"])


VALUES: list[float | None] = [10.0, None, 30.0, 20.0, 30.0]
KEYS = [iso(T0 + i * DAY) for i in range(5)]


def test_bucket_metric_siblings() -> None:
    assert sibling("avg_bucket", {}, VALUES) == {"value": 22.5}
    assert sibling("sum_bucket", {}, VALUES) == {"value": 90.0}
    assert sibling("min_bucket", {}, VALUES) == {"value": 10.0, "keys": [KEYS[0]]}
    assert sibling("max_bucket", {}, VALUES) == {"value": 30.0, "keys": [KEYS[2], KEYS[4]]}
    assert sibling("stats_bucket", {}, VALUES) == {
        "count": 4,
        "min": 10.0,
        "max": 30.0,
        "avg": 22.5,
        "sum": 90.0,
    }
    # insert_zeros counts the empty bucket as 0
    assert sibling("avg_bucket", {"gap_policy": "insert_zeros"}, VALUES) == {"value": 18.0}
    assert sibling("min_bucket", {"gap_policy": "insert_zeros"}, VALUES) == {"value": 0.0, "keys": [KEYS[1]]}
    assert sibling("sum_bucket", {"buckets_path": "h>_count"}, VALUES) == {"value": 4.0}


def test_extended_stats_bucket() -> None:
    got = sibling("extended_stats_bucket", {}, VALUES)
    var_pop = (100 + 900 + 400 + 900) / 4 - 22.5**2  # 68.75
    var_samp = (2300 - 90**2 / 4) / 3
    sd, sd_s = math.sqrt(var_pop), math.sqrt(var_samp)
    approx = pytest.approx
    assert got == {
        "count": 4,
        "min": 10.0,
        "max": 30.0,
        "avg": 22.5,
        "sum": 90.0,
        "sum_of_squares": 2300.0,
        "variance": approx(var_pop),
        "variance_population": approx(var_pop),
        "variance_sampling": approx(var_samp),
        "std_deviation": approx(sd),
        "std_deviation_population": approx(sd),
        "std_deviation_sampling": approx(sd_s),
        "std_deviation_bounds": {
            "upper": approx(22.5 + 2 * sd),
            "lower": approx(22.5 - 2 * sd),
            "upper_population": approx(22.5 + 2 * sd),
            "lower_population": approx(22.5 - 2 * sd),
            "upper_sampling": approx(22.5 + 2 * sd_s),
            "lower_sampling": approx(22.5 - 2 * sd_s),
        },
    }
    assert sibling("extended_stats_bucket", {"sigma": 1}, VALUES)["std_deviation_bounds"][
        "upper"
    ] == pytest.approx(22.5 + sd)
    one = sibling("extended_stats_bucket", {}, [4.0])
    assert one["variance"] == 0.0 and one["variance_sampling"] is None
    empty = sibling("extended_stats_bucket", {}, [])
    assert empty["count"] == 0 and empty["sum"] == 0.0 and empty["variance"] is None
    assert empty["std_deviation_bounds"]["upper"] is None


def test_percentiles_bucket_nearest_rank() -> None:
    # sorted [10, 20, 30, 30]: index = round_half_up(p/100 * 3)
    assert sibling("percentiles_bucket", {}, VALUES) == {
        "values": {
            "1.0": 10.0,
            "5.0": 10.0,
            "25.0": 20.0,
            "50.0": 30.0,
            "75.0": 30.0,
            "95.0": 30.0,
            "99.0": 30.0,
        }
    }
    six: list[float | None] = [6.0, 1.0, 5.0, 2.0, 4.0, 3.0]
    # n-1 = 5: p10 -> 0.5 -> index 1 (Java rounds half up; Python's round would give 0)
    got = sibling("percentiles_bucket", {"percents": [0, 10, 50, 99.9, 100]}, six)
    assert got == {"values": {"0.0": 1.0, "10.0": 2.0, "50.0": 4.0, "99.9": 6.0, "100.0": 6.0}}
    listed = sibling("percentiles_bucket", {"percents": [50], "keyed": False}, six)
    assert listed == {"values": [{"key": 50.0, "value": 4.0}]}
    assert sibling("percentiles_bucket", {"percents": [50]}, []) == {"values": {"50.0": None}}
    with pytest.raises(BadRequest, match=r"0\.0-100\.0"):
        sibling("percentiles_bucket", {"percents": [101]}, six)


def test_siblings_over_nothing() -> None:
    assert sibling("avg_bucket", {}, []) == {"value": None}
    assert sibling("sum_bucket", {}, [None, None]) == {"value": 0.0}
    assert sibling("min_bucket", {}, []) == {"value": None, "keys": []}
    assert sibling("max_bucket", {}, [None]) == {"value": None, "keys": []}
    assert sibling("stats_bucket", {}, []) == {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}


def test_sibling_keys_for_keyed_and_numeric_histograms() -> None:
    sub = {"s": {"sum": {"field": "x"}}}
    req = {
        "h": {"histogram": {"field": "v", "interval": 5, "keyed": True}, "aggs": sub},
        "g": {"histogram": {"field": "v", "interval": 1e7}, "aggs": sub},
        "mh": {"max_bucket": {"buckets_path": "h>s"}},
        "mg": {"max_bucket": {"buckets_path": "g>s"}},
    }
    result = {
        "h": {
            "buckets": {
                "0.0": {"key": 0.0, "doc_count": 1, "s": {"value": 2.0}},
                "5.0": {"key": 5.0, "doc_count": 1, "s": {"value": 9.0}},
            }
        },
        "g": {
            "buckets": [
                {"key": 1e7, "doc_count": 1, "s": {"value": 9.0}},
                {"key": 2.5, "doc_count": 1, "s": {"value": 1.0}},
            ]
        },
    }
    got = apply_pipelines(req, result)
    assert got["mh"] == {"value": 9.0, "keys": ["5.0"]}
    assert got["mg"] == {"value": 9.0, "keys": ["1.0E7"]}


def test_sibling_paths_through_single_bucket_and_bucket_keys() -> None:
    inner = histo([1.0, 5.0, 2.0])
    req = {
        "f": {
            "filter": {"term": {"a": 1}},
            "aggs": {"h": {"date_histogram": {"field": "t"}, "aggs": {"sales": {"sum": {"field": "x"}}}}},
        },
        "t": {
            "terms": {"field": "k"},
            "aggs": {"h": {"date_histogram": {"field": "t"}, "aggs": {"sales": {"sum": {"field": "x"}}}}},
        },
        "via_filter": {"max_bucket": {"buckets_path": "f>h>sales"}},
        "via_key": {"sum_bucket": {"buckets_path": "t['b']>h>sales"}},
    }
    result = {
        "f": {"doc_count": 3, "h": copy.deepcopy(inner)},
        "t": {
            "buckets": [
                {"key": "a", "doc_count": 1, "h": histo([100.0])},
                {"key": "b", "doc_count": 3, "h": copy.deepcopy(inner)},
            ]
        },
    }
    got = apply_pipelines(req, result)
    assert got["via_filter"] == {"value": 5.0, "keys": [iso(T0 + DAY)]}
    assert got["via_key"] == {"value": 8.0}


# -- nesting, ordering, meta ----------------------------------------------------------------------------


def test_nested_pipelines_run_bottom_up_in_dependency_order() -> None:
    req = {
        "by_type": {
            "terms": {"field": "type"},
            "aggs": {
                "sorted": {"bucket_sort": {"sort": [{"max_h": "desc"}]}},  # depends on max_h (declared later)
                "h": {
                    "date_histogram": {"field": "t", "fixed_interval": "1d"},
                    "aggs": {
                        "sales": {"sum": {"field": "x"}},
                        "cs": {"cumulative_sum": {"buckets_path": "sales"}},
                    },
                },
                "max_h": {"max_bucket": {"buckets_path": "h>sales"}},
                "last_cs": {"max_bucket": {"buckets_path": "h>cs"}},
            },
        },
        "avg_of_max": {"avg_bucket": {"buckets_path": "by_type>max_h"}},
        "total": {"sum_bucket": {"buckets_path": "by_type>last_cs"}},
    }
    type_a = {"key": "a", "doc_count": 3, "h": histo([1.0, 2.0, 3.0])}
    type_b = {"key": "b", "doc_count": 2, "h": histo([10.0, None, 4.0])}
    result = {"by_type": {"buckets": [type_a, type_b]}}
    got = apply_pipelines(req, result)
    buckets = got["by_type"]["buckets"]
    assert [b["key"] for b in buckets] == ["b", "a"]  # sorted by max_h desc: 10 > 3
    assert out(buckets[0]["h"]["buckets"], "cs") == [10.0, 10.0, 14.0]
    assert out(buckets[1]["h"]["buckets"], "cs") == [1.0, 3.0, 6.0]
    assert [b["max_h"]["value"] for b in buckets] == [10.0, 3.0]
    assert got["avg_of_max"] == {"value": 6.5}
    assert got["total"] == {"value": 20.0}


def test_meta_is_echoed_and_result_is_returned_in_place() -> None:
    req = request({}, siblings={"p": {"sum_bucket": {"buckets_path": "h>sales"}, "meta": {"color": "blue"}}})
    req["h"]["aggs"]["d"] = {"derivative": {"buckets_path": "sales"}, "meta": {"n": 1}}
    result = {"h": histo([1.0, 4.0])}
    assert apply_pipelines(req, result) is result
    assert result["p"] == {"meta": {"color": "blue"}, "value": 5.0}
    assert result["h"]["buckets"][1]["d"] == {"meta": {"n": 1}, "value": 3.0}


def test_decimal_and_numpy_numbers_from_the_engine() -> None:
    result = histo([1.0, 2.0, 4.0])
    result["buckets"][0]["sales"]["value"] = Decimal("1.5")  # DuckDB DECIMAL sums
    result["buckets"][1]["sales"]["value"] = np.float64(2.5)
    result["buckets"][2]["doc_count"] = np.int64(0)  # still an empty bucket
    req = request(
        {"d": ("derivative", {"buckets_path": "sales"}), "c": ("cumulative_sum", {"buckets_path": "_count"})}
    )
    buckets = apply_pipelines(req, {"h": result})["h"]["buckets"]
    assert out(buckets, "d") == ["-", 1.0, None]
    assert out(buckets, "c") == [1.0, 2.0, 2.0]


def test_deeply_nested_aggregations_are_a_400() -> None:
    aggs: JSON = {"leaf": {"sum": {"field": "x"}}}
    for _ in range(150):
        aggs = {"f": {"filter": {"match_all": {}}, "aggs": aggs}}
    with pytest.raises(BadRequest, match="nested too deeply"):
        plan_pipelines(aggs)
    with pytest.raises(BadRequest, match="nested too deeply"):
        split_pipelines(aggs)


def test_no_pipelines_is_a_no_op() -> None:
    result = {"h": histo([1.0])}
    before = copy.deepcopy(result)
    assert (
        apply_pipelines(
            {"h": {"date_histogram": {"field": "t"}, "aggs": {"sales": {"sum": {"field": "x"}}}}}, result
        )
        == before
    )
    assert apply_pipelines(None, result) == before


# -- validation --------------------------------------------------------------------------------------


HISTO_PARENTS = "a histogram, date_histogram or auto_date_histogram as parent"
VALIDATION = "action_request_validation_exception"
ILLEGAL = "illegal_argument_exception"
PARSING = "parsing_exception"


def in_histo(body: JSON | None = None, /, **pipelines: JSON) -> JSON:
    """A histogram ``h`` with the given pipelines (each ``{type: params}``) as sub-aggregations."""
    return {"h": {"histogram": {"field": "v", "interval": 1, **(body or {})}, "aggs": pipelines}}


def deriv(**params: Any) -> JSON:
    return {"derivative": {"buckets_path": "_count", **params}}


def mov_avg(**params: Any) -> JSON:
    return {"moving_avg": {"buckets_path": "_count", **params}}


def script_on(path: str, script: str = "1", type_: str = "bucket_script") -> JSON:
    return {type_: {"buckets_path": {"a": path}, "script": script}}


INVALID: list[tuple[JSON, str, str]] = [
    (
        {"d": {"derivative": {"buckets_path": "x"}}},
        VALIDATION,
        rf"Validation Failed: 1: derivative aggregation \[d\] must have {HISTO_PARENTS}"
        " but doesn't have a parent;",
    ),
    (
        {"t": {"terms": {"field": "k"}, "aggs": {"c": {"cumulative_sum": {"buckets_path": "_count"}}}}},
        VALIDATION,
        rf"cumulative_sum aggregation \[c\] must have {HISTO_PARENTS};",
    ),
    (
        in_histo({"min_doc_count": 1}, d=deriv()),
        VALIDATION,
        r"parent histogram of derivative aggregation \[d\] must have min_doc_count of 0",
    ),
    (
        {"r": script_on("x")},
        VALIDATION,
        r"bucket_script aggregation \[r\] must be declared inside of another",
    ),
    (
        {"f": {"filter": {"match_all": {}}, "aggs": {"s": script_on("_count", "true", "bucket_selector")}}},
        VALIDATION,
        r"bucket_selector aggregation \[s\] must be declared inside of a multi-bucket",
    ),
    (
        {"m": {"max_bucket": {"buckets_path": "nope>sales"}}},
        VALIDATION,
        r"buckets_path aggregation does not exist for aggregation \[m\]: nope>sales",
    ),
    (
        {"s": {"sum": {"field": "x"}}, "m": {"max_bucket": {"buckets_path": "s"}}},
        VALIDATION,
        r"Unable to find unqualified multi-bucket aggregation in buckets_path\. Path must include a "
        r"multi-bucket aggregation for aggregation \[m\] found :sum for buckets path: s;$",
    ),
    (
        {**in_histo(), "m": {"max_bucket": {"buckets_path": "h>nope"}}},
        ILLEGAL,
        r"No aggregation \[nope\] found for path \[h>nope\]",
    ),
    (in_histo(r=script_on("nope")), ILLEGAL, r"No aggregation found for path \[nope\]"),
    (
        in_histo(a=script_on("b"), b=script_on("a")),
        ILLEGAL,
        r"Cyclical dependency found with pipeline aggregator \[a\]",
    ),
    (in_histo(d=deriv(buckets_path="x[1")), ILLEGAL, r"Invalid path element \[x\[1\] in path \[x\[1\]"),
    (in_histo(d=deriv(gap_polcy="skip")), PARSING, r"\[derivative\] unknown field \[gap_polcy\]"),
    (
        in_histo(d=deriv(gap_policy="skipp")),
        PARSING,
        r"Invalid gap policy: \[skipp\], accepted values: \[skip, insert_zeros, keep_values\]",
    ),
    (
        in_histo(d={"derivative": {}}),
        PARSING,
        r"Missing required field \[buckets_path\] for derivative aggregation \[d\]",
    ),
    (
        in_histo(d=deriv(buckets_path=["a", "b"])),
        VALIDATION,
        r"buckets_path must contain a single entry for aggregation \[d\]",
    ),
    (
        in_histo(d={**deriv(), "aggs": {"x": {"sum": {"field": "x"}}}}),
        ILLEGAL,
        r"Aggregation \[d\] cannot define sub-aggregations",
    ),
    (
        in_histo(n={"normalize": {"buckets_path": "_count", "method": "rescale_0_1"}}),
        ILLEGAL,
        r"pipeline aggregation \[normalize\] is not supported",
    ),
    (
        in_histo(m={"moving_fn": {"buckets_path": "_count", "window": 0, "script": "1"}}),
        ILLEGAL,
        r"\[window\] must be a positive, non-zero integer",
    ),
    (
        in_histo(
            m={"moving_fn": {"buckets_path": "_count", "window": 2, "script": "MovingFunctions.avg(values)"}}
        ),
        "script_exception",
        r"unknown function \[MovingFunctions.avg\] at position 0",
    ),
    (in_histo(m=mov_avg(window=-1)), ILLEGAL, r"\[window\] must be a positive integer: \[m\]"),
    (
        in_histo(m=mov_avg(model="ewma", settings={"alpha": 2})),
        ILLEGAL,
        r"Parameter \[alpha\] must be between 0-1 inclusive",
    ),
    (
        in_histo(m=mov_avg(model="simple", settings={"alpha": 0.5})),
        ILLEGAL,
        r"Unrecognized parameter\(s\): \[alpha\]",
    ),
    (in_histo(m=mov_avg(model="magic")), ILLEGAL, r"Unknown model \[magic\]"),
    (in_histo(m=mov_avg(predict=3)), ILLEGAL, r"\[predict\] is not supported"),
    (
        in_histo(s={"serial_diff": {"buckets_path": "_count", "lag": 0}}),
        ILLEGAL,
        r"lag must be a positive, non-zero integer",
    ),
    (
        {**in_histo(), "e": {"extended_stats_bucket": {"buckets_path": "h>_count", "sigma": -1}}},
        ILLEGAL,
        r"\[sigma\] must be greater than or equal to 0",
    ),
    (
        {"x": {"terms": {"field": "a"}, "histogram": {"field": "b"}}},
        PARSING,
        r"Found two aggregation type definitions in \[x\]: \[terms\] and \[histogram\]",
    ),
    ({"x": {"aggs": {}}}, PARSING, r"Missing definition for aggregation \[x\]"),
]


@pytest.mark.parametrize(("aggs", "error_type", "message"), INVALID)
def test_invalid_requests_are_400(aggs: JSON, error_type: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        plan_pipelines(aggs)
    assert info.value.status == 400 and info.value.type == error_type


def test_sibling_through_a_sub_pipeline_output_is_valid() -> None:
    req = {
        **in_histo(c={"cumulative_sum": {"buckets_path": "_count"}}),
        "m": {"max_bucket": {"buckets_path": "h>c"}},
    }
    result = {"h": {"buckets": [{"key": 0.0, "doc_count": 2}, {"key": 1.0, "doc_count": 3}]}}
    assert apply_pipelines(req, result)["m"] == {"value": 5.0, "keys": ["1.0"]}


def test_split_pipelines() -> None:
    req = request(
        {"d": ("derivative", {"buckets_path": "sales"})},
        siblings={"m": {"max_bucket": {"buckets_path": "h>sales"}}, "plain": {"avg": {"field": "y"}}},
    )
    regular, pipelines = split_pipelines(req)
    assert regular == {
        "h": {
            "date_histogram": {"field": "t", "fixed_interval": "1d"},
            "aggs": {"sales": {"sum": {"field": "x"}}},
        },
        "plain": {"avg": {"field": "y"}},
    }
    assert pipelines == {
        "h": {"aggs": {"d": {"derivative": {"buckets_path": "sales"}}}},
        "m": {"max_bucket": {"buckets_path": "h>sales"}},
    }
    only = {
        "h": {
            "histogram": {"field": "v", "interval": 1},
            "aggs": {"c": {"cumulative_sum": {"buckets_path": "_count"}}},
        }
    }
    assert split_pipelines(only)[0] == {"h": {"histogram": {"field": "v", "interval": 1}}}
    assert {"derivative", "bucket_sort", "percentiles_bucket", "moving_avg"} <= PIPELINE_TYPES
    assert not {"terms", "sum", "date_histogram", "filter"} & PIPELINE_TYPES


def test_path_parsing() -> None:
    p = parse_path("a['k'] > b>c.avg")
    assert p.strings == ["a", "'k'", "b", "c", "avg"] and p.elements[0].bucket_key == "k"
    assert parse_path("pct[99.9]").strings == ["pct", "99.9"]
    assert parse_path("pct.99.9").strings == ["pct.99", "9"]  # ES splits at the last dot
    assert parse_path("t['a'].m").strings == ["t", "'a'", "m"]
    for bad in ("a>.b", "a>b.", "[x]", "a[]", ">"):
        with pytest.raises(BadRequest):
            parse_path(bad)


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (50.0, "50.0"),
        (99.9, "99.9"),
        (0.0, "0.0"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (0.0001, "1.0E-4"),
        (-2.5, "-2.5"),
    ],
)
def test_java_double_strings(x: float, text: str) -> None:
    assert java_double(x) == text


# -- properties: random series against index-based oracles ----------------------------------------------


def gap(v: float | None, n: int, policy: str) -> float:
    x = math.nan if v is None else v
    if policy == "insert_zeros":
        return 0.0 if n == 0 or not math.isfinite(x) else x
    if policy == "skip":
        return math.nan if n == 0 else x
    return x


SERIES = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(-50, 50).map(float)), st.integers(0, 3)),
    min_size=0,
    max_size=12,
)
POLICIES = st.sampled_from(["skip", "insert_zeros", "keep_values"])


def _split(series: list[tuple[float | None, int]]) -> tuple[list[float | None], list[int]]:
    return [v for v, _ in series], [n for _, n in series]


@settings(max_examples=150, deadline=None)
@given(SERIES, POLICIES)
def test_property_derivative_and_cumulative_sum(series: list[tuple[float | None, int]], policy: str) -> None:
    values, counts = _split(series)
    pipes = {
        "d": ("derivative", {"buckets_path": "sales", "gap_policy": policy}),
        "c": ("cumulative_sum", {"buckets_path": "sales"}),
    }
    buckets = run(pipes, values, counts)
    resolved = [gap(v, n, policy) for v, n in series]
    want_d: list[Any] = ["-"][: len(series)] + [
        None if math.isnan(resolved[i] - resolved[i - 1]) else resolved[i] - resolved[i - 1]
        for i in range(1, len(series))
    ]
    assert out(buckets, "d") == want_d
    running, want_c = 0.0, []
    for v, n in series:
        running += gap(v, n, "insert_zeros")
        want_c.append(running)
    assert out(buckets, "c") == want_c


@settings(max_examples=150, deadline=None)
@given(SERIES, POLICIES, st.integers(1, 4), st.integers(-2, 3))
def test_property_serial_diff_and_moving_fn(
    series: list[tuple[float | None, int]], policy: str, k: int, shift: int
) -> None:
    values, counts = _split(series)
    mov = {"buckets_path": "sales", "window": k, "shift": shift, "gap_policy": policy}
    pipes = {
        "s": ("serial_diff", {"buckets_path": "sales", "lag": k, "gap_policy": policy}),
        "m": ("moving_fn", {**mov, "script": "MovingFunctions.sum(values)"}),
    }
    buckets = run(pipes, values, counts)
    resolved = [gap(v, n, policy) for v, n in series]
    want_s: list[Any] = []
    for i, x in enumerate(resolved):
        lagged = resolved[i - k] if i >= k else math.nan
        want_s.append("-" if math.isnan(x) or math.isnan(lagged) else x - lagged)
    assert out(buckets, "s") == want_s
    present = [x for x in resolved if not math.isnan(x)]
    want_m: list[Any] = []
    j = 0
    for x in resolved:
        if math.isnan(x):
            want_m.append("-")
            continue
        lo, hi = max(0, min(len(present), j - k + shift)), max(0, min(len(present), j + shift))
        want_m.append(float(sum(present[lo:hi])))
        j += 1
    assert out(buckets, "m") == want_m


@settings(max_examples=150, deadline=None)
@given(SERIES, st.lists(st.integers(0, 100).map(float), min_size=1, max_size=4))
def test_property_sibling_metrics(series: list[tuple[float | None, int]], percents: list[float]) -> None:
    values, counts = _split(series)
    present = [v for v, n in series if v is not None and n > 0]
    s = sibling("stats_bucket", {}, values, counts)
    assert s["count"] == len(present) and s["sum"] == float(sum(present))
    assert s["min"] == (min(present) if present else None) and s["max"] == (max(present) if present else None)
    pct = sibling("percentiles_bucket", {"percents": percents}, values, counts)
    ordered = sorted(present)
    for p in percents:
        want = ordered[math.floor(p / 100 * (len(ordered) - 1) + 0.5)] if ordered else None
        assert pct["values"][java_double(p)] == want

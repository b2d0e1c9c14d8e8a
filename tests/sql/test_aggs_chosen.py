"""A parent ``terms``'s keys, bound into its children's statements once it has run."""

from __future__ import annotations

import pytest
from sqlglot import exp

from aggregata.sql.aggs.chosen import ChosenKeys, bind_chosen
from aggregata.sql.dialects import render
from aggregata.sql.params import Params
from aggregata.sql.query import col


def _tree(minimum: int = 1) -> exp.Select:
    marker = ChosenKeys(this=col("k"), statement=0, column="k0", count="doc_count", minimum=minimum)
    return exp.select(exp.Count(this=exp.Star())).from_("docs").where(marker)


def test_keys_become_bound_parameters() -> None:
    params = Params()
    params.bind("taken")
    rows = [[{"k0": "a", "doc_count": 5}, {"k0": "b", "doc_count": 2}, {"k0": None, "doc_count": 9}]]
    tree = _tree()
    bound = bind_chosen(tree, rows, params)
    assert render(bound, "duckdb") == 'SELECT COUNT(*) FROM docs WHERE "k" IN (SELECT UNNEST([$p1, $p2]))'
    assert render(bound, "clickhouse") == 'SELECT COUNT(*) FROM docs WHERE "k" IN ({p1:String}, {p2:String})'
    assert params.values == {"p0": "taken", "p1": "a", "p2": "b"}
    assert next(tree.find_all(ChosenKeys)) is not None  # the compiled tree is left as it was


def test_buckets_below_min_doc_count_are_left_out() -> None:
    params = Params()
    rows = [[{"k0": 1, "doc_count": 12}, {"k0": 2, "doc_count": 3}]]
    assert render(bind_chosen(_tree(minimum=10), rows, params), "duckdb").endswith('"k" IN ($p0)')
    assert params.values == {"p0": 1}


def test_no_selected_bucket_matches_nothing() -> None:
    bound = bind_chosen(_tree(), [[]], Params())
    assert render(bound, "duckdb") == "SELECT COUNT(*) FROM docs WHERE FALSE"


def test_a_tree_without_markers_is_returned_as_is() -> None:
    tree = exp.select("1")
    assert bind_chosen(tree, [], Params()) is tree


def test_an_unbound_marker_never_renders() -> None:
    with pytest.raises(ValueError):
        render(_tree(), "duckdb")

"""The search plan cache: a reused compiled search answers exactly as a fresh compile does.

The numbers themselves are checked against the oracle elsewhere; here each representative
request (the golden SQL cases) runs twice on a service that caches, and once on a fresh
service per run, and the three answers must agree, on each backend. Data and mappings change
between runs to show that only compiled plans are kept, never results, and that a mapping
change compiles afresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aggregata.ingest.service import IngestService
from aggregata.search.plans import MAX_KEY_BYTES, plan_key
from aggregata.search.service import SearchService
from aggregata.sql.dialects import RenderMemo, render
from aggregata.sql.params import Params
from tests.backends import BACKENDS
from tests.conftest import NOW
from tests.search.agg_fixtures import Loaded, loaded_fixture
from tests.sql.test_aggs_snapshots import CASES


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    yield from loaded_fixture(request, tmp_path_factory)


def _answer(service: SearchService, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    response = service.search(collection, body)
    response.pop("took")
    return response


def test_a_reused_plan_answers_as_a_fresh_compile(loaded: Loaded) -> None:
    cached = SearchService(loaded.engine, clock=lambda: NOW)
    for name, body in CASES.items():
        fresh = _answer(SearchService(loaded.engine, clock=lambda: NOW), "docs", body)
        assert _answer(cached, "docs", body) == fresh, name
        assert _answer(cached, "docs", body) == fresh, f"{name} (from the cache)"
    assert len(cached.plans) == len(CASES)


def test_plans_are_kept_but_results_are_not(loaded: Loaded) -> None:
    service = SearchService(loaded.engine, clock=lambda: NOW)
    terms = {"terms": {"field": "k", "size": 2}, "aggs": {"s": {"sum": {"field": "n"}}}}
    body = {"size": 0, "aggs": {"t": terms}}
    loaded.engine.create_collection("plans_growing", loaded.engine.get_collection("docs").mapping)
    ingest = IngestService(loaded.engine)
    ingest.ingest("plans_growing", [{"_id": "1", "k": "a", "n": 1}, {"_id": "2", "k": "b", "n": 2}])
    first = service.search("plans_growing", body)
    ingest.ingest("plans_growing", [{"_id": "3", "k": "c", "n": 5}, {"_id": "4", "k": "c", "n": 7}])
    again = service.search("plans_growing", body)
    assert len(service.plans) == 1
    assert first["hits"]["total"]["value"] == 2
    assert again["hits"]["total"]["value"] == 4
    buckets = again["aggregations"]["t"]["buckets"]
    assert [(b["key"], b["doc_count"], b["s"]["value"]) for b in buckets] == [("c", 2, 12), ("a", 1, 1)]
    assert again["aggregations"]["t"]["sum_other_doc_count"] == 1
    loaded.engine.drop_collection("plans_growing")


def test_a_new_field_compiles_afresh(loaded: Loaded) -> None:
    service = SearchService(loaded.engine, clock=lambda: NOW)
    loaded.engine.create_collection("plans_evolving", loaded.engine.get_collection("docs").mapping)
    ingest = IngestService(loaded.engine)
    ingest.ingest("plans_evolving", [{"_id": "1", "k": "a"}])
    body = {"size": 0, "query": {"term": {"colour": "red"}}}  # unmapped: matches nothing
    assert service.search("plans_evolving", body)["hits"]["total"]["value"] == 0
    ingest.ingest("plans_evolving", [{"_id": "2", "k": "b", "colour": "red"}])  # adds a column
    assert service.search("plans_evolving", body)["hits"]["total"]["value"] == 1
    loaded.engine.drop_collection("plans_evolving")


def test_a_bad_body_is_still_a_parse_error_for_a_missing_index(loaded: Loaded) -> None:
    from aggregata.errors import ParsingError

    with pytest.raises(ParsingError):
        SearchService(loaded.engine).search("no_such_index", {"size": "many"})


def test_requests_that_read_the_clock_are_not_kept() -> None:
    assert plan_key("docs", {"query": {"range": {"when": {"gte": "now-7d/d"}}}}) is None
    assert plan_key("docs", {"query": {"range": {"when": {"gte": "2026-01-01"}}}}) is not None
    assert plan_key("a", {"size": 0}) != plan_key("b", {"size": 0})
    assert plan_key("a", {"size": 0, "from": 1}) == plan_key("a", {"from": 1, "size": 0})
    ids = [f"id-{i}" for i in range(MAX_KEY_BYTES // 8)]
    assert plan_key("docs", {"query": {"ids": {"values": ids}}}) is None


def test_a_clock_request_is_compiled_each_time(loaded: Loaded) -> None:
    service = SearchService(loaded.engine, clock=lambda: NOW)
    body = {"size": 0, "query": {"range": {"when": {"lt": "now"}}}, "profile": True}
    assert [service.search("docs", body)["profile"]["plan"] for _ in range(2)] == ["compiled"] * 2
    assert len(service.plans) == 0


def test_profile_says_whether_the_plan_was_reused(loaded: Loaded) -> None:
    service = SearchService(loaded.engine, clock=lambda: NOW)
    body = {"size": 0, "aggs": {"s": {"stats": {"field": "x"}}}, "profile": True}
    assert [service.search("docs", body)["profile"]["plan"] for _ in range(2)] == ["compiled", "cached"]


def test_render_memo_renders_a_tree_once_while_it_lives() -> None:
    import gc

    from sqlglot import exp

    memo = RenderMemo("duckdb")
    tree = exp.select("a").from_("t")
    text = memo(tree)
    assert text == render(tree, "duckdb")
    assert memo(tree) is text  # the remembered text, not a new rendering
    twin = exp.select("a").from_("t")
    assert memo(twin) == text and memo(twin) is not text  # another tree, rendered on its own
    assert len(memo) == 2
    del tree, twin
    gc.collect()
    assert len(memo) == 0  # gone with their trees


def test_params_copy_leaves_the_original() -> None:
    params = Params()
    params.bind("x")
    copy = params.copy()
    copy.bind("y")
    assert params.values == {"p0": "x"}
    assert copy.values == {"p0": "x", "p1": "y"}

"""The demo generators: deterministic, exact counts, well-formed fields, a real funnel shape."""

from __future__ import annotations

import inspect
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest

from aggregata.demo.generate import (
    CATALOGUE_SIZE,
    DEFAULT_END,
    generate_events,
    generate_products,
    write_ndjson,
)

FUNNEL = ["pageview", "signup", "add_to_cart", "purchase"]
CATEGORIES = {
    "Electronics",
    "Books",
    "Home & Kitchen",
    "Sports",
    "Toys",
    "Clothing",
    "Beauty",
    "Garden",
    "Automotive",
    "Grocery",
}


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(generate_events(20_000, seed=7))


@pytest.fixture(scope="module")
def products() -> list[dict[str, Any]]:
    return list(generate_products(1_000, seed=7))


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


# -- events -------------------------------------------------------------------------------


def test_events_are_deterministic_and_seed_dependent(events: list[dict[str, Any]]) -> None:
    assert list(generate_events(20_000, seed=7)) == events
    assert list(islice(generate_events(20_000, seed=8), 50)) != events[:50]


@pytest.mark.parametrize(
    ("n", "users"), [(0, None), (1, None), (19, None), (1_234, None), (5, 100), (500, 1)]
)
def test_events_exact_count(n: int, users: int | None) -> None:
    got = list(generate_events(n, n_users=users, seed=1))
    assert len(got) == n
    if users is not None:
        assert len({e["distinct_id"] for e in got}) == min(n, users)


def test_default_user_count(events: list[dict[str, Any]]) -> None:
    assert len({e["distinct_id"] for e in events}) == 20_000 // 20


def test_event_shape(events: list[dict[str, Any]]) -> None:
    for e in events:
        assert set(e) == {"uuid", "event", "distinct_id", "timestamp", "properties"}
        assert e["event"] in {*FUNNEL, "search", "logout"}
        assert e["distinct_id"].startswith("u-")
        props = e["properties"]
        assert isinstance(props["country"], str) and len(props["country"]) == 2
        assert props["browser"] in {"Chrome", "Safari", "Firefox", "Edge"}
        assert props["device"] in {"desktop", "mobile", "tablet"}
        assert props["session_id"].startswith("s-")
        assert props.get("utm_source", "x") is not None
        if e["event"] == "pageview":
            assert props["path"].startswith("/")
        if e["event"] == "search":
            assert isinstance(props["query"], str) and props["query"]
        if e["event"] in {"add_to_cart", "purchase"}:
            assert isinstance(props["price"], float) and props["price"] > 0
            assert props["product_id"].startswith("p-")
        if e["event"] == "purchase":
            assert isinstance(props["quantity"], int) and props["quantity"] >= 1
            assert props["revenue"] == round(props["price"] * props["quantity"], 2)


def test_user_attributes_are_stable(events: list[dict[str, Any]]) -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    for e in events:
        p = e["properties"]
        attrs = (p["country"], p["browser"], p["device"], p.get("utm_source"))
        assert seen.setdefault(e["distinct_id"], attrs) == attrs
    assert any(attrs[3] is None for attrs in seen.values())
    assert any(attrs[3] is not None for attrs in seen.values())


def test_sessions_belong_to_one_user(events: list[dict[str, Any]]) -> None:
    owner: dict[str, str] = {}
    for e in events:
        assert owner.setdefault(e["properties"]["session_id"], e["distinct_id"]) == e["distinct_id"]
    per_user: dict[str, set[str]] = defaultdict(set)
    for session, user in owner.items():
        per_user[user].add(session)
    assert sum(len(s) > 1 for s in per_user.values()) > len(per_user) / 2  # returning users exist


def test_timestamps_in_window_with_millis() -> None:
    end = datetime(2025, 3, 1, 12, tzinfo=UTC)
    got = list(generate_events(5_000, seed=3, days=10, end=end))
    for e in got:
        ts = e["timestamp"]
        assert len(ts) == 24 and ts.endswith("Z") and ts[19] == "."
        assert end - timedelta(days=10) <= parse(ts) < end
    # The formatter agrees with the standard library on every stamp.
    for e in got[:500]:
        dt = parse(e["timestamp"])
        assert dt.isoformat(timespec="milliseconds").replace("+00:00", "Z") == e["timestamp"]


def test_default_window(events: list[dict[str, Any]]) -> None:
    stamps = [parse(e["timestamp"]) for e in events]
    assert DEFAULT_END - timedelta(days=90) <= min(stamps)
    assert max(stamps) < DEFAULT_END
    assert max(stamps) - min(stamps) > timedelta(days=60)  # spread over the window, not bunched


def test_uuids_unique_and_version_4(events: list[dict[str, Any]]) -> None:
    ids = [e["uuid"] for e in events]
    assert len(set(ids)) == len(ids)
    for text in ids[:2_000]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_funnel_unique_users_strictly_decreasing(events: list[dict[str, Any]]) -> None:
    users: dict[str, set[str]] = defaultdict(set)
    for e in events:
        users[e["event"]].add(e["distinct_id"])
    counts = [len(users[step]) for step in FUNNEL]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4, counts
    assert counts[3] > 0


def test_ordered_funnel_and_signup_once(events: list[dict[str, Any]]) -> None:
    timeline: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in events:
        timeline[e["distinct_id"]].append((e["timestamp"], e["event"]))
    reached = [0, 0, 0, 0]
    for items in timeline.values():
        assert sum(name == "signup" for _, name in items) <= 1
        step = 0
        for _, name in sorted(items):
            if step < 4 and name == FUNNEL[step]:
                step += 1
        for i in range(step):
            reached[i] += 1
    assert reached[0] > reached[1] > reached[2] > reached[3] > 0, reached


def test_events_refer_to_the_catalogue(events: list[dict[str, Any]]) -> None:
    prices = {p["_id"]: p["price"] for p in generate_products(CATALOGUE_SIZE, seed=7)}
    carts = [e["properties"] for e in events if e["event"] in {"add_to_cart", "purchase"}]
    assert carts
    for props in carts:
        assert prices[props["product_id"]] == props["price"]


def test_events_stream_lazily() -> None:
    stream = generate_events(10**12)
    assert inspect.isgenerator(stream)
    first = list(islice(stream, 1_000))  # would never return if events were built up front
    assert len(first) == 1_000
    stream.close()


def test_events_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        next(generate_events(-1))
    with pytest.raises(ValueError):
        next(generate_events(10, days=0))
    with pytest.raises(ValueError):
        next(generate_events(10, n_users=0))


# -- products -----------------------------------------------------------------------------


def test_products_deterministic(products: list[dict[str, Any]]) -> None:
    assert list(generate_products(1_000, seed=7)) == products
    assert list(generate_products(10, seed=8)) != products[:10]
    assert inspect.isgenerator(generate_products(5))


def test_product_fields(products: list[dict[str, Any]]) -> None:
    assert [p["_id"] for p in products] == [f"p-{i:06d}" for i in range(1, 1_001)]
    window_start = DEFAULT_END - timedelta(days=2 * 366)
    for p in products:
        assert p["category"] in CATEGORIES
        assert isinstance(p["name"], str) and len(p["name"].split()) >= 3
        words = p["description"].lower()
        assert p["category"].lower() in words and p["name"].split()[1].lower() in words
        assert isinstance(p["brand"], str) and p["brand"]
        assert isinstance(p["price"], float) and p["price"] > 0 and round(p["price"], 2) == p["price"]
        assert isinstance(p["rating"], float) and 1.0 <= p["rating"] <= 5.0
        assert round(p["rating"], 1) == p["rating"]
        assert isinstance(p["in_stock"], bool)
        assert isinstance(p["stock_quantity"], int)
        assert (p["stock_quantity"] > 0) if p["in_stock"] else (p["stock_quantity"] == 0)
        created = p["created_date"]
        assert created.endswith("Z") and window_start <= parse(created) < DEFAULT_END
        assert 1 <= len(p["tags"]) <= 4 and len(set(p["tags"])) == len(p["tags"])
        loc = p["store_location"]
        assert -90 <= loc["lat"] <= 90 and -180 <= loc["lon"] <= 180


def test_product_distributions_are_skewed(products: list[dict[str, Any]]) -> None:
    by_category: dict[str, int] = defaultdict(int)
    for p in products:
        by_category[p["category"]] += 1
    assert set(by_category) == CATEGORIES
    assert by_category["Electronics"] > 3 * by_category["Grocery"]
    assert 20 <= len({p["brand"] for p in products}) <= 40
    ratings = sorted(p["rating"] for p in products)
    assert 3.6 <= ratings[len(ratings) // 2] <= 4.5


# -- files --------------------------------------------------------------------------------


def test_write_ndjson_round_trips(tmp_path: Path) -> None:
    docs = list(generate_events(300, seed=5))
    path = tmp_path / "events.ndjson"
    assert write_ndjson(iter(docs), path) == 300
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == docs
    assert write_ndjson(generate_products(0), tmp_path / "empty.ndjson") == 0
    assert (tmp_path / "empty.ndjson").read_bytes() == b""


def test_naive_end_means_utc() -> None:
    naive = list(generate_events(200, seed=2, end=datetime(2025, 1, 1)))
    aware = list(generate_events(200, seed=2, end=datetime(2025, 1, 1, tzinfo=UTC)))
    assert naive == aware

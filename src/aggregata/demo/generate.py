"""Seeded synthetic demo data: a product catalogue and a PostHog-shaped event stream.

Everything is a pure function of its arguments (each generator owns a ``random.Random``; the
clock is never read), so tests can rebuild the exact data they loaded as an oracle, and
benchmarks are comparable run to run. Events stream user by user with O(1) memory so the
same code produces the 10M-event benchmark set.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

T = TypeVar("T")

DEFAULT_END: Final = datetime(2026, 11, 1, tzinfo=UTC)
"""Fixed end of the demo time window: a clock-free default keeps generated data reproducible."""

CATALOGUE_SIZE: Final = 2_000
"""Products that events refer to (``p-000001`` ...): the default catalogue size of ``seed_demo``."""

_DAY_MS: Final = 86_400_000


class _Weighted(Generic[T]):
    """Skewed choice by one ``random()`` and a bisect: faster than ``rng.choices`` per call."""

    __slots__ = ("_cum", "_items")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self._items = [item for item, _ in pairs]
        total = sum(w for _, w in pairs)
        acc, cum = 0.0, []
        for _, w in pairs:
            acc += w / total
            cum.append(acc)
        cum[-1] = math.inf  # float rounding can never index past the end
        self._cum = cum

    def pick(self, rng: random.Random) -> T:
        return self._items[bisect(self._cum, rng.random())]


def _zipf(n: int) -> list[tuple[int, float]]:
    """Index weights 1, 1/2, 1/3 ...: the first entries of a list are the popular ones."""
    return [(i, 1.0 / (i + 1)) for i in range(n)]


# -- product catalogue vocabulary ---------------------------------------------------------

# category: (weight, nouns, brands (most popular first), median price, price spread, use, tags)
_CATEGORIES: Final[dict[str, tuple[float, list[str], list[str], float, float, str, list[str]]]] = {
    "Electronics": (22, ["Headphones", "Speaker", "Monitor", "Keyboard", "Smartwatch", "Charger",
                         "Camera", "Router", "Tablet"], ["Voltra", "Nexon", "Auralis", "Pixelon"],
                    120.0, 0.8, "work, gaming and travel", ["wireless", "bluetooth", "usb-c", "4k"]),
    "Books": (14, ["Novel", "Cookbook", "Guide", "Atlas", "Anthology", "Handbook"],
              ["Northwind Press", "Lumen Books", "Inkwell"], 18.0, 0.4,
              "quiet evenings and long journeys", ["paperback", "hardcover", "bestseller-list"]),
    "Home & Kitchen": (16, ["Blender", "Kettle", "Skillet", "Knife Set", "Coffee Maker", "Toaster"],
                       ["Hearthly", "Casa Nova", "Kitchora"], 45.0, 0.7, "everyday cooking",
                       ["dishwasher-safe", "stainless-steel", "kitchen"]),
    "Sports": (10, ["Yoga Mat", "Dumbbell", "Running Shoes", "Water Bottle", "Tennis Racket", "Bike Helmet"],
               ["Stridex", "Peakform", "Aeroline"], 40.0, 0.7, "training and outdoor sports",
               ["fitness", "outdoor", "running"]),
    "Toys": (8, ["Puzzle", "Building Set", "Plush Bear", "Race Car", "Board Game", "Kite"],
             ["Funvale", "Brickly", "Toyhaus"], 25.0, 0.6, "kids and family game nights",
             ["kids", "family", "educational"]),
    "Clothing": (12, ["Jacket", "T-Shirt", "Hoodie", "Jeans", "Sneakers", "Scarf"],
                 ["Threadline", "Urbana", "Nordwear"], 35.0, 0.6, "city life and weekends",
                 ["cotton", "unisex", "winter"]),
    "Beauty": (7, ["Serum", "Moisturizer", "Shampoo", "Lipstick", "Perfume"],
               ["Glowa", "Purelle", "Velour"], 22.0, 0.6, "a daily skincare routine",
               ["vegan", "cruelty-free", "skincare"]),
    "Garden": (5, ["Garden Hose", "Planter", "Pruner", "Lawn Mower", "Seed Kit"],
               ["Greenfield", "Rootwell", "Bloomery"], 35.0, 0.9, "balconies and backyards",
               ["outdoor", "garden", "plants"]),
    "Automotive": (3, ["Dash Cam", "Car Charger", "Floor Mat", "Tire Inflator", "Wiper Blade"],
                   ["Motorix", "Drivewell", "Roadmate"], 40.0, 0.8, "daily commutes and road trips",
                   ["car", "12v", "all-weather"]),
    "Grocery": (3, ["Coffee Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Honey"],
                ["Harvest & Co", "Terra Verde", "Daily Pantry"], 9.0, 0.5, "the pantry and breakfast table",
                ["organic", "fair-trade", "gluten-free"]),
}  # fmt: skip
_CATEGORY = _Weighted([(name, spec[0]) for name, spec in _CATEGORIES.items()])
_BRAND_INDEX = _Weighted(_zipf(4))
_ADJECTIVES: Final = ["Classic", "Premium", "Compact", "Deluxe", "Essential", "Everyday", "Signature",
                      "Lightweight", "Vintage", "Modern", "Ultra", "Eco", "Smart", "Pro"]  # fmt: skip
_QUALITIES: Final = ["durable", "stylish", "reliable", "versatile", "well-made", "affordable", "elegant"]
_CLOSERS: Final = ["Built to last and easy to care for.", "A customer favourite for its value.",
                   "Backed by a two-year warranty.", "Makes a great gift.", "Ships in recyclable packaging.",
                   "Rated highly by reviewers for comfort and quality."]  # fmt: skip
_GENERIC_TAGS: Final = ["new", "sale", "bestseller", "eco-friendly", "limited-edition", "gift", "popular"]
_CITIES = _Weighted([
    ((40.7128, -74.0060), 8), ((34.0522, -118.2437), 5), ((41.8781, -87.6298), 4), ((37.7749, -122.4194), 4),
    ((51.5074, -0.1278), 6), ((48.8566, 2.3522), 4), ((52.5200, 13.4050), 4), ((52.3676, 4.9041), 2),
    ((40.4168, -3.7038), 2), ((35.6762, 139.6503), 3), ((-33.8688, 151.2093), 2), ((43.6532, -79.3832), 3),
    ((19.0760, 72.8777), 3), ((-23.5505, -46.6333), 3), ((1.3521, 103.8198), 2),
])  # fmt: skip


def generate_products(n: int, *, seed: int = 42) -> Iterator[dict[str, Any]]:
    """Product catalogue documents.

    Fields cover every mapping type the engine infers (keyword, text, float, int, bool, date,
    keyword arrays, geo points); skewed categories, brands and ratings make terms and
    histogram aggregations look like real data rather than flat noise.
    """
    rng = random.Random(seed)
    end_s = int(DEFAULT_END.timestamp())
    two_years = 2 * 365 * 86_400
    for i in range(1, n + 1):
        category = _CATEGORY.pick(rng)
        _, nouns, brands, median, spread, use, cat_tags = _CATEGORIES[category]
        brand = brands[min(_BRAND_INDEX.pick(rng), len(brands) - 1)]
        noun = rng.choice(nouns)
        model = f"{rng.choice('XSMAV')}{rng.randint(1, 9)}{rng.choice(('00', '50', '0'))}"
        name = f"{rng.choice(_ADJECTIVES)} {noun} {model}"
        description = (
            f"The {brand} {name} is a {rng.choice(_QUALITIES)} {noun.lower()} for {use}, "
            f"from our {category} range. {rng.choice(_CLOSERS)}"
        )
        price = round(max(0.99, median * math.exp(rng.gauss(0.0, spread))), 2)
        rating = round(
            min(5.0, max(1.0, rng.gauss(4.1, 0.55) if rng.random() < 0.9 else rng.uniform(1, 5))), 1
        )
        in_stock = rng.random() < 0.85
        created = datetime.fromtimestamp(end_s - rng.randrange(two_years), UTC)
        tags = rng.sample(cat_tags + _GENERIC_TAGS, rng.randint(1, 4))
        lat0, lon0 = _CITIES.pick(rng)
        km, angle = 20.0 * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
        lat = lat0 + km * math.sin(angle) / 111.0
        lon = lon0 + km * math.cos(angle) / (111.0 * math.cos(math.radians(lat0)))
        yield {
            "_id": f"p-{i:06d}",
            "name": name,
            "description": description,
            "category": category,
            "brand": brand,
            "price": price,
            "rating": rating,
            "in_stock": in_stock,
            "stock_quantity": 1 + int(rng.expovariate(1 / 60)) if in_stock else 0,
            "created_date": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tags": tags,
            "store_location": {"lat": round(lat, 5), "lon": round(lon, 5)},
        }


# -- event stream vocabulary --------------------------------------------------------------

_COUNTRY = _Weighted([("US", 35), ("GB", 9), ("DE", 8), ("FR", 6), ("IN", 8), ("BR", 5), ("CA", 5),
                      ("JP", 4), ("AU", 4), ("ES", 3), ("NL", 3), ("SE", 2), ("IT", 3), ("MX", 3),
                      ("PL", 2)])  # fmt: skip
_BROWSER = _Weighted([("Chrome", 60), ("Safari", 22), ("Firefox", 10), ("Edge", 8)])
_DEVICE = _Weighted([("desktop", 55), ("mobile", 38), ("tablet", 7)])
_UTM = _Weighted[str | None](
    [("google", 30), ("direct", 20), ("facebook", 10), ("newsletter", 8), ("twitter", 5), (None, 27)]
)
_PATH = _Weighted([("/", 30), ("/product", 35), ("/pricing", 8), ("/features", 7), ("/blog", 8),
                   ("/docs", 4), ("/about", 3), ("/account", 5)])  # fmt: skip
_QUERIES: Final = sorted(
    {n.lower() for spec in _CATEGORIES.values() for n in spec[1]}
    | {"gift ideas", "sale", "wireless", "organic"}
)
_QUANTITY = _Weighted([(1, 70), (2, 20), (3, 6), (4, 2), (5, 2)])

# Journey rates, tuned so that at the default ~20 events per user about 53% of visitors sign
# up, 27% add to cart and 15% purchase (unique users): the funnel narrows at every step.
_P_PRE_WINDOW: Final = 0.15  # already signed up before the window: no "signup" event
_P_SIGNUP_USER: Final = 0.85
_P_SHOPPER: Final = 0.6
_P_CART_SESSION: Final = 0.45
_P_PURCHASE_AFTER_CART: Final = 0.55
_P_CHURN: Final = 0.4
_EVENTS_PER_SESSION: Final = 5.0


@cache
def _clock_table() -> tuple[list[str], list[str]]:
    """``"HH:MM:"`` per minute of a day and ``"SS.mmmZ"`` per millisecond of a minute (~4 MB).

    Looking the time of day up in two tables is ~5x faster than ``isoformat`` per event.
    """
    minutes = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
    millis = [f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(60_000)]
    return minutes, millis


def _ts_formatter() -> Callable[[int], str]:
    """Epoch-ms → ``YYYY-MM-DDTHH:MM:SS.mmmZ`` by table lookups; dates are cached per day."""
    days: dict[int, str] = {}
    minutes, millis = _clock_table()

    def fmt(ms: int) -> str:
        day, rem = divmod(ms, _DAY_MS)
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
        return prefix + minutes[rem // 60_000] + millis[rem % 60_000]

    return fmt


_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _uuid4(bits: int) -> str:
    """Canonical version-4 UUID text from 128 random bits, without building a ``uuid.UUID``.

    Overwrites the version nibble and the variant's top two bits in the text directly;
    ~3x cheaper than ``str(uuid.UUID(int=bits, version=4))``.
    """
    h = bits.to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def generate_events(
    n_events: int,
    *,
    seed: int = 42,
    n_users: int | None = None,
    days: int = 90,
    end: datetime = DEFAULT_END,
) -> Iterator[dict[str, Any]]:
    """PostHog-shaped events: {"uuid","event","distinct_id","timestamp","properties"}.

    Users are generated one at a time, each with an event budget drawn from a skewed
    distribution that is rebalanced against what is left, so the stream yields exactly
    ``n_events`` and every user (while events remain) appears, in O(1) memory. Within a
    user, sessions run pageviews → signup → add_to_cart → purchase with drop-off at each
    step, so funnels, retention and breakdowns have a real shape to find. Products and
    prices refer to ``generate_products(CATALOGUE_SIZE, seed=seed)``.
    """
    if n_events < 0 or days < 1:
        raise ValueError("n_events must be >= 0 and days >= 1")
    users = n_users if n_users is not None else max(1, n_events // 20)
    if users < 1:
        raise ValueError("n_users must be >= 1")
    rng = random.Random(seed)
    rand, expo, bits = rng.random, rng.expovariate, rng.getrandbits
    fmt = _ts_formatter()
    catalogue = [(p["_id"], p["price"]) for p in generate_products(CATALOGUE_SIZE, seed=seed)]
    if end.tzinfo is None:  # a naive end means UTC, never the machine's local zone
        end = end.replace(tzinfo=UTC)
    end_ms = int(end.timestamp() * 1000)
    start_ms = end_ms - days * _DAY_MS
    span = end_ms - start_ms
    remaining = n_events
    session_no = 0
    for user_no in range(1, users + 1):
        if remaining <= 0:
            return
        left = users - user_no + 1
        pre_window = rand() < _P_PRE_WINDOW
        first_seen = start_ms + int(span * (rand() * 0.1 if pre_window else rand() ** 0.8 * 0.97))
        if left == 1:
            budget = remaining
        elif remaining <= left:
            budget = 1
        else:
            # Late arrivals have less time, so fewer events; the exponential makes power users.
            weight = expo(1.0) * (0.3 + (end_ms - first_seen) / span) / 0.85
            budget = min(max(1, round(remaining / left * weight)), remaining - left + 1)
        remaining -= budget

        distinct_id = f"u-{user_no}"
        user_props: dict[str, Any] = {
            "country": _COUNTRY.pick(rng),
            "browser": _BROWSER.pick(rng),
            "device": _DEVICE.pick(rng),
        }
        utm = _UTM.pick(rng)
        if utm is not None:
            user_props["utm_source"] = utm
        signed_up = pre_window
        will_signup = not pre_window and rand() < _P_SIGNUP_USER
        shopper = rand() < _P_SHOPPER
        # Churners stop early; the rest stay until `end`. Sessions are front-loaded in that life.
        life = (end_ms - first_seen) * (rand() ** 2 if rand() < _P_CHURN else 1.0)
        n_sessions = max(1, round(budget / _EVENTS_PER_SESSION))

        for j in range(n_sessions):
            if j == n_sessions - 1:
                size = budget
            else:
                share = budget / (n_sessions - j) * (0.4 + 1.2 * rand())
                size = min(max(1, round(share)), budget - (n_sessions - j - 1))
            budget -= size
            steps = _journey(rng, catalogue, j == 0, will_signup and not signed_up, signed_up, shopper)
            if len(steps) >= size:
                del steps[size - 1 :]
            steps[0:0] = [("pageview", {"path": _path(rng, catalogue)}) for _ in range(size - 1 - len(steps))]
            if not signed_up and any(name == "signup" for name, _ in steps):
                signed_up = True

            session_no += 1
            props = {**user_props, "session_id": f"s-{session_no}"}
            t = first_seen + int(life * ((j + rand()) / n_sessions) ** 1.6) if j else first_seen
            # Gaps of seconds to minutes; a session that would run past `end` starts earlier.
            offsets, off = [0], 0
            for _ in steps:
                off += 1_000 + min(int(expo(1 / 40_000)), 900_000)
                offsets.append(off)
            if off >= span:  # only for absurd session sizes: squeeze into the window
                offsets = [o * (span - 1) // off for o in offsets]
                off = offsets[-1]
            base = max(start_ms, min(t, end_ms - 1 - off))
            steps.insert(0, ("pageview", {"path": _path(rng, catalogue)}))  # the landing page
            for (name, extra), offset in zip(steps, offsets, strict=True):
                event_props = props.copy()
                if extra:
                    event_props.update(extra)
                yield {
                    "uuid": _uuid4(bits(128)),
                    "event": name,
                    "distinct_id": distinct_id,
                    "timestamp": fmt(base + offset),
                    "properties": event_props,
                }


_Step = tuple[str, dict[str, Any] | None]


def _path(rng: random.Random, catalogue: list[tuple[str, float]]) -> str:
    """A page path; product pages are Zipf-ish so a few products are the popular ones."""
    path = _PATH.pick(rng)
    if path == "/product":
        return f"/product/{catalogue[int(len(catalogue) * rng.random() ** 2.5)][0]}"
    return path


def _journey(
    rng: random.Random,
    catalogue: list[tuple[str, float]],
    first: bool,
    may_signup: bool,
    signed_up: bool,
    shopper: bool,
) -> list[_Step]:
    """The goal-directed part of one session after its landing page, in funnel order.

    The caller trims it to the session's event budget (later funnel steps go first, so
    trimming only ever loses the deeper steps) and pads it with browsing pageviews.
    """
    rand = rng.random
    steps: list[_Step] = []
    if rand() < 0.15:
        steps.append(("search", {"query": _QUERIES[int(rand() * len(_QUERIES))]}))
    if may_signup and rand() < (0.7 if first else 0.5):
        signed_up = True
        steps += [("pageview", {"path": "/signup"}), ("signup", None)]
    if signed_up and shopper and rand() < _P_CART_SESSION:
        pid, price = catalogue[int(len(catalogue) * rand() ** 2.5)]
        steps += [
            ("pageview", {"path": f"/product/{pid}"}),
            ("add_to_cart", {"product_id": pid, "price": price}),
        ]
        if rand() < _P_PURCHASE_AFTER_CART:
            qty = _QUANTITY.pick(rng)
            purchase = {"product_id": pid, "price": price, "quantity": qty, "revenue": round(price * qty, 2)}
            steps += [("pageview", {"path": "/checkout"}), ("purchase", purchase)]
    if signed_up and rand() < 0.2:
        steps.append(("logout", None))
    return steps


def write_ndjson(docs: Iterable[dict[str, Any]], path: Path) -> int:
    """Write one JSON document per line, streaming, and return how many were written.

    orjson (a project dependency) is several times faster than ``json`` at the 10M-event scale; the
    fallback keeps the generator usable in a bare interpreter.
    """
    dumps: Callable[[Any], bytes]
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        import json

        def dumps(doc: Any) -> bytes:
            return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    else:
        dumps = partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)
    count = 0
    with Path(path).open("wb", buffering=1 << 20) as fh:
        for doc in docs:
            fh.write(dumps(doc))
            count += 1
    return count


__all__ = ["CATALOGUE_SIZE", "DEFAULT_END", "generate_events", "generate_products", "write_ndjson"]

"""Brute-force funnels in plain Python: the definition, written as directly as possible.

For every actor, every entry event is an attempt; each attempt is followed step by step by
scanning the actor's events (no merges, no sentinels, no shortcuts), so this module shares
nothing with the SQL but the definition in docs/insights.md:

* ordered: from an entry at ``s`` (a step-0 event in ``[start, end)``), step k is the
  earliest step-k event strictly later than step k-1, reached if at most ``s + window``;
* strict: step k must be the actor's very next event time after step k-1 (an event at
  that time matching step k), still within ``s + window``;
* unordered: an entry is any step event in range; the steps reached are those with an
  event in ``[s, s + window]``; their first times, sorted, are the attempt's path;
* exclusion ``(x, a, b)``: an attempt that reached step a is disqualified when an ``x``
  event comes strictly after its step-a time and strictly before its step-b time (or at
  most ``s + window`` when it never reached step b);
* an actor's level is the best level over attempts not disqualified; the chosen attempt is
  the latest entry with that level; its breakdown value is the greatest non-missing value
  among the entry events at that time.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]  # {"actor", "event", "ts" (epoch µs), "properties"}
Matcher = Callable[[Event], bool]


@dataclass
class Funnel:
    steps: list[Matcher]
    window_us: int
    start_us: int
    end_us: int
    order: str = "ordered"
    exclusions: list[tuple[Matcher, int, int]] = field(default_factory=list)
    breakdown: Callable[[Event], Any] | None = None
    bucket: Callable[[int], Hashable] | None = None


@dataclass
class Attempt:
    start: int
    path: list[int]  # times of the steps reached, in order of completion
    disqualified: bool
    value: Any = None


@dataclass
class ActorResult:
    level: int
    path: list[int]
    value: Any
    buckets: dict[Hashable, int]


def _attempt(events: list[Event], f: Funnel, entry: Event) -> Attempt:
    s = entry["ts"]
    limit = s + f.window_us
    path = [s]
    if f.order == "unordered":
        firsts = []
        for match in f.steps:
            times = [e["ts"] for e in events if match(e) and s <= e["ts"] <= limit]
            if times:
                firsts.append(min(times))
        return Attempt(s, sorted(firsts), False)
    for k in range(1, len(f.steps)):
        later = [e for e in events if e["ts"] > path[-1]]
        if f.order == "strict":
            if not later:
                break
            nxt = min(e["ts"] for e in later)
            if nxt > limit or not any(f.steps[k](e) for e in later if e["ts"] == nxt):
                break
            path.append(nxt)
        else:
            times = [e["ts"] for e in later if f.steps[k](e)]
            if not times or min(times) > limit:
                break
            path.append(min(times))
    disqualified = False
    for match, a, b in f.exclusions:
        if len(path) <= a:
            continue
        xs = [e["ts"] for e in events if match(e) and e["ts"] > path[a]]
        if not xs:
            continue
        first = min(xs)
        if (first < path[b]) if len(path) > b else (first <= limit):
            disqualified = True
    return Attempt(s, path, disqualified)


def actor_results(events: list[Event], f: Funnel) -> dict[str, ActorResult]:
    """The level, chosen path, breakdown value and per-bucket level of every counted actor."""
    by_actor: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_actor[e["actor"]].append(e)
    out: dict[str, ActorResult] = {}
    for actor, evs in by_actor.items():
        evs.sort(key=lambda e: e["ts"])
        entry_steps = f.steps if f.order == "unordered" else f.steps[:1]
        entries = [e for e in evs if f.start_us <= e["ts"] < f.end_us and any(m(e) for m in entry_steps)]
        attempts = [_attempt(evs, f, e) for e in entries]
        for entry, att in zip(entries, attempts, strict=True):
            att.value = f.breakdown(entry) if f.breakdown else None
        valid = [a for a in attempts if not a.disqualified and a.path]
        if not valid:
            continue
        level = max(len(a.path) for a in valid)
        latest = max(a.start for a in valid if len(a.path) == level)
        chosen = [a for a in valid if len(a.path) == level and a.start == latest]
        values = [a.value for a in chosen if a.value is not None]
        buckets: dict[Hashable, int] = {}
        if f.bucket is not None:
            for a in valid:
                key = f.bucket(a.start)
                buckets[key] = max(buckets.get(key, 0), len(a.path))
        out[actor] = ActorResult(level, chosen[0].path, max(values) if values else None, buckets)
    return out


def summary(results: list[ActorResult], n_steps: int) -> list[dict[str, Any]]:
    """Per step: actors, conversion, drop-off, mean and median seconds from the previous step."""
    counts = [sum(1 for r in results if r.level > k) for k in range(n_steps)]
    steps = []
    for k in range(n_steps):
        gaps = [(r.path[k] - r.path[k - 1]) / 1e6 for r in results if k > 0 and r.level > k]
        steps.append(
            {
                "count": counts[k],
                "conversion_from_previous": counts[k] / (counts[k - 1] if k else counts[0])
                if (counts[k - 1] if k else counts[0])
                else 0.0,
                "conversion_from_first": counts[k] / counts[0] if counts[0] else 0.0,
                "drop_off": counts[k - 1] - counts[k] if k else 0,
                "avg_time_from_previous_s": statistics.fmean(gaps) if gaps else None,
                "median_time_from_previous_s": statistics.median(gaps) if gaps else None,
            }
        )
    return steps


def conversion_times(results: list[ActorResult], from_step: int, to_step: int) -> list[float]:
    """Seconds from ``from_step`` to ``to_step`` of every actor whose chosen path reached it."""
    return [(r.path[to_step] - r.path[from_step]) / 1e6 for r in results if r.level > to_step]


# -- helpers for tests: events as the oracle sees them, steps as predicates -------------------


def epoch_us(text: str) -> int:
    """``2026-10-01T12:00:00.123Z`` (or with an offset) → microseconds since the epoch."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def oracle_events(raw: list[dict[str, Any]]) -> list[Event]:
    return [
        {
            "actor": str(e["distinct_id"]),
            "event": e["event"],
            "ts": epoch_us(e["timestamp"]),
            "properties": e.get("properties") or {},
        }
        for e in raw
    ]


def matcher(spec: dict[str, Any]) -> Matcher:
    """A step or exclusion of a request (``event`` + ``eq``/``neq``/``in`` filters) as a predicate."""
    name = spec.get("event")
    filters = spec.get("filters") or []

    def match(e: Event) -> bool:
        if name is not None and e["event"] != name:
            return False
        for f in filters:
            value = e["properties"].get(f["property"])
            op = f.get("operator", "eq")
            if op == "eq" and value != f["value"]:
                return False
            if op == "neq" and value == f["value"]:
                return False
            if op == "in" and value not in f["value"]:
                return False
        return True

    return match

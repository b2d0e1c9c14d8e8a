"""An independent evaluator of Elasticsearch aggregations over raw JSON documents.

It shares no code with the compiler or the response shaper: buckets are computed by
walking the documents in plain Python (dates with ``zoneinfo``, percentiles with numpy),
the way a reader of the Elasticsearch reference would compute them by hand. Each bucket
aggregation yields ``(key, documents)`` pairs and sub-aggregations recurse on the subset.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from tests.search.oracle import matches

Doc = dict[str, Any]
DEFAULT_PERCENTS = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0]


# -- values -------------------------------------------------------------------------------


def raw_values(doc: Doc, path: str) -> list[Any]:
    """A document's values for a dotted path: objects walked, arrays flattened, nulls dropped."""
    if path in doc:
        node = doc[path]
    else:
        node = doc
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return []
            node = node[part]
    if node is None:
        return []
    items = node if isinstance(node, list) else [node]
    return [v for v in items if v is not None]


def is_date(v: Any) -> bool:
    return isinstance(v, str) and len(v) >= 10 and v[4] == "-" and v[7] == "-" and v[:4].isdigit()


def millis(v: Any) -> int:
    if isinstance(v, (int, float)):
        return int(v)
    d = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return round(d.timestamp() * 1000)


def numbers(doc: Doc, field: str, missing: Any = None) -> list[float]:
    """Numeric values of a field (dates as epoch ms, booleans as 0/1), ``missing`` if none."""
    values = raw_values(doc, field)
    if not values and missing is not None:
        values = [missing]
    return [float(millis(v)) if is_date(v) else float(v) for v in values]


def distinct(doc: Doc, field: str, missing: Any = None) -> list[Any]:
    values = raw_values(doc, field)
    if not values and missing is not None:
        values = [missing]
    return list(dict.fromkeys(values))


# -- metrics ------------------------------------------------------------------------------


def java(v: float) -> str:
    text = repr(float(v))
    return text if "." in text or "e" in text else text + ".0"


def fmt_date(ms: int | float, zone: Any = UTC) -> str:
    if ms > 253402300799999:  # beyond 9999-12-31: printed as the number
        return str(int(ms))
    d = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))).astimezone(zone)
    off = d.utcoffset() or timedelta(0)
    if not off:
        suffix = "Z"
    else:
        minutes = int(off.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}" + suffix


def metric(kind: str, spec: dict[str, Any], docs: list[Doc], date_field: bool) -> dict[str, Any]:
    field, missing = spec["field"], spec.get("missing")
    if kind == "value_count":
        return {
            "value": sum(
                len(raw_values(d, field) or ([missing] if missing is not None else [])) for d in docs
            )
        }
    if kind == "cardinality":
        return {"value": len({v for d in docs for v in distinct(d, field, missing)})}
    vals = [v for d in docs for v in numbers(d, field, missing)]

    def with_string(out: dict[str, Any], key: str = "value") -> dict[str, Any]:
        if date_field and out[key] is not None:
            out[f"{key}_as_string"] = fmt_date(out[key])
        return out

    if kind == "avg":
        return with_string({"value": sum(vals) / len(vals) if vals else None})
    if kind == "sum":
        return with_string({"value": float(sum(vals))}) if vals else {"value": 0.0}
    if kind == "min":
        return with_string({"value": min(vals) if vals else None})
    if kind == "max":
        return with_string({"value": max(vals) if vals else None})
    if kind in ("stats", "extended_stats"):
        n = len(vals)
        out: dict[str, Any] = {
            "count": n,
            "min": min(vals) if n else None,
            "max": max(vals) if n else None,
            "avg": sum(vals) / n if n else None,
            "sum": float(sum(vals)),
        }
        if kind == "extended_stats":
            sigma = spec.get("sigma", 2.0)
            if not n:
                out.update(
                    dict.fromkeys(
                        [
                            "sum_of_squares",
                            "variance",
                            "variance_population",
                            "variance_sampling",
                            "std_deviation",
                            "std_deviation_population",
                            "std_deviation_sampling",
                        ]
                    )
                )
                out["std_deviation_bounds"] = dict.fromkeys(
                    [
                        "upper",
                        "lower",
                        "upper_population",
                        "lower_population",
                        "upper_sampling",
                        "lower_sampling",
                    ]
                )
            else:
                mean = out["avg"]
                pop = sum((v - mean) ** 2 for v in vals) / n
                samp: Any = sum((v - mean) ** 2 for v in vals) / (n - 1) if n > 1 else "NaN"
                sd_s: Any = math.sqrt(samp) if n > 1 else "NaN"
                out.update(
                    sum_of_squares=sum(v * v for v in vals),
                    variance=pop,
                    variance_population=pop,
                    variance_sampling=samp,
                    std_deviation=math.sqrt(pop),
                    std_deviation_population=math.sqrt(pop),
                    std_deviation_sampling=sd_s,
                )
                sd = math.sqrt(pop)
                out["std_deviation_bounds"] = {
                    "upper": mean + sigma * sd,
                    "lower": mean - sigma * sd,
                    "upper_population": mean + sigma * sd,
                    "lower_population": mean - sigma * sd,
                    "upper_sampling": mean + sigma * sd_s if n > 1 else "NaN",
                    "lower_sampling": mean - sigma * sd_s if n > 1 else "NaN",
                }
        if date_field and n:
            for key in ("min", "max", "avg", "sum"):
                out[f"{key}_as_string"] = fmt_date(out[key])
        return out
    if kind == "percentiles":
        percents = spec.get("percents", DEFAULT_PERCENTS)
        got = [float(np.percentile(vals, p)) if vals else None for p in percents]
        return _percent_values(percents, got, spec.get("keyed", True), date_field)
    if kind == "percentile_ranks":
        ranks = [100.0 * sum(1 for v in vals if v <= x) / len(vals) if vals else None for x in spec["values"]]
        return _percent_values(spec["values"], ranks, spec.get("keyed", True), False)
    if kind == "median_absolute_deviation":
        if not vals:
            return {"value": None}
        med = float(np.percentile(vals, 50))
        return {"value": float(np.percentile([abs(v - med) for v in vals], 50))}
    raise AssertionError(kind)


def _percent_values(keys: list[float], values: list[Any], keyed: bool, date_field: bool) -> dict[str, Any]:
    if keyed:
        out: dict[str, Any] = {}
        for k, v in zip(keys, values, strict=True):
            out[java(k)] = v
            if date_field and v is not None:
                out[java(k) + "_as_string"] = fmt_date(v)
        return {"values": out}
    return {"values": [{"key": float(k), "value": v} for k, v in zip(keys, values, strict=True)]}


# -- buckets ------------------------------------------------------------------------------

METRICS = {
    "avg",
    "sum",
    "min",
    "max",
    "value_count",
    "cardinality",
    "stats",
    "extended_stats",
    "percentiles",
    "percentile_ranks",
    "median_absolute_deviation",
}


class Oracle:
    """Evaluates an ``aggs`` body; ``types`` maps field names to their mapping type."""

    def __init__(self, all_docs: list[Doc], types: dict[str, str], now: datetime) -> None:
        self.all_docs = all_docs
        self.types = types
        self.now = now

    def run(self, aggs: dict[str, Any], docs: list[Doc], parents: list[Doc] | None = None) -> dict[str, Any]:
        out = {}
        for name, body in aggs.items():
            (kind,) = [k for k in body if k not in ("aggs", "aggregations", "meta")]
            spec = body[kind]
            subs = body.get("aggs", body.get("aggregations", {}))
            result = self.one(kind, spec, subs, docs, parents)
            if "meta" in body:
                result = {"meta": body["meta"], **result}
            out[name] = result
        return out

    def inside(
        self, subs: dict[str, Any], docs: list[Doc], parents: list[Doc] | None = None
    ) -> dict[str, Any]:
        return {"doc_count": len(docs), **self.run(subs, docs, parents)}

    def one(
        self, kind: str, spec: Any, subs: dict[str, Any], docs: list[Doc], parents: list[Doc] | None
    ) -> dict[str, Any]:
        if kind in METRICS:
            return metric(kind, spec, docs, self.types.get(spec["field"]) == "date")
        if kind == "terms":
            return self.terms(spec, subs, docs)
        if kind == "histogram":
            return self.histogram(spec, subs, docs)
        if kind == "date_histogram":
            return self.date_histogram(spec, subs, docs)
        if kind in ("range", "date_range"):
            return self.ranges(kind, spec, subs, docs)
        if kind == "filter":
            return self.inside(subs, [d for d in docs if matches(spec, d)])
        if kind == "filters":
            return self.filters(spec, subs, docs)
        if kind == "missing":
            return self.inside(subs, [d for d in docs if not raw_values(d, spec["field"])])
        if kind == "global":
            return self.inside(subs, self.all_docs)
        if kind == "nested":
            path = spec["path"]
            # A nested object as its own document: {"comments": {...}} (fields keep their paths).
            objects = [{path: obj, "__parent": d} for d in docs for obj in raw_values(d, path)]
            return self.inside(subs, objects)
        if kind == "reverse_nested":
            seen: dict[int, Doc] = {}
            for obj in docs:
                seen.setdefault(id(obj["__parent"]), obj["__parent"])
            return self.inside(subs, list(seen.values()))
        if kind == "composite":
            return self.composite(spec, subs, docs)
        if kind == "top_hits":
            return self.top_hits(spec, docs)
        raise AssertionError(kind)

    def terms(self, spec: dict[str, Any], subs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        field, ftype = spec["field"], self.types.get(spec["field"])
        include, exclude = spec.get("include"), spec.get("exclude")
        groups: dict[Any, list[Doc]] = {}
        for d in docs:
            for v in distinct(d, field, spec.get("missing")):
                if include is not None and not _allowed(v, include):
                    continue
                if exclude is not None and _allowed(v, exclude):
                    continue
                key = millis(v) if ftype == "date" else v
                groups.setdefault(key, []).append(d)
        if spec.get("min_doc_count", 1) == 0:
            # Every term of the index, whatever the query or parent bucket (nested objects too).
            everything = list(self.all_docs) + [
                {path: obj} for d in self.all_docs for path in ("comments",) for obj in raw_values(d, path)
            ]
            for d in everything:
                for v in distinct(d, field):
                    if include is not None and not _allowed(v, include):
                        continue
                    if exclude is not None and _allowed(v, exclude):
                        continue
                    groups.setdefault(millis(v) if ftype == "date" else v, [])
        counts = {k: len(v) for k, v in groups.items()}
        order = spec.get("order", [{"_count": "desc"}, {"_key": "asc"}])
        order = order if isinstance(order, list) else [order]
        min_count = spec.get("min_doc_count", 1)
        keys = [k for k in groups if counts[k] >= min_count]

        def sort_value(k: Any, path: str) -> Any:
            if path == "_count":
                return counts[k]
            if path == "_key":
                return k
            name, _, stat = path.partition(".")
            result = self.run({name: subs[name]}, groups[k])[name]
            return result[stat] if stat else result["value"]

        keys.sort(key=lambda k: (k is None, k))
        if not any("_key" in o for o in order):
            pass  # ties broken by key ascending: the stable sort below keeps the key order
        for criterion in reversed(order):
            ((path, direction),) = criterion.items()
            present = [k for k in keys if sort_value(k, path) is not None]
            absent = [k for k in keys if sort_value(k, path) is None]
            present.sort(key=lambda k, p=path: sort_value(k, p), reverse=direction == "desc")
            keys = present + absent
        size = spec.get("size", 10)
        chosen = keys[:size]
        buckets = []
        for k in chosen:
            bucket: dict[str, Any] = {"key": k}
            if ftype == "boolean":
                bucket = {"key": 1 if k else 0, "key_as_string": "true" if k else "false"}
            elif ftype == "date":
                bucket["key_as_string"] = fmt_date(k)
            elif ftype == "double":
                bucket["key"] = float(k)
            buckets.append({**bucket, **self.inside(subs, groups[k])})
        other = sum(counts.values()) - sum(counts[k] for k in chosen)
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}

    def histogram(self, spec: dict[str, Any], subs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        interval, offset = float(spec["interval"]), float(spec.get("offset", 0))
        hard = spec.get("hard_bounds") or {}
        groups: dict[int, list[Doc]] = {}
        for d in docs:
            for idx in dict.fromkeys(
                math.floor((v - offset) / interval) for v in numbers(d, spec["field"], spec.get("missing"))
            ):
                below = "min" in hard and idx * interval < hard["min"]
                if below or ("max" in hard and idx * interval > hard["max"]):
                    continue
                groups.setdefault(idx, []).append(d)
        indexes = sorted(groups)
        if spec.get("min_doc_count", 0) == 0:
            ext = spec.get("extended_bounds") or {}
            ends = (
                indexes[:1]
                + indexes[-1:]
                + [math.floor((ext[k] - offset) / interval) for k in ("min", "max") if k in ext]
            )
            if ends:
                lo, hi = min(ends), max(ends)
                if "min" in hard:
                    lo = max(lo, math.ceil(hard["min"] / interval))
                if "max" in hard:
                    hi = min(hi, math.floor(hard["max"] / interval))
                indexes = list(range(lo, hi + 1))
        else:
            indexes = [i for i in indexes if len(groups[i]) >= spec["min_doc_count"]]
        buckets = [{"key": i * interval + offset, **self.inside(subs, groups.get(i, []))} for i in indexes]
        if spec.get("keyed"):
            return {"buckets": {java(b["key"]): b for b in buckets}}
        return {"buckets": buckets}

    def date_histogram(self, spec: dict[str, Any], subs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        zone = _zone(spec.get("time_zone"))
        offset = _duration(spec.get("offset", "0ms"))
        key_of = _date_rounding(spec, zone, offset)
        groups: dict[int, list[Doc]] = {}
        for d in docs:
            values = raw_values(d, spec["field"]) or ([spec["missing"]] if "missing" in spec else [])
            for key in dict.fromkeys(key_of(millis(v)) for v in values):
                groups.setdefault(key, []).append(d)
        keys = sorted(groups)
        if spec.get("min_doc_count", 0) == 0 and keys:
            # Every bucket between the first and last: walk the instants in small steps (from
            # the first key, which need not be on a quarter hour: local mean time).
            step = 15 * 60_000
            seen = set(keys)
            t = keys[0]
            while t <= keys[-1]:
                seen.add(key_of(t))
                t += step
            keys = sorted(k for k in seen if keys[0] <= k <= keys[-1])
        elif spec.get("min_doc_count", 0) > 1:
            keys = [k for k in keys if len(groups[k]) >= spec["min_doc_count"]]
        buckets = []
        for k in keys:
            text = _format(k, spec.get("format"), zone)
            buckets.append({"key_as_string": text, "key": k, **self.inside(subs, groups.get(k, []))})
        if spec.get("keyed"):
            return {"buckets": {b["key_as_string"]: b for b in buckets}}
        return {"buckets": buckets}

    def ranges(
        self, kind: str, spec: dict[str, Any], subs: dict[str, Any], docs: list[Doc]
    ) -> dict[str, Any]:
        zone = _zone(spec.get("time_zone"))
        ranges = []
        for r in spec["ranges"]:
            lo, hi = r.get("from"), r.get("to")
            if kind == "date_range":
                lo = None if lo is None else _date_bound(lo, self.now, zone)
                hi = None if hi is None else _date_bound(hi, self.now, zone)
            ranges.append(
                (r.get("key"), None if lo is None else float(lo), None if hi is None else float(hi))
            )
        ranges.sort(key=lambda r: (-math.inf if r[1] is None else r[1], math.inf if r[2] is None else r[2]))
        buckets = []
        for key, lo, hi in ranges:
            inside = [
                d
                for d in docs
                if any(
                    (lo is None or v >= lo) and (hi is None or v < hi)
                    for v in numbers(d, spec["field"], spec.get("missing"))
                )
            ]
            bucket: dict[str, Any] = {}
            names = []
            for label, value in (("from", lo), ("to", hi)):
                if value is None:
                    names.append("*")
                    continue
                bucket[label] = value
                if kind == "date_range":
                    bucket[f"{label}_as_string"] = fmt_date(value, zone)
                    names.append(bucket[f"{label}_as_string"])
                else:
                    names.append(java(value))
            bucket = {
                "key": key if key is not None else f"{names[0]}-{names[1]}",
                **bucket,
                **self.inside(subs, inside),
            }
            buckets.append(bucket)
        if spec.get("keyed"):
            return {"buckets": {b["key"]: {k: v for k, v in b.items() if k != "key"} for b in buckets}}
        return {"buckets": buckets}

    def filters(self, spec: dict[str, Any], subs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        filters = spec["filters"]
        other_key = spec.get("other_bucket_key")
        other = spec.get("other_bucket", other_key is not None)
        if isinstance(filters, dict):
            named = sorted(filters.items())
            out = {k: self.inside(subs, [d for d in docs if matches(q, d)]) for k, q in named}
            if other:
                out[other_key or "_other_"] = self.inside(
                    subs, [d for d in docs if not any(matches(q, d) for _, q in named)]
                )
            if spec.get("keyed", True):
                return {"buckets": out}
            return {"buckets": [{"key": k, **v} for k, v in out.items()]}
        items = [self.inside(subs, [d for d in docs if matches(q, d)]) for q in filters]
        if other:
            items.append(self.inside(subs, [d for d in docs if not any(matches(q, d) for q in filters)]))
        return {"buckets": items}

    def composite(self, spec: dict[str, Any], subs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        sources = [next(iter(s.items())) for s in spec["sources"]]
        groups: dict[tuple[Any, ...], list[Doc]] = {}
        for d in docs:
            combos: list[tuple[Any, ...]] = [()]
            for _, body in sources:
                ((kind, src),) = body.items()
                values: list[Any] = list(dict.fromkeys(self._source_values(kind, src, d)))
                if not values:
                    if not src.get("missing_bucket"):
                        combos = []
                        break
                    values = [None]
                combos = [(*c, v) for c in combos for v in values]
            for combo in combos:
                groups.setdefault(combo, []).append(d)
        directions = [body[next(iter(body))].get("order", "asc") for _, body in sources]

        def sort_key(combo: tuple[Any, ...]) -> tuple[Any, ...]:
            parts = []
            for v, direction in zip(combo, directions, strict=True):
                # missing first ascending, last descending
                parts.append(_Rev((v is not None, v)) if direction == "desc" else (v is not None, v))
            return tuple(parts)

        keys = sorted(groups, key=sort_key)
        if "after" in spec:
            after = tuple(spec["after"][name] for name, _ in sources)
            keys = [k for k in keys if sort_key(k) > sort_key(after)]
        keys = keys[: spec.get("size", 10)]
        buckets = [
            {"key": {n: v for (n, _), v in zip(sources, k, strict=True)}, **self.inside(subs, groups[k])}
            for k in keys
        ]
        out: dict[str, Any] = {}
        if buckets:
            out["after_key"] = buckets[-1]["key"]
        out["buckets"] = buckets
        return out

    def _source_values(self, kind: str, src: dict[str, Any], doc: Doc) -> list[Any]:
        if kind == "terms":
            vals = raw_values(doc, src["field"])
            return [millis(v) if self.types.get(src["field"]) == "date" else v for v in vals]
        if kind == "histogram":
            i = float(src["interval"])
            return [math.floor(v / i) * i for v in numbers(doc, src["field"])]
        key_of = _date_rounding(src, _zone(src.get("time_zone")), _duration(src.get("offset", "0ms")))
        return [key_of(millis(v)) for v in raw_values(doc, src["field"])]

    def top_hits(self, spec: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
        ordered = sorted(docs, key=lambda d: d["_id"])
        for criterion in reversed(spec.get("sort", [])):
            ((field, order),) = criterion.items()
            order = order["order"] if isinstance(order, dict) else order
            present = [d for d in ordered if raw_values(d, field)]
            absent = [d for d in ordered if not raw_values(d, field)]
            present.sort(key=lambda d, f=field: raw_values(d, f)[0], reverse=order == "desc")
            ordered = present + absent
        start = spec.get("from", 0)
        page = ordered[start : start + spec.get("size", 3)]
        return {"hits": {"total": {"value": len(docs), "relation": "eq"}, "ids": [d["_id"] for d in page]}}


class _Rev:
    """Reverses comparison for descending composite sources."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Rev) -> bool:
        return bool(self.value > other.value)

    def __gt__(self, other: _Rev) -> bool:
        return bool(self.value < other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _allowed(value: Any, rule: Any) -> bool:
    if isinstance(rule, str):
        return re.fullmatch(rule, str(value)) is not None
    return value in rule


def _zone(name: str | None) -> Any:
    if not name:
        return UTC
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", name)
    if match:
        from datetime import timezone

        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return ZoneInfo(name)


_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration(text: str | int) -> int:
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"([+-]?)(\d+)(ms|s|m|h|d)", text)
    assert match, text
    return (-1 if match.group(1) == "-" else 1) * int(match.group(2)) * _UNITS[match.group(3)]


_CALENDAR = {
    "1m": "minute",
    "1h": "hour",
    "1d": "day",
    "1w": "week",
    "1M": "month",
    "1q": "quarter",
    "1y": "year",
}


def _date_rounding(spec: dict[str, Any], zone: Any, offset: int) -> Any:
    """The bucket key (epoch ms of the local bucket start) of an instant, per Elasticsearch."""
    calendar = spec.get("calendar_interval")
    unit = _CALENDAR.get(calendar, calendar) if calendar else None
    fixed = _duration(spec["fixed_interval"]) if "fixed_interval" in spec else None

    def key_of(ms: int) -> int:
        ms -= offset
        local = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone)
        if unit in ("minute", "hour"):
            start = local.replace(second=0, microsecond=0, **({"minute": 0} if unit == "hour" else {}))
            return round(start.timestamp() * 1000) + offset
        if unit is not None:
            day = datetime(local.year, local.month, local.day)
            if unit == "week":
                day -= timedelta(days=day.weekday())
            elif unit == "month":
                day = day.replace(day=1)
            elif unit == "quarter":
                day = day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
            elif unit == "year":
                day = day.replace(day=1, month=1)
            return round(day.replace(tzinfo=zone).timestamp() * 1000) + offset
        assert fixed is not None
        # Elasticsearch's TimeIntervalRounding: round the local time down, then take the
        # latest instant with that local time that is not after the input (a repeated
        # autumn hour keeps its two offsets).
        local_ms = ms + round((local.utcoffset() or timedelta(0)).total_seconds() * 1000)
        start_local = local_ms // fixed * fixed
        naive = datetime(1970, 1, 1) + timedelta(milliseconds=start_local)
        instants = [round(naive.replace(tzinfo=zone, fold=f).timestamp() * 1000) for f in (0, 1)]
        candidates = [t for t in instants if t <= ms] or instants
        return max(candidates) + offset

    return key_of


def _format(ms: int, fmt: str | None, zone: Any) -> str:
    if fmt is None:
        return fmt_date(ms, zone)
    d = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(zone)
    if fmt == "yyyy-MM-dd":
        return d.strftime("%Y-%m-%d")
    if fmt == "yyyy-MM-dd'T'HH:mm:ss":
        return d.strftime("%Y-%m-%dT%H:%M:%S")
    if fmt == "epoch_millis":
        return str(ms)
    raise AssertionError(fmt)


def _date_bound(value: Any, now: datetime, zone: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    if value.startswith("now"):
        # The date math the tests use: now, now-<n>d, now/d, now-<n>M/M.
        match = re.fullmatch(r"now(?:([+-])(\d+)([dM]))?(?:/([dM]))?", value)
        assert match, value
        local = now.astimezone(zone)
        if match.group(2):
            n = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
            if match.group(3) == "d":
                local = (local + timedelta(days=n)).astimezone(zone)
            else:
                total = local.year * 12 + local.month - 1 + n
                local = local.replace(year=total // 12, month=total % 12 + 1)
        if match.group(4) == "d":
            local = datetime(local.year, local.month, local.day, tzinfo=zone)
        elif match.group(4) == "M":
            local = datetime(local.year, local.month, 1, tzinfo=zone)
        return round(local.timestamp() * 1000)
    d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=zone)
    return round(d.timestamp() * 1000)

"""Parent pipelines: they live inside a multi-bucket aggregation and rewrite its buckets.

Each ``apply`` is a port of the matching Elasticsearch ``*PipelineAggregator.reduce`` so
gaps, missing sub-aggregations and first buckets behave the same: e.g. ``derivative``
writes ``{"value": null}`` next to an empty bucket under ``skip`` (NaN - x), but nothing
where the path names an aggregation the bucket lacks (the first bucket of a second-order
derivative); ``moving_avg`` averages the window *before* the bucket; ``moving_fn`` slides
over non-gap values only and also writes ``null`` for an empty window.
"""

from __future__ import annotations

import functools
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from aggregata.dsl.expression import Script, compile_script, is_number, script_error
from aggregata.errors import BadRequest
from aggregata.search.pipeline.base import Body, ParentPipeline
from aggregata.search.pipeline.movfn import MOVING_FUNCTIONS, MovAvgModel, parse_model
from aggregata.search.pipeline.paths import (
    JSON,
    BucketsPath,
    GapPolicy,
    bucket_key,
    buckets_of,
    finite,
    parse_path,
    resolve_bucket_value,
    set_buckets,
    with_meta,
)

HISTOGRAM_PARENT_TYPES = frozenset({"derivative", "cumulative_sum", "moving_avg", "moving_fn", "serial_diff"})

# Java's estimated durations of calendar units (ChronoUnit.getDuration), used by ``unit``.
_YEAR_MS = 31_556_952_000
_DATE_UNITS_MS = {
    **dict.fromkeys(("year", "1y"), _YEAR_MS),
    **dict.fromkeys(("quarter", "1q"), _YEAR_MS // 4),
    **dict.fromkeys(("month", "1M"), _YEAR_MS // 12),
    **dict.fromkeys(("week", "1w"), 604_800_000),
    **dict.fromkeys(("day", "1d"), 86_400_000),
    **dict.fromkeys(("hour", "1h"), 3_600_000),
    **dict.fromkeys(("minute", "1m"), 60_000),
    **dict.fromkeys(("second", "1s"), 1_000),
}
_TIME_VALUE = re.compile(r"^(\d+)\s*(nanos|micros|ms|s|m|h|d)$")
_NANOS = {
    "nanos": 1,
    "micros": 1_000,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
}


def unit_millis(unit: str) -> int:
    """``derivative.unit`` in milliseconds: a date_histogram unit or a time value (``10s``)."""
    if unit in _DATE_UNITS_MS:
        return _DATE_UNITS_MS[unit]
    m = _TIME_VALUE.match(unit.strip().lower())
    if m is None:
        raise BadRequest(
            f"failed to parse setting [DerivativePipelineAggregationBuilder.unit] with value [{unit}] "
            "as a time value: unit is missing or unrecognized",
            type="parse_exception",
        )
    millis = int(m.group(1)) * _NANOS[m.group(2)] // 10**6
    if millis <= 0:
        raise BadRequest(f"[unit] must be a positive time value, got [{unit}]")
    return millis


def _put(bucket: JSON, name: str, out: JSON, meta: JSON | None) -> None:
    bucket[name] = with_meta(out, meta)


@dataclass(frozen=True)
class Derivative(ParentPipeline):
    path: BucketsPath
    gap: GapPolicy
    unit_ms: int | None

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return (self.path,)

    def apply(self, agg: JSON, agg_name: str) -> None:
        last_key: Any = None
        last_value: float | None = None
        for dict_key, bucket in buckets_of(agg):
            key = bucket_key(dict_key, bucket)
            value = resolve_bucket_value(bucket, self.path, self.gap, agg_name, dict_key)
            if last_value is not None and value is not None:
                gradient = value - last_value
                out: JSON = {"value": finite(gradient)}
                if self.unit_ms is not None:
                    if not is_number(key) or not is_number(last_key):
                        raise BadRequest(f"derivative [{self.name}] with [unit] needs numeric bucket keys")
                    x_diff = (float(key) - float(last_key)) / self.unit_ms
                    if x_diff > 0:
                        out["normalized_value"] = finite(gradient / x_diff)
                _put(bucket, self.name, out, self.meta)
            last_key, last_value = key, value


@dataclass(frozen=True)
class CumulativeSum(ParentPipeline):
    path: BucketsPath

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return (self.path,)

    def apply(self, agg: JSON, agg_name: str) -> None:
        total = 0.0
        for dict_key, bucket in buckets_of(agg):
            value = resolve_bucket_value(bucket, self.path, GapPolicy.INSERT_ZEROS, agg_name, dict_key)
            if value is not None and math.isfinite(value):
                total += value
            _put(bucket, self.name, {"value": finite(total)}, self.meta)


@dataclass(frozen=True)
class SerialDiff(ParentPipeline):
    path: BucketsPath
    gap: GapPolicy
    lag: int

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return (self.path,)

    def apply(self, agg: JSON, agg_name: str) -> None:
        seen: list[float] = []
        for dict_key, bucket in buckets_of(agg):
            value = resolve_bucket_value(bucket, self.path, self.gap, agg_name, dict_key)
            value = math.nan if value is None else value
            lagged = seen[-self.lag] if len(seen) >= self.lag else math.nan
            if not math.isnan(value) and not math.isnan(lagged):
                _put(bucket, self.name, {"value": finite(value - lagged)}, self.meta)
            seen.append(value)


@dataclass(frozen=True)
class MovingAvg(ParentPipeline):
    path: BucketsPath
    gap: GapPolicy
    window: int
    model: MovAvgModel

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return (self.path,)

    def apply(self, agg: JSON, agg_name: str) -> None:
        window: deque[float] = deque(maxlen=self.window)
        for dict_key, bucket in buckets_of(agg):
            value = resolve_bucket_value(bucket, self.path, self.gap, agg_name, dict_key)
            if value is None or math.isnan(value):
                continue
            if window:
                _put(bucket, self.name, {"value": finite(self.model.next(list(window)))}, self.meta)
            window.append(value)


@dataclass(frozen=True)
class MovingFn(ParentPipeline):
    path: BucketsPath
    gap: GapPolicy
    window: int
    shift: int
    script: Script

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return (self.path,)

    def apply(self, agg: JSON, agg_name: str) -> None:
        resolved = [
            (bucket, resolve_bucket_value(bucket, self.path, self.gap, agg_name, dict_key))
            for dict_key, bucket in buckets_of(agg)
        ]
        values = [v for _, v in resolved if v is not None and not math.isnan(v)]
        index = 0
        for bucket, value in resolved:
            if value is None or math.isnan(value):
                continue
            lo = min(max(index - self.window + self.shift, 0), len(values))
            hi = min(max(index + self.shift, 0), len(values))
            result = self.script.evaluate_raw({"values": tuple(values[lo:hi])})
            if isinstance(result, bool):
                raise script_error(f"moving_fn script for [{self.name}] must return a number")
            _put(bucket, self.name, {"value": None if result is None else finite(result)}, self.meta)
            index += 1


@dataclass(frozen=True)
class BucketScript(ParentPipeline):
    vars: tuple[tuple[str, BucketsPath], ...]
    gap: GapPolicy
    script: Script

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return tuple(p for _, p in self.vars)

    def _bind(self, bucket: JSON, agg_name: str, dict_key: str | None) -> dict[str, float | None] | None:
        bound: dict[str, float | None] = {}
        for var, path in self.vars:
            value = resolve_bucket_value(bucket, path, self.gap, agg_name, dict_key)
            if self.type == "bucket_script" and self.gap.skippable and (value is None or math.isnan(value)):
                return None
            bound[var] = value
        return bound

    def apply(self, agg: JSON, agg_name: str) -> None:
        for dict_key, bucket in buckets_of(agg):
            bound = self._bind(bucket, agg_name, dict_key)
            if bound is None:
                continue
            result = self.script.evaluate_raw(bound)
            if result is None:
                continue
            if isinstance(result, bool):
                raise script_error(f"bucket_script [{self.name}] must return a number, got a boolean")
            _put(bucket, self.name, {"value": finite(result)}, self.meta)


@dataclass(frozen=True)
class BucketSelector(BucketScript):
    def apply(self, agg: JSON, agg_name: str) -> None:
        kept = []
        for dict_key, bucket in buckets_of(agg):
            bound = self._bind(bucket, agg_name, dict_key) or {}
            result = self.script.evaluate_raw(bound)
            if not isinstance(result, bool):
                raise script_error(f"bucket_selector [{self.name}] script must return a boolean")
            if result:
                kept.append((dict_key, bucket))
        set_buckets(agg, kept)


@dataclass(frozen=True)
class SortField:
    field: str
    desc: bool
    path: BucketsPath | None  # None for ``_key``


@dataclass(frozen=True)
class BucketSort(ParentPipeline):
    sorts: tuple[SortField, ...]
    offset: int
    size: int | None
    gap: GapPolicy

    @property
    def paths(self) -> tuple[BucketsPath, ...]:
        return tuple(s.path for s in self.sorts if s.path is not None)

    def apply(self, agg: JSON, agg_name: str) -> None:
        items = buckets_of(agg)
        size = len(items) if self.size is None else self.size
        if self.offset >= len(items):
            set_buckets(agg, [])
            return
        if not self.sorts:
            set_buckets(agg, items[self.offset : self.offset + size])
            return
        keyed: list[tuple[list[Any], tuple[str | None, JSON]]] = []
        for dict_key, bucket in items:
            values: list[Any] = []
            for s in self.sorts:
                if s.path is None:
                    values.append(bucket_key(dict_key, bucket))
                    continue
                v = resolve_bucket_value(bucket, s.path, self.gap, agg_name, dict_key)
                values.append(None if v is None or (self.gap.skippable and math.isnan(v)) else v)
            if any(v is not None for v in values):
                keyed.append((values, (dict_key, bucket)))
        keyed.sort(key=functools.cmp_to_key(self._compare))  # stable, like Collections.sort
        set_buckets(agg, [item for _, item in keyed[self.offset : self.offset + size]])

    def _compare(self, a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> int:
        for s, x, y in zip(self.sorts, a[0], b[0], strict=True):
            if x is None and y is None:
                continue
            if x is None or y is None:
                return 1 if x is None else -1  # missing values sort last in either order
            c = int(x > y) - int(x < y)
            if c:
                return -c if s.desc else c
        return 0


# -- parsing ------------------------------------------------------------------------------------


def _script(b: Body, variables: set[str], functions: bool = False) -> Script:
    raw = b.raw("script")
    if raw is None:
        raise b.missing("script")
    return compile_script(
        raw, variables, functions=MOVING_FUNCTIONS if functions else None, where=f"{b.type}] [{b.name}"
    )


def _positive(b: Body, key: str, default: int | None, msg: str) -> int:
    v = b.integer(key, default)
    if v is None:
        raise b.missing(key)
    if v <= 0:
        raise BadRequest(msg.format(name=b.name, value=v))
    return v


def _parse_sorts(b: Body) -> tuple[SortField, ...]:
    raw = b.raw("sort")
    if raw is None:
        return ()
    entries = raw if isinstance(raw, list) else [raw]
    out: list[SortField] = []
    for entry in entries:
        if isinstance(entry, str):
            field, order = entry, "asc"
        elif isinstance(entry, dict) and len(entry) == 1:
            field, spec = next(iter(entry.items()))
            if isinstance(spec, dict):
                unknown = set(spec) - {"order"}
                if unknown:
                    raise b.fail(f"unsupported sort option [{sorted(unknown)[0]}] for [{field}]")
                spec = spec.get("order", "asc")
            order = spec
        else:
            raise b.fail(f"invalid sort [{entry}]")
        if order not in ("asc", "desc"):
            raise b.fail(f"unknown sort order [{order}] for [{field}]")
        out.append(SortField(field, order == "desc", None if field == "_key" else parse_path(field)))
    return tuple(out)


def parse_parent(type_: str, name: str, body: object, meta: JSON | None) -> ParentPipeline:
    """Parse one parent pipeline's parameters (``format`` is accepted and ignored)."""
    b = Body(type_, name, body)
    b.string("format")
    pipeline: ParentPipeline
    if type_ == "derivative":
        unit = b.string("unit")
        unit_ms = unit_millis(unit) if unit is not None else None
        pipeline = Derivative(name, type_, meta, b.single_path(), b.gap_policy(), unit_ms)
    elif type_ == "cumulative_sum":
        pipeline = CumulativeSum(name, type_, meta, b.single_path())
    elif type_ == "serial_diff":
        lag = _positive(b, "lag", 1, "lag must be a positive, non-zero integer. Value supplied was {value}")
        pipeline = SerialDiff(name, type_, meta, b.single_path(), b.gap_policy(), lag)
    elif type_ == "moving_avg":
        window = _positive(b, "window", 5, "[window] must be a positive integer: [{name}]")
        if b.integer("predict", 0):
            raise BadRequest(f"moving_avg [{name}]: [predict] is not supported")
        if b.boolean("minimize", False):
            raise BadRequest(f"moving_avg [{name}]: [minimize] is not supported")
        model = parse_model(b.raw("model") or "simple", b.raw("settings"), name)
        pipeline = MovingAvg(name, type_, meta, b.single_path(), b.gap_policy(), window, model)
    elif type_ == "moving_fn":
        window = _positive(b, "window", None, "[window] must be a positive, non-zero integer.")
        shift = b.integer("shift", 0) or 0
        path = parse_path(b.raw("buckets_path")) if b.has("buckets_path") else None
        if path is None:
            raise b.missing("buckets_path")
        script = _script(b, {"values"}, functions=True)
        pipeline = MovingFn(name, type_, meta, path, b.gap_policy(), window, shift, script)
    elif type_ in ("bucket_script", "bucket_selector"):
        paths = b.path_map()
        script = _script(b, set(paths))
        cls = BucketScript if type_ == "bucket_script" else BucketSelector
        pipeline = cls(name, type_, meta, tuple(paths.items()), b.gap_policy(), script)
    elif type_ == "bucket_sort":
        sorts = _parse_sorts(b)
        offset = b.integer("from", 0) or 0
        size = b.integer("size", None)
        if offset < 0:
            raise BadRequest(f"[from] must be a non-negative integer: [{offset}]")
        if size is not None and size <= 0:
            raise BadRequest(f"[size] must be a positive integer: [{size}]")
        if not sorts and size is None and offset == 0:
            raise BadRequest(
                f"Validation Failed: 1: [{name}] is configured to perform nothing. Please set either of "
                "[sort, size, from] to use bucket_sort;",
                type="action_request_validation_exception",
            )
        pipeline = BucketSort(name, type_, meta, sorts, offset, size, b.gap_policy())
    else:  # pragma: no cover - the caller dispatches on PARENT_TYPES
        raise BadRequest(f"unknown parent pipeline [{type_}]")
    b.done()
    return pipeline


PARENT_TYPES = HISTOGRAM_PARENT_TYPES | {"bucket_script", "bucket_selector", "bucket_sort"}

"""``buckets_path`` syntax and reading values out of aggregation results already in ES shape.

The rules follow Elasticsearch's ``AggregationPath`` and ``BucketHelpers.resolveBucketValue``
because users' paths and their edge cases (a sub-aggregation missing from one bucket, an
empty bucket, a multi-value metric named without ``.metric``) must behave identically:

* ``a>b>c.metric``, ``pcts[99.9]`` (a metric key in brackets), ``terms['key']>m`` (one
  bucket, by ``key_as_string``), ``_count``, ``_key``, ``agg._bucket_count``.
* A path naming an aggregation absent from a bucket resolves to ``None`` (Java ``null``):
  pipelines then skip the bucket. A value that is not a number is a 400.
* Gaps (empty buckets, NaN/Infinity metrics) become NaN, 0 or the value per ``gap_policy``.

Values are plain floats with NaN standing for "no value", as in Java; ``finite`` turns
them back into JSON (``None``) when a pipeline writes its output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from aggregata.dsl.expression import is_number
from aggregata.errors import BadRequest, ParsingError

JSON = dict[str, Any]
BUCKET_FIELDS = frozenset(
    {
        "key",
        "key_as_string",
        "doc_count",
        "from",
        "to",
        "from_as_string",
        "to_as_string",
        "doc_count_error_upper_bound",
    }
)


class GapPolicy(Enum):
    """What a pipeline does with an empty bucket or a missing (NaN/Infinity) metric."""

    SKIP = "skip"
    INSERT_ZEROS = "insert_zeros"
    KEEP_VALUES = "keep_values"

    @property
    def skippable(self) -> bool:
        return self is not GapPolicy.INSERT_ZEROS

    def process(self, doc_count: int, value: float) -> float:
        """Elasticsearch's ``GapPolicy.processValue``."""
        if self is GapPolicy.INSERT_ZEROS:
            return 0.0 if not math.isfinite(value) or doc_count == 0 else value
        if self is GapPolicy.SKIP:
            return math.nan if math.isinf(value) or doc_count == 0 else value
        return value if math.isfinite(value) else math.nan

    @classmethod
    def parse(cls, raw: object) -> GapPolicy:
        for policy in cls:
            if isinstance(raw, str) and raw.lower() == policy.value:
                return policy
        accepted = ", ".join(p.value for p in cls)
        raise ParsingError(f"Invalid gap policy: [{raw}], accepted values: [{accepted}]")


@dataclass(frozen=True)
class PathElement:
    full: str
    name: str
    key: str | None = None
    metric: str | None = None

    @property
    def bucket_key(self) -> str | None:
        """The ``'key'`` of ``agg['key']``: selects one bucket of a multi-bucket aggregation."""
        k = self.key
        return k[1:-1] if k is not None and len(k) >= 2 and k[0] == k[-1] == "'" else None


@dataclass(frozen=True)
class BucketsPath:
    text: str
    elements: tuple[PathElement, ...]

    @property
    def strings(self) -> list[str]:
        """Elasticsearch's ``getPathElementsAsStringList``: names, keys and metrics in order."""
        out: list[str] = []
        for e in self.elements:
            out.append(e.name)
            out.extend(x for x in (e.key, e.metric) if x is not None)
        return out


def _invalid(element: str, path: str) -> BadRequest:
    return BadRequest(f"Invalid path element [{element}] in path [{path}]")


def parse_path(path: object) -> BucketsPath:
    """Parse a ``buckets_path`` string exactly like ``AggregationPath.parse``."""
    if not isinstance(path, str):
        raise ParsingError(f"buckets_path must be a string, got [{path}]")
    elements = [e.strip() for e in path.split(">") if e.strip()]
    if not elements:
        raise BadRequest(f"Invalid path [{path}]")
    out: list[PathElement] = []
    for i, element in enumerate(elements):
        key_at = element.rfind("[")
        if i < len(elements) - 1:
            if key_at < 0:
                out.append(PathElement(element, element))
                continue
            if key_at == 0 or key_at > len(element) - 3 or not element.endswith("]"):
                raise _invalid(element, path)
            out.append(PathElement(element, element[:key_at], element[key_at + 1 : -1]))
            continue
        metric_at = element.rfind(".")
        if key_at >= 0:
            end = element.rfind("]")
            if key_at == 0 or key_at > len(element) - 3 or end < key_at:
                raise _invalid(element, path)
            if metric_at < 0 and end != len(element) - 1:
                raise _invalid(element, path)
            metric = None if metric_at < end else element[metric_at + 1 :]
            out.append(PathElement(element, element[:key_at], element[key_at + 1 : end], metric))
        elif metric_at < 0:
            out.append(PathElement(element, element))
        elif metric_at == 0 or metric_at > len(element) - 2:
            raise _invalid(element, path)
        else:
            out.append(PathElement(element, element[:metric_at], None, element[metric_at + 1 :]))
    return BucketsPath(path, tuple(out))


# -- results -------------------------------------------------------------------------------


def is_multi_bucket(agg: object) -> bool:
    return isinstance(agg, dict) and isinstance(agg.get("buckets"), list | dict)


def is_single_bucket(agg: object) -> bool:
    return isinstance(agg, dict) and "doc_count" in agg and "buckets" not in agg and "value" not in agg


def buckets_of(agg: JSON) -> list[tuple[str | None, JSON]]:
    """A multi-bucket result's buckets with their ``keyed`` names (``None`` in list form)."""
    raw = agg.get("buckets")
    if isinstance(raw, dict):
        return [(k, b) for k, b in raw.items() if isinstance(b, dict)]
    if isinstance(raw, list):
        return [(None, b) for b in raw if isinstance(b, dict)]
    return []


def set_buckets(agg: JSON, items: list[tuple[str | None, JSON]]) -> None:
    """Replace the buckets, keeping the list or ``keyed`` object form."""
    if isinstance(agg.get("buckets"), dict):
        agg["buckets"] = {k: b for k, b in items if k is not None}
    else:
        agg["buckets"] = [b for _, b in items]


def bucket_key(dict_key: str | None, bucket: JSON) -> Any:
    return bucket.get("key", dict_key)


def java_double(x: float) -> str:
    """Java's ``Double.toString`` (``50.0``, ``1.0E7``): how ES prints percents and keys."""
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        return repr(float(x))
    sign, digits, exp = Decimal(repr(float(x))).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    return f"{'-' if sign else ''}{ds[0]}.{ds[1:] or '0'}E{len(ds) - 1 + exp}"


def key_as_string(dict_key: str | None, bucket: JSON) -> str:
    """Elasticsearch's ``bucket.getKeyAsString()`` for a rendered bucket."""
    if isinstance(bucket.get("key_as_string"), str):
        return str(bucket["key_as_string"])
    if dict_key is not None:
        return dict_key
    key = bucket.get("key")
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float):
        return java_double(key)
    return "" if key is None else str(key)


def finite(x: float) -> float | None:
    """A double as ES renders it: NaN and ±Infinity become ``null``."""
    return x if math.isfinite(x) else None


def with_meta(out: JSON, meta: JSON | None) -> JSON:
    return {"meta": meta, **out} if meta is not None else out


# -- resolution ------------------------------------------------------------------------------


class _InvalidPath(Exception):
    """ES's ``InvalidAggregationPathException``: the bucket lacks the aggregation (→ null)."""


@dataclass(frozen=True)
class _Many:
    """A path that fans out over several buckets: not a single number."""


@dataclass(frozen=True)
class _Agg:
    name: str
    value: JSON
    kind: str


_NUMBER_ERROR = (
    "buckets_path must reference either a number value or a single value numeric metric aggregation"
)


def _to_number(prop: object, at: str) -> float:
    if isinstance(prop, bool):
        raise BadRequest(f"{_NUMBER_ERROR}, got: [Boolean] at aggregation [{at}]")
    if is_number(prop):
        return float(prop)  # type: ignore[arg-type]
    if prop is None:
        return math.nan
    if isinstance(prop, _Agg):
        if prop.kind == "metric" and "value" in prop.value:
            return _to_number(prop.value["value"], at)
        if prop.kind == "metric":
            raise BadRequest(
                f"{_NUMBER_ERROR}, but [{at}] contains multiple values. Please specify which to use."
            )
        raise BadRequest(f"{_NUMBER_ERROR}, got: [{prop.kind} aggregation] at aggregation [{at}]")
    names: dict[type, str] = {str: "String", list: "List", dict: "Object", _Many: "Object[]"}
    got = names.get(type(prop), type(prop).__name__)
    raise BadRequest(f"{_NUMBER_ERROR}, got: [{got}] at aggregation [{at}]")


def _agg_kind(agg: JSON) -> str:
    if is_multi_bucket(agg):
        return "multi-bucket"
    return "single-bucket" if is_single_bucket(agg) else "metric"


def _bucket_property(bucket: JSON, path: list[str], container: str, dict_key: str | None) -> object:
    if not path:
        return _Agg(container, bucket, "bucket")
    head = path[0]
    if head in ("_count", "_key"):
        if len(path) > 1:
            raise _InvalidPath(f"{head} must be the last element in the path")
        return bucket.get("doc_count", 0) if head == "_count" else bucket_key(dict_key, bucket)
    agg = bucket.get(head) if head not in BUCKET_FIELDS else None
    if not isinstance(agg, dict):
        raise _InvalidPath(f"Cannot find an aggregation named [{head}] in [{container}]")
    return _agg_property(head, agg, path[1:])


def _agg_property(name: str, agg: JSON, rest: list[str]) -> object:
    kind = _agg_kind(agg)
    if not rest:
        return _Agg(name, agg, kind)
    head = rest[0]
    if kind == "multi-bucket":
        buckets = buckets_of(agg)
        if head == "_bucket_count":
            return len(buckets)
        if len(head) >= 2 and head[0] == head[-1] == "'":
            for dict_key, b in buckets:
                if key_as_string(dict_key, b) == head[1:-1]:
                    return _bucket_property(b, rest[1:], name, dict_key)
            raise _InvalidPath(f"Cannot find an key [{head}] in [{name}]")
        return _Many()
    if kind == "single-bucket":
        if head == "_count":
            return agg.get("doc_count", 0)
        sub = agg.get(head)
        if not isinstance(sub, dict):
            raise _InvalidPath(f"Cannot find an aggregation named [{head}] in [{name}]")
        return _agg_property(head, sub, rest[1:])
    if len(rest) > 1:
        raise BadRequest(f"path not supported for [{name}]: {rest}")
    return metric_value(name, agg, head)


def metric_value(name: str, agg: JSON, metric: str) -> object:
    """``value(String)`` of a rendered metric: ``value``, stats fields, percentiles by percent."""
    values = agg.get("values")
    if values is not None and metric != "value":
        try:
            percent = float(metric)
        except ValueError:
            raise BadRequest(f"path not supported for [{name}]: [{metric}]") from None
        pairs = (
            values.items() if isinstance(values, dict) else [(v.get("key"), v.get("value")) for v in values]
        )
        for k, v in pairs:
            try:
                if float(k) == percent:
                    return v
            except (TypeError, ValueError):
                continue
        raise BadRequest(
            f"Percent requested [{java_double(percent)}] was not one of the computed percentiles"
        )
    bounds = agg.get("std_deviation_bounds")
    if metric.startswith("std_") and isinstance(bounds, dict) and metric[4:] in bounds:
        return bounds[metric[4:]]
    if metric in agg and not isinstance(agg[metric], dict | list):
        return agg[metric]
    raise BadRequest(f"path not supported for [{name}]: [{metric}]")


def resolve_bucket_value(
    bucket: JSON, path: BucketsPath | list[str], gap: GapPolicy, container: str, dict_key: str | None = None
) -> float | None:
    """``BucketHelpers.resolveBucketValue``: a float (NaN for a gap) or ``None`` (no such agg)."""
    strings = path.strings if isinstance(path, BucketsPath) else path
    try:
        prop = _bucket_property(bucket, strings, container, dict_key)
    except _InvalidPath:
        return None
    value = _to_number(prop, strings[0] if strings else container)
    if strings == ["_count"]:
        return value
    doc_count = bucket.get("doc_count", 1)
    return gap.process(int(doc_count) if is_number(doc_count) else 1, value)


def iter_values(
    agg: JSON, path: BucketsPath, gap: GapPolicy, name: str
) -> Iterator[tuple[str | None, JSON, float | None]]:
    for dict_key, bucket in buckets_of(agg):
        yield dict_key, bucket, resolve_bucket_value(bucket, path, gap, name, dict_key)

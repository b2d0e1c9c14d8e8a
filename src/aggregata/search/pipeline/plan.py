"""Finding pipeline aggregations in a request tree, validating them, and running them in order.

The SQL side computes every bucket and metric aggregation; this module runs afterwards on
its result (already in Elasticsearch's response shape) and mirrors how ES reduces:

* bottom-up: the sub-aggregations inside each bucket first, then the pipelines declared
  at a level, so ``sum_bucket`` over a ``cumulative_sum`` sees finished buckets;
* within a level, in dependency order (``derivative`` of a ``cumulative_sum``,
  ``bucket_selector`` on a ``bucket_script``), otherwise in declaration order — ES's
  ``resolvePipelineAggregatorOrder``, with its messages for unknown paths and cycles;
* a sibling pipeline declared inside a multi-bucket aggregation runs once per bucket.

Planning happens before any SQL runs, so a malformed pipeline is a 400 that costs no query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregata.errors import BadRequest, ParsingError
from aggregata.search.pipeline.base import ParentPipeline, Pipeline, SiblingPipeline
from aggregata.search.pipeline.parent import HISTOGRAM_PARENT_TYPES, PARENT_TYPES, parse_parent
from aggregata.search.pipeline.paths import JSON, BucketsPath, buckets_of, is_multi_bucket, with_meta
from aggregata.search.pipeline.sibling import SIBLING_TYPES, parse_sibling

UNSUPPORTED_PIPELINE_TYPES = frozenset(
    {
        "cumulative_cardinality",
        "moving_percentiles",
        "normalize",
        "inference",
        "bucket_count_ks_test",
        "bucket_correlation",
    }
)
PIPELINE_TYPES: frozenset[str] = PARENT_TYPES | SIBLING_TYPES | UNSUPPORTED_PIPELINE_TYPES
"""Aggregation types the SQL side must not compute: they are all post-processing."""

HISTOGRAM_TYPES = frozenset({"histogram", "date_histogram", "auto_date_histogram"})
MULTI_BUCKET_TYPES = HISTOGRAM_TYPES | frozenset(
    {
        "terms", "multi_terms", "rare_terms", "significant_terms", "significant_text", "range", "date_range",
        "ip_range", "geo_distance", "filters", "adjacency_matrix", "composite", "variable_width_histogram",
        "geohash_grid", "geotile_grid", "geohex_grid", "time_series", "categorize_text",
    }
)  # fmt: skip
SINGLE_BUCKET_TYPES = frozenset(
    {"filter", "global", "missing", "nested", "reverse_nested", "sampler", "diversified_sampler", "children",
     "parent", "random_sampler"}
)  # fmt: skip
_SUB_KEYS = ("aggs", "aggregations")
MAX_AGG_DEPTH = 100


@dataclass(frozen=True)
class AggEntry:
    """One request entry ``{"name": {"<type>": body, "aggs": {...}, "meta": {...}}}``."""

    name: str
    type: str
    body: Any
    sub: JSON | None
    meta: JSON | None


def parse_entry(name: str, entry: object) -> AggEntry:
    if not isinstance(entry, dict):
        raise ParsingError(
            f"Expected [START_OBJECT] under [{name}], but got a [{type(entry).__name__}] in [{name}]"
        )
    types = [k for k in entry if k not in _SUB_KEYS and k != "meta"]
    subs = [k for k in entry if k in _SUB_KEYS]
    if len(subs) > 1:
        raise ParsingError(f"Found two sub aggregation definitions under [{name}]")
    if len(types) > 1:
        raise ParsingError(
            f"Found two aggregation type definitions in [{name}]: [{types[0]}] and [{types[1]}]"
        )
    if not types:
        raise ParsingError(f"Missing definition for aggregation [{name}]")
    sub = entry[subs[0]] if subs else None
    if sub is not None and not isinstance(sub, dict):
        raise ParsingError(f"Expected [START_OBJECT] under [{subs[0]}], in [{name}]")
    meta = entry.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise ParsingError(f"[meta] of aggregation [{name}] must be an object")
    return AggEntry(name, types[0], entry[types[0]], sub, meta)


def _entries(aggs: object) -> dict[str, AggEntry]:
    if aggs is None:
        return {}
    if not isinstance(aggs, dict):
        raise ParsingError("Expected [START_OBJECT] for [aggs]")
    return {name: parse_entry(name, entry) for name, entry in aggs.items()}


def split_pipelines(aggs: JSON | None, _depth: int = 0) -> tuple[JSON, JSON]:
    """Split a request's ``aggs`` into (everything but pipelines, the pipelines).

    The first tree is what SQL computes: the same nesting with every pipeline aggregation
    removed (an emptied ``aggs`` is dropped). The second holds the pipelines at the same
    nesting, regular aggregations reduced to ``{"aggs": {...}}`` wrappers; it is for
    inspection only — :func:`apply_pipelines` takes the original request.
    """
    if _depth > MAX_AGG_DEPTH:
        raise BadRequest(f"aggregations are nested too deeply (limit {MAX_AGG_DEPTH} levels)")
    regular: JSON = {}
    pipelines: JSON = {}
    for name, e in _entries(aggs).items():
        if e.type in PIPELINE_TYPES:
            pipelines[name] = aggs[name] if aggs is not None else None
            continue
        entry = {k: v for k, v in aggs[name].items() if k not in _SUB_KEYS} if aggs is not None else {}
        if e.sub:
            sub_regular, sub_pipelines = split_pipelines(e.sub, _depth + 1)
            if sub_regular:
                entry["aggs"] = sub_regular
            if sub_pipelines:
                pipelines[name] = {"aggs": sub_pipelines}
        regular[name] = entry
    return regular, pipelines


@dataclass(frozen=True)
class LevelPlan:
    """The pipelines of one ``aggs`` object (ordered) and of the aggregations inside it."""

    children: tuple[tuple[str, LevelPlan], ...]
    pipelines: tuple[Pipeline, ...]

    def apply(self, container: JSON) -> None:
        """Fill the pipelines' outputs into ``container`` (a result level) in place."""
        for name, child in self.children:
            child._apply_to(container.get(name), name)
        for p in self.pipelines:
            if isinstance(p, SiblingPipeline):
                container[p.name] = with_meta(p.compute(container), p.meta)

    def _apply_to(self, agg: object, name: str) -> None:
        if not isinstance(agg, dict):
            return
        if not is_multi_bucket(agg):
            self.apply(agg)
            return
        for _, bucket in buckets_of(agg):
            for child_name, child in self.children:
                child._apply_to(bucket.get(child_name), child_name)
        for p in self.pipelines:
            if isinstance(p, ParentPipeline):
                p.apply(agg, name)
            elif isinstance(p, SiblingPipeline):
                for _, bucket in buckets_of(agg):
                    bucket[p.name] = with_meta(p.compute(bucket), p.meta)


def _validation(errors: list[str]) -> BadRequest:
    listed = "".join(f"{i}: {e};" for i, e in enumerate(errors, 1))
    return BadRequest(f"Validation Failed: {listed}", type="action_request_validation_exception")


def _validate_parent(p: Pipeline, parent: AggEntry | None) -> str | None:
    if p.type in HISTOGRAM_PARENT_TYPES:
        parents = "a histogram, date_histogram or auto_date_histogram"
        must = f"{p.type} aggregation [{p.name}] must have {parents} as parent"
        if parent is None:
            return must + " but doesn't have a parent"
        if parent.type not in HISTOGRAM_TYPES:
            return must
        min_doc_count = parent.body.get("min_doc_count", 0) if isinstance(parent.body, dict) else 0
        if p.type == "derivative" and parent.type != "auto_date_histogram" and min_doc_count != 0:
            return f"parent histogram of {p.type} aggregation [{p.name}] must have min_doc_count of 0"
        return None
    if parent is None:
        return f"{p.type} aggregation [{p.name}] must be declared inside of another aggregation"
    if parent.type not in MULTI_BUCKET_TYPES:
        return f"{p.type} aggregation [{p.name}] must be declared inside of a multi-bucket aggregation"
    return None


def _validate_sibling(p: Pipeline, siblings: dict[str, AggEntry]) -> str | None:
    """ES's ``BucketMetricsPipelineAggregationBuilder.validate``: the path must reach buckets."""
    path = p.paths[0]
    elements = path.elements
    agg = siblings.get(elements[0].name)
    if agg is None:
        return f"buckets_path aggregation does not exist for aggregation [{p.name}]: {path.text}"
    pos = 1
    current = elements[0]
    while pos < len(elements) and (
        (agg.type in MULTI_BUCKET_TYPES and current.bucket_key is not None)
        or (agg.type in SINGLE_BUCKET_TYPES and agg.sub)
    ):
        current = elements[pos]
        pos += 1
        found = _entries(agg.sub).get(current.name)
        if found is None:
            walked = ", ".join(BucketsPath(path.text, elements[:pos]).strings)
            return f"buckets_path aggregation does not exist for aggregation [{p.name}]: [{walked}]"
        agg = found
    if agg.type not in MULTI_BUCKET_TYPES:
        return (
            "Unable to find unqualified multi-bucket aggregation in buckets_path. Path must include a "
            f"multi-bucket aggregation for aggregation [{p.name}] found :{agg.type} "
            f"for buckets path: {path.text}"
        )
    return None


def _order(pipelines: dict[str, Pipeline], regular: dict[str, AggEntry]) -> list[Pipeline]:
    """Dependency order with ES's checks that every path names a known aggregation."""
    ordered: list[Pipeline] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(p: Pipeline) -> None:
        if p.name in visiting:
            raise BadRequest(f"Cyclical dependency found with pipeline aggregator [{p.name}]")
        if p.name in done:
            return
        visiting.add(p.name)
        for path in p.paths:
            elements = path.elements
            first = elements[0].name
            if path.text in ("_count", "_key"):
                continue
            if first in regular:
                agg = regular[first]
                for i, element in enumerate(elements[1:], 1):
                    last = i == len(elements) - 1
                    if last and (element.name.lower() == "_key" or element.name == "_count"):
                        break
                    subs = _entries(agg.sub)
                    sub = subs.get(element.name)
                    if sub is not None and sub.type not in PIPELINE_TYPES:
                        agg = sub
                    elif not (last and sub is not None):
                        raise BadRequest(f"No aggregation [{element.name}] found for path [{path.text}]")
            elif first in pipelines:
                visit(pipelines[first])
            else:
                raise BadRequest(f"No aggregation found for path [{path.text}]")
        visiting.discard(p.name)
        done.add(p.name)
        ordered.append(p)

    for p in pipelines.values():
        visit(p)
    return ordered


def _plan(aggs: object, parent: AggEntry | None, depth: int = 0) -> LevelPlan:
    if depth > MAX_AGG_DEPTH:
        raise BadRequest(f"aggregations are nested too deeply (limit {MAX_AGG_DEPTH} levels)")
    regular: dict[str, AggEntry] = {}
    pipelines: dict[str, Pipeline] = {}
    for name, e in _entries(aggs).items():
        if e.type not in PIPELINE_TYPES:
            regular[name] = e
            continue
        if e.sub:
            raise BadRequest(f"Aggregation [{name}] cannot define sub-aggregations")
        if e.type in UNSUPPORTED_PIPELINE_TYPES:
            raise BadRequest(f"pipeline aggregation [{e.type}] is not supported (aggregation [{name}])")
        parse = parse_parent if e.type in PARENT_TYPES else parse_sibling
        pipelines[name] = parse(e.type, name, e.body, e.meta)
    errors = [
        err
        for p in pipelines.values()
        if (err := _validate_sibling(p, regular) if p.type in SIBLING_TYPES else _validate_parent(p, parent))
    ]
    if errors:
        raise _validation(errors)
    ordered = _order(pipelines, regular)
    children = []
    for name, e in regular.items():
        if e.sub:
            child = _plan(e.sub, e, depth + 1)
            if child.children or child.pipelines:
                children.append((name, child))
    return LevelPlan(tuple(children), tuple(ordered))


def plan_pipelines(request_aggs: JSON | None) -> LevelPlan:
    """Parse and validate every pipeline in a request's ``aggs`` (call before running SQL)."""
    return _plan(request_aggs, None)


def apply_pipelines(request_aggs: JSON | None, result: JSON) -> JSON:
    """Fill pipeline outputs into ``result`` (the ``aggregations`` response) in place; return it."""
    plan_pipelines(request_aggs).apply(result)
    return result

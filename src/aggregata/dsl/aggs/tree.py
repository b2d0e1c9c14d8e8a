"""The ``aggs`` tree of a search body, parsed into frozen typed nodes (no SQL, no IO).

Each aggregation becomes an ``Agg``: its name, a typed ``spec`` (one dataclass per
aggregation type, see ``metrics.py`` and ``buckets.py``; ``params.py`` reads their
parameters), its sub-aggregations and its ``meta``. Parsing is strict so that a typo is a
400 naming it rather than a silently ignored parameter, and the request is bounded here
(depth, number of aggregations) before any SQL is built, so a hostile body costs nothing
but the parse.

Pipeline aggregations (``derivative``, ``bucket_script``, ...) are computed afterwards from
the response (``search/pipeline.py``); the parser keeps them as ``Pipeline`` nodes with
their raw parameters and the SQL compiler skips them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aggregata.dsl.aggs.params import SPECS, AggSpec, Reader, json_kind
from aggregata.errors import BadRequest, ParsingError

MAX_BUCKETS = 65_535
"""Elasticsearch's default ``search.max_buckets``."""
MAX_DEPTH = 10
MAX_AGGS = 100

# Elasticsearch's pipeline aggregations: accepted in the tree, computed by search/pipeline.py.
ES_PIPELINE_TYPES = frozenset(
    {
        "avg_bucket",
        "bucket_script",
        "bucket_selector",
        "bucket_sort",
        "cumulative_cardinality",
        "cumulative_sum",
        "derivative",
        "extended_stats_bucket",
        "max_bucket",
        "min_bucket",
        "moving_fn",
        "moving_percentiles",
        "normalize",
        "percentiles_bucket",
        "serial_diff",
        "stats_bucket",
        "sum_bucket",
    }
)


class Pipeline(AggSpec):
    """A pipeline aggregation, kept raw for the post-processing module."""

    type: str
    params: Any = None


@dataclass(frozen=True)
class Agg:
    """One named aggregation of the request: its typed spec, sub-aggregations and ``meta``."""

    name: str
    spec: AggSpec
    subs: tuple[Agg, ...] = ()
    meta: Any = field(default=None, compare=False)

    @property
    def type_name(self) -> str:
        if isinstance(self.spec, Pipeline):
            return self.spec.type
        return self.spec.type_name


@dataclass(frozen=True)
class AggLimits:
    """Request bounds; the service may pass other values (tests use small ones)."""

    max_buckets: int = MAX_BUCKETS
    max_depth: int = MAX_DEPTH
    max_aggs: int = MAX_AGGS


_ILLEGAL_NAME = frozenset("[]>")
_TOP_LEVEL_ONLY = frozenset({"global", "composite"})


@dataclass
class _Budget:
    limits: AggLimits
    pipelines: frozenset[str]
    count: int = 0


def parse_aggs(
    body: Any,
    *,
    limits: AggLimits = AggLimits(),
    pipeline_types: frozenset[str] = ES_PIPELINE_TYPES,
) -> tuple[Agg, ...]:
    """Parse the ``aggs`` object of a search body; every problem is a 400 naming its place."""
    return _level(body, _Budget(limits, frozenset(pipeline_types)), depth=1, parent=None)


def _level(body: Any, budget: _Budget, *, depth: int, parent: str | None) -> tuple[Agg, ...]:
    if not isinstance(body, dict):
        where = f"of [{parent}]" if parent else "of the request"
        raise ParsingError(f"[aggs] {where} must be an object of named aggregations")
    if depth > budget.limits.max_depth:
        raise BadRequest(
            f"aggregations are nested too deeply under [{parent}]: the maximum depth is"
            f" [{budget.limits.max_depth}]"
        )
    return tuple(_one(name, spec, budget, depth=depth, parent=parent) for name, spec in body.items())


def _one(name: str, body: Any, budget: _Budget, *, depth: int, parent: str | None) -> Agg:
    if not name or any(c in _ILLEGAL_NAME for c in name):
        raise ParsingError(
            f"Invalid aggregation name [{name}]. Aggregation names can contain any character"
            " except '[', ']', and '>'"
        )
    budget.count += 1
    if budget.count > budget.limits.max_aggs:
        raise BadRequest(f"too many aggregations in the request: the maximum is [{budget.limits.max_aggs}]")
    if not isinstance(body, dict):
        raise ParsingError(f"Expected [START_OBJECT] under aggregation [{name}], found {json_kind(body)}")
    subs_body = None
    meta = None
    type_name: str | None = None
    spec_body: Any = None
    for key, value in body.items():
        if key in ("aggs", "aggregations"):
            if subs_body is not None:
                raise ParsingError(f"Found two sub aggregation definitions under [{name}]")
            subs_body = value
        elif key == "meta":
            if not isinstance(value, dict):
                raise ParsingError(f"[meta] of aggregation [{name}] must be an object")
            meta = value
        elif type_name is not None:
            raise ParsingError(
                f"Found two aggregation type definitions in [{name}]: [{type_name}] and [{key}]"
            )
        else:
            type_name, spec_body = key, value
    if type_name is None:
        raise ParsingError(f"Missing definition for aggregation [{name}]")
    if parent is not None and type_name in _TOP_LEVEL_ONLY:
        raise ParsingError(
            f"Aggregation [{name}] of type [{type_name}] cannot be a sub-aggregation (under [{parent}])"
        )
    spec: AggSpec
    if type_name in budget.pipelines:
        spec = Pipeline(type_name, spec_body)
    else:
        spec_type = SPECS.get(type_name)
        if spec_type is None:
            raise ParsingError(
                f"Unknown aggregation type [{type_name}]", type="named_object_not_found_exception"
            )
        reader = Reader(type_name, name, spec_body)
        spec = spec_type.parse(reader)
        reader.done()
    subs: tuple[Agg, ...] = ()
    if subs_body is not None:
        if not spec.is_bucket and subs_body:
            raise ParsingError(
                f"Aggregator [{name}] of type [{type_name}] cannot accept sub-aggregations",
                type="aggregation_initialization_exception",
            )
        subs = _level(subs_body, budget, depth=depth + 1, parent=name)
    return Agg(name, spec, subs, meta)


def walk(aggs: tuple[Agg, ...]) -> list[Agg]:
    """Every aggregation of the tree, parents before children."""
    out: list[Agg] = []
    for agg in aggs:
        out.append(agg)
        out.extend(walk(agg.subs))
    return out

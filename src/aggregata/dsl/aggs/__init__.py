"""The aggregation DSL: ``parse_aggs`` turns a request's ``aggs`` into typed, frozen nodes.

Importing the package registers every aggregation type (``metrics``, ``buckets``).
"""

from aggregata.dsl.aggs import buckets, metrics
from aggregata.dsl.aggs.params import AggSpec
from aggregata.dsl.aggs.tree import (
    ES_PIPELINE_TYPES,
    MAX_AGGS,
    MAX_BUCKETS,
    MAX_DEPTH,
    Agg,
    AggLimits,
    Pipeline,
    parse_aggs,
    walk,
)

__all__ = [
    "ES_PIPELINE_TYPES",
    "MAX_AGGS",
    "MAX_BUCKETS",
    "MAX_DEPTH",
    "Agg",
    "AggLimits",
    "AggSpec",
    "Pipeline",
    "buckets",
    "metrics",
    "parse_aggs",
    "walk",
]

"""Applying one bucket level to a frame: the dispatch over every bucket aggregation type."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import buckets as b
from aggregata.errors import BadRequest
from aggregata.sql.aggs.buckets import LEVELS, BucketContext, BucketInfo, Level
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.aggs.ranges import (
    FiltersInfo,
    RangeInfo,
    filters_conditions,
    filters_level,
    range_conditions,
    range_level,
)

Info = BucketInfo | RangeInfo | FiltersInfo

_ALL: dict[type[Any], Level] = {
    **LEVELS,
    b.Range: range_level,
    b.DateRange: range_level,
    b.Filters: filters_level,
}


def apply_bucket(frame: Frame, agg: Agg, alias: str, ctx: BucketContext) -> tuple[Frame, Info]:
    """The frame inside one bucket level of ``agg`` (its key, if any, aliased ``alias``)."""
    fn = _ALL.get(type(agg.spec))
    if fn is None:
        raise BadRequest(f"aggregation [{agg.name}] of type [{agg.type_name}] cannot be nested here")
    frame, info = fn(frame, agg, alias, ctx)
    return frame, info


def bucket_conditions(
    frame: Frame, agg: Agg, ctx: BucketContext
) -> tuple[list[exp.Expr], RangeInfo | FiltersInfo] | None:
    """The per-bucket conditions of a condition-defined aggregation (ranges, filters), else ``None``."""
    if isinstance(agg.spec, b.Range):
        return range_conditions(frame, agg, ctx)
    if isinstance(agg.spec, b.Filters):
        return filters_conditions(frame, agg, ctx)
    return None

"""Elasticsearch pipeline aggregations as post-processing of an ``aggregations`` response.

Usage by the search service::

    regular, _ = split_pipelines(body_aggs)    # what SQL computes (no pipeline types)
    plan = plan_pipelines(body_aggs)           # 400s for bad pipelines, before any query
    aggregations = run_sql_aggregations(regular)
    plan.apply(aggregations)                   # or apply_pipelines(body_aggs, aggregations)

Modules: ``paths`` (``buckets_path`` and value resolution), ``parent`` (derivative,
cumulative_sum, moving_avg, moving_fn, serial_diff, bucket_script/selector/sort),
``sibling`` (avg/sum/min/max/stats/extended_stats/percentiles_bucket), ``movfn``
(``MovingFunctions`` and moving_avg models), ``plan`` (tree walk, validation, order).
"""

from aggregata.search.pipeline.plan import (
    PIPELINE_TYPES,
    LevelPlan,
    apply_pipelines,
    plan_pipelines,
    split_pipelines,
)

__all__ = ["PIPELINE_TYPES", "LevelPlan", "apply_pipelines", "plan_pipelines", "split_pipelines"]

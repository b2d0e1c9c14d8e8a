"""Lifecycle: per bucket, the actors who are new, returning, resurrecting, or gone dormant.

PostHog's semantics, for the actors doing a series' event (with its filters) in a bucket:

* **new**: the actor's first event of any kind (their "creation") is in this bucket;
* **returning**: not new, and active in the previous bucket too;
* **resurrecting**: not new, and not active in the previous bucket;
* **dormant**: active in the previous bucket but not in this one — reported as a negative
  number, as PostHog charts it.

The bucket before ``date_from`` is read too, so the first bucket's statuses are right.
Computed with self-joins on a bucket index (a small table of the range's bucket keys),
which both engines run well; read from raw events.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from pydantic import Field
from sqlglot import exp

from aggregata.errors import BadRequest
from aggregata.insights.buckets import Bucket
from aggregata.insights.models import InsightRequest
from aggregata.insights.plan import SeriesPlan, SeriesRequest, TrendsPlan, validate
from aggregata.insights.sources import RawRelation
from aggregata.insights.stickiness import plan_for
from aggregata.insights.trends import number
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Engine

STATUSES = ("new", "returning", "resurrecting", "dormant")


def _c(name: str, table: str) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


MAX_BUCKETS = 1_000


class LifecycleRequest(InsightRequest):
    """``POST /v1/insights/lifecycle`` body."""

    series: list[SeriesRequest] = Field(min_length=1, max_length=10)
    interval: str = "day"
    week_start: str = "monday"


def _index_table(buckets: list[Bucket], params: Params, plan: TrendsPlan) -> exp.Expr:
    """``(k, i)`` for every bucket: 0 is the bucket before the range, 1…N the range's."""
    rows = [
        exp.Tuple(expressions=[plan.bucketing.unit_literal(b.key, params), exp.Literal.number(i)])
        for i, b in enumerate(buckets)
    ]
    return exp.Values(
        expressions=rows,
        alias=exp.TableAlias(
            this=exp.to_identifier("idx"), columns=[exp.to_identifier("k"), exp.to_identifier("i")]
        ),
    )


def _activity(rel: RawRelation, series: SeriesPlan, buckets: list[Bucket], params: Params) -> exp.Select:
    """Distinct ``(a, i, k)``: actor, bucket index and key, over the range and the bucket before."""
    plan = rel.plan
    rows = rel.rows(series, params, buckets[0].start, buckets[-1].end, None, sketch=False)
    keyed = exp.select(
        col("_a").as_("a"), plan.bucketing.key_sql(col("_ts"), buckets[1].start).as_("k")
    ).from_(rows.subquery("r"))
    joined = (
        exp.select(_c("a", "x"), _c("i", "idx"), _c("k", "x"))
        .from_(keyed.subquery("x"))
        .join(
            _index_table(buckets, params, plan),
            on=exp.EQ(this=_c("k", "x"), expression=_c("k", "idx")),
        )
    )
    return joined.distinct()


def _first_seen(plan: TrendsPlan, params: Params, at: Any) -> exp.Select:
    """Each actor's first event of any kind, as a bucket key: when PostHog "created" them."""
    schema = plan.schema
    first = exp.Min(this=col(schema.timestamp))
    inner = (
        exp.select(col(schema.actor).as_("a"), first.as_("f"))
        .from_(exp.table_(schema.collection, quoted=True))
        .group_by(col(schema.actor))
    )
    return exp.select(col("a"), plan.bucketing.key_sql(col("f"), at).as_("fk")).from_(inner.subquery("fs"))


def lifecycle(engine: Engine, body: Any, *, now: Any) -> dict[str, Any]:
    started = time.perf_counter()
    req: LifecycleRequest = validate(LifecycleRequest, body)
    plan = plan_for(req, req.series, req.interval, req.week_start, engine, now)
    period = plan.periods[0]
    if len(period.buckets) > MAX_BUCKETS:
        raise BadRequest(f"lifecycle takes at most {MAX_BUCKETS} buckets; use a coarser interval")
    b = plan.bucketing
    before = period.buckets[0].start - timedelta(microseconds=1)
    first_key = b.bucket_key(before)
    prev = b.buckets(b.start_of(first_key), period.buckets[0].start)
    buckets = [*prev[:1], *period.buckets]
    rel = RawRelation(plan)
    out = []
    for series in plan.series:
        counts = _statuses(engine, rel, series, buckets)
        labels = [x.label for x in period.buckets]
        for status in STATUSES:
            data = [counts.get((i, status), 0) for i in range(1, len(buckets))]
            out.append(
                {"name": series.name, "status": status, "labels": labels, "data": data, "total": sum(data)}
            )
    return {"series": out, "source": "raw", "took": int((time.perf_counter() - started) * 1000)}


def _statuses(
    engine: Engine, rel: RawRelation, series: SeriesPlan, buckets: list[Bucket]
) -> dict[tuple[int, str], int]:
    plan = rel.plan
    params = Params()
    act = _activity(rel, series, buckets, params)
    first = _first_seen(plan, params, buckets[1].start)
    cur, prv, fst = "c", "p", "f"
    one = exp.Literal.number(1)
    prev_on = exp.and_(
        exp.EQ(this=_c("a", prv), expression=_c("a", cur)),
        exp.EQ(this=_c("i", prv), expression=exp.Sub(this=_c("i", cur), expression=one)),
    )
    is_new = exp.EQ(this=_c("fk", fst), expression=_c("k", cur))
    had_prev = exp.Not(this=exp.Is(this=_c("a", prv), expression=exp.Null()))

    def flag(cond: exp.Expr) -> exp.Expr:
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=cond, true=one.copy())], default=exp.Literal.number(0)))

    active = (
        exp.select(
            _c("i", cur).as_("i"),
            flag(is_new).as_("new"),
            flag(exp.and_(exp.Not(this=is_new.copy()), had_prev.copy())).as_("returning"),
            flag(exp.and_(exp.Not(this=is_new.copy()), exp.Not(this=had_prev.copy()))).as_("resurrecting"),
        )
        .from_(act.copy().subquery(cur))
        .join(act.copy().subquery(prv), on=prev_on, join_type="left")
        .join(
            first.subquery(fst),
            on=exp.EQ(this=_c("a", fst), expression=_c("a", cur)),
            join_type="left",
        )
        .where(exp.GTE(this=_c("i", cur), expression=one.copy()))
        .group_by(_c("i", cur))
    )
    next_on = exp.and_(
        exp.EQ(this=_c("a", cur), expression=_c("a", prv)),
        exp.EQ(this=_c("i", cur), expression=exp.Add(this=_c("i", prv), expression=one.copy())),
    )
    gone = exp.Add(this=_c("i", prv), expression=one.copy())
    dormant = (
        exp.select(gone.as_("i"), exp.Count(this=exp.Star()).as_("dormant"))
        .from_(act.copy().subquery(prv))
        .join(act.copy().subquery(cur), on=next_on, join_type="left")
        .where(
            exp.and_(
                exp.Is(this=_c("a", cur), expression=exp.Null()),
                exp.LT(this=_c("i", prv), expression=exp.Literal.number(len(buckets) - 1)),
            )
        )
        .group_by(gone.copy())
    )
    counts: dict[tuple[int, str], int] = {}
    for row in engine.query(active, params.values).to_pylist():
        for status in ("new", "returning", "resurrecting"):
            counts[(int(row["i"]), status)] = int(number(row[status]))
    for row in engine.query(dormant, params.values).to_pylist():
        counts[(int(row["i"]), "dormant")] = -int(number(row["dormant"]))
    return counts

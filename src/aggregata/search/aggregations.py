"""Run the aggregation statements on the engine and shape Elasticsearch's ``aggregations`` object.

The engine computes every count and metric; this module only reads the (bounded) result
rows: it indexes each statement's rows by their parent-bucket keys, walks the request tree
and builds the response, filling what SQL does not return — empty histogram buckets
between the first and last key (``min_doc_count: 0``), zero-count ranges and filters, and
the empty sub-aggregations of empty buckets. The bucket limit is enforced as rows arrive.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from aggregata.dsl.aggs import Agg, AggLimits, Pipeline
from aggregata.dsl.aggs import buckets as b
from aggregata.dsl.aggs import metrics as m
from aggregata.errors import BadRequest
from aggregata.model.mapping import ID_FIELD, Field, FieldType
from aggregata.model.source import unflatten
from aggregata.search.agg_metrics import metric_result
from aggregata.search.formats import format_date, format_number, java_double
from aggregata.sql.aggs import plan as p
from aggregata.sql.aggs.buckets import CompositeInfo, DateHistogramInfo, HistogramInfo, TermsInfo
from aggregata.sql.aggs.chosen import bind_chosen
from aggregata.sql.aggs.dates import bucket_of, next_key
from aggregata.sql.aggs.metrics import MetricPlan, is_metric
from aggregata.sql.aggs.ranges import FiltersInfo, RangeInfo
from aggregata.sql.dialects import render
from aggregata.sql.params import Params
from aggregata.sql.query import time_zone
from aggregata.storage.engine import Engine

Row = dict[str, Any]


def bound_params(tree: exp.Expr, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``tree`` uses (engines reject unused ones)."""
    names = {ph.name for ph in tree.find_all(exp.Placeholder)}
    return {k: v for k, v in values.items() if k in names}


def too_many_buckets(limit: int, count: int) -> BadRequest:
    return BadRequest(
        f"Trying to create too many buckets. Must be less than or equal to: [{limit}] but was [{count}]."
        " This limit can be set by changing the [search.max_buckets] cluster level setting.",
        type="too_many_buckets_exception",
    )


@dataclass
class Executed:
    """Rows of every statement, and what ran (for ``profile``)."""

    rows: list[list[Row]]
    runs: list[dict[str, Any]] = field(default_factory=list)


def execute(
    engine: Engine, plan: p.AggPlan, params: Params, *, timeout: float | None, limits: AggLimits
) -> Executed:
    """Run each statement once (twice when an exact cardinality is needed after HyperLogLog).

    In order: a statement may restrict its rows to the keys an earlier one returned
    (``bind_chosen``), which binds them into ``params``.
    """
    out = Executed([])
    multi = {bp.statement for bp in plan.buckets.values() if not isinstance(bp.agg.spec, _SINGLE)}
    multi |= {bp.domain for bp in plan.buckets.values() if bp.domain is not None}
    for index, statement in enumerate(plan.statements):
        rows = _run(engine, bind_chosen(statement.tree, out.rows, params), params.values, timeout, out)
        if statement.exact is not None and rows and _needs_exact(rows, statement.checks):
            exact_tree = bind_chosen(statement.exact, out.rows, params)
            exact = _run(engine, exact_tree, params.values, timeout, out)
            rows[0].update({alias: exact[0][alias] for alias, _ in statement.checks})
        if index in multi and len(rows) > limits.max_buckets:
            raise too_many_buckets(limits.max_buckets, len(rows))
        out.rows.append(_unpivot(rows, statement.unpivot) if statement.unpivot else rows)
    return out


def _run(
    engine: Engine, tree: exp.Select, params: dict[str, Any], timeout: float | None, out: Executed
) -> list[Row]:
    started = time.perf_counter()
    rows: list[Row] = engine.query(tree, bound_params(tree, params), timeout=timeout).to_pylist()
    out.runs.append({"tree": tree, "ms": (time.perf_counter() - started) * 1000, "rows": len(rows)})
    return rows


def _unpivot(rows: list[Row], unpivot: p.Unpivot) -> list[Row]:
    """One row per non-empty bucket from a pivoted row (``doc_count_0``, ``doc_count_1`` ...)."""
    moved = {column for rename in unpivot.buckets for column in rename}
    out = []
    for row in rows:
        kept = {k: v for k, v in row.items() if k not in moved}
        for index, rename in enumerate(unpivot.buckets):
            bucket = {**kept, unpivot.key: index, **{new: row[old] for old, new in rename.items()}}
            if bucket[p.DOC_COUNT]:
                out.append(bucket)
    return out


def _needs_exact(rows: list[Row], checks: tuple[tuple[str, int], ...]) -> bool:
    return any(row.get(alias) is not None and row[alias] <= limit for row in rows for alias, limit in checks)


_SINGLE = (b.Filter, b.Missing, b.Global, b.Nested, b.ReverseNested)


def _group(rows: list[Row], parents: tuple[str, ...]) -> dict[tuple[Any, ...], list[Row]]:
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[a] for a in parents)].append(row)
    return groups


class Shaper:
    """Builds the response of each aggregation from the executed rows."""

    def __init__(self, index: str, plan: p.AggPlan, rows: list[list[Row]], limits: AggLimits) -> None:
        self.index = index
        self.plan = plan
        self.limits = limits
        self.count = 0
        self.groups: dict[int, dict[tuple[Any, ...], list[Row]]] = {}
        for agg_id, bp in plan.buckets.items():
            self.groups[agg_id] = _group(rows[bp.statement], bp.parents)
        for agg_id, tp in plan.top_hits.items():
            self.groups[agg_id] = _group(rows[tp.statement], tp.parents)
        self.root_row = rows[plan.root][0] if plan.root is not None and rows[plan.root] else None
        self.domains = {
            agg_id: [row[bp.keys[0]] for row in rows[bp.domain]]
            for agg_id, bp in plan.buckets.items()
            if bp.domain is not None
        }

    def response(self, aggs: tuple[Agg, ...]) -> dict[str, Any]:
        root = self.root_row
        count = int(root[p.DOC_COUNT]) if root else 0
        metrics = {id(mp.agg): mp for mp in self.plan.root_metrics}
        return self.level(aggs, (), root, count, metrics)

    def _add_buckets(self, n: int) -> None:
        self.count += n
        if self.count > self.limits.max_buckets:
            raise too_many_buckets(self.limits.max_buckets, self.count)

    def level(
        self,
        aggs: tuple[Agg, ...],
        keys: tuple[Any, ...],
        row: Row | None,
        doc_count: int,
        metrics: dict[int, MetricPlan],
    ) -> dict[str, Any]:
        """The results of sibling aggregations inside one bucket."""
        out: dict[str, Any] = {}
        for agg in aggs:
            if isinstance(agg.spec, Pipeline):
                continue
            if is_metric(agg):
                result = metric_result(metrics[id(agg)], row)
            elif isinstance(agg.spec, m.TopHits):
                result = self._top_hits(agg, keys, doc_count)
            else:
                result = self._bucket_agg(agg, keys)
            out[agg.name] = {"meta": agg.meta, **result} if agg.meta is not None else result
        return out

    def _inside(
        self, bp: p.BucketPlan, keys: tuple[Any, ...], row: Row | None, own: tuple[Any, ...] = ()
    ) -> dict[str, Any]:
        """``doc_count`` and sub-aggregations of one bucket of ``bp``."""
        doc_count = int(row[p.DOC_COUNT]) if row else 0
        inner = keys + (tuple(row[k] for k in bp.keys) if row else own)
        metrics = {id(mp.agg): mp for mp in bp.metrics}
        return {"doc_count": doc_count, **self.level(bp.agg.subs, inner, row, doc_count, metrics)}

    def _bucket_agg(self, agg: Agg, keys: tuple[Any, ...]) -> dict[str, Any]:
        bp = self.plan.buckets[id(agg)]
        rows = self.groups[id(agg)].get(keys, [])
        spec, info = agg.spec, bp.info
        if isinstance(spec, _SINGLE):
            return self._inside(bp, keys, rows[0] if rows else None)
        if isinstance(info, TermsInfo):
            assert isinstance(spec, b.Terms)
            return self._terms(bp, spec, info, keys, rows)
        if isinstance(info, HistogramInfo):
            assert isinstance(spec, b.Histogram)
            return self._histogram(bp, spec, info, keys, rows)
        if isinstance(info, DateHistogramInfo):
            assert isinstance(spec, b.DateHistogram)
            return self._date_histogram(bp, spec, info, keys, rows)
        if isinstance(info, RangeInfo):
            assert isinstance(spec, b.Range)
            return self._ranges(bp, spec, info, keys, rows)
        if isinstance(info, FiltersInfo):
            assert isinstance(spec, b.Filters)
            return self._filters(bp, spec, info, keys, rows)
        assert isinstance(info, CompositeInfo) and isinstance(spec, b.Composite)
        return self._composite(bp, spec, info, keys, rows)

    # -- multi-bucket aggregations -----------------------------------------------------------

    def _terms(
        self, bp: p.BucketPlan, spec: b.Terms, info: TermsInfo, keys: tuple[Any, ...], rows: list[Row]
    ) -> dict[str, Any]:
        total = int(rows[0][p.TOTAL]) if rows else 0
        rows = [row for row in rows if row[p.DOC_COUNT] >= spec.min_doc_count]
        entries: list[tuple[Any, Row | None]] = [(row[bp.keys[0]], row) for row in rows]
        if bp.domain is not None:
            entries = self._with_empty_terms(bp, spec, entries)
        self._add_buckets(len(entries))
        buckets = []
        for value, row in entries:
            bucket = _term_key(value, info.field, spec.format)
            if spec.show_term_doc_count_error:
                bucket["doc_count_error_upper_bound"] = 0
            buckets.append({**bucket, **self._inside(bp, keys, row, (value,))})
        other = total - sum(bk["doc_count"] for bk in buckets)
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}

    def _with_empty_terms(
        self, bp: p.BucketPlan, spec: b.Terms, entries: list[tuple[Any, Row | None]]
    ) -> list[tuple[Any, Row | None]]:
        """``min_doc_count: 0``: every term of the collection, absent ones with zero documents.

        The engine returned the best ``size`` non-empty buckets; merging in the empty ones
        and ordering again here keeps exactly Elasticsearch's ``size`` best, since an empty
        bucket can only take a place, never reorder the non-empty ones.
        """
        present = {value for value, _ in entries}
        merged = entries + [(v, None) for v in self.domains[id(bp.agg)] if v not in present]
        metrics = {mp.agg.name: mp for mp in bp.metrics}

        def value_of(entry: tuple[Any, Row | None], path: str) -> Any:
            value, row = entry
            if path == "_count":
                return int(row[p.DOC_COUNT]) if row else 0
            if path == "_key":
                return value
            name, _, stat = path.partition(".")
            result = metric_result(metrics[name], row)
            return result.get(stat or "value")

        order = list(spec.order)
        if not any(c.path == "_key" for c in order):
            order.append(b.OrderKey("_key", False))
        for criterion in reversed(order):
            known = [e for e in merged if value_of(e, criterion.path) is not None]
            unknown = [e for e in merged if value_of(e, criterion.path) is None]
            known.sort(key=lambda e, c=criterion.path: value_of(e, c), reverse=criterion.desc)  # type: ignore[misc]
            merged = known + unknown
        return merged[: spec.size]

    def _keyed_or_list(self, keyed: bool, buckets: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        if keyed:
            return {"buckets": {name: bucket for name, bucket in buckets}}
        return {"buckets": [bucket for _, bucket in buckets]}

    def _histogram(
        self, bp: p.BucketPlan, spec: b.Histogram, info: HistogramInfo, keys: tuple[Any, ...], rows: list[Row]
    ) -> dict[str, Any]:
        by_index = {int(row[bp.keys[0]]): row for row in rows}
        indexes = sorted(by_index)
        if spec.min_doc_count == 0:
            bounds = [
                math.floor((v - spec.offset) / spec.interval)
                for v in spec.extended_bounds or ()
                if v is not None
            ]
            lo_hi = [*indexes[:1], *indexes[-1:], *bounds]
            if lo_hi:
                lo, hi = min(lo_hi), max(lo_hi)
                hard_lo, hard_hi = info.hard_bounds
                lo = lo if hard_lo is None else max(lo, hard_lo)
                hi = hi if hard_hi is None else min(hi, hard_hi)
                if hi - lo + 1 > self.limits.max_buckets:
                    raise too_many_buckets(self.limits.max_buckets, self.count + hi - lo + 1)
                indexes = list(range(lo, hi + 1))
        self._add_buckets(len(indexes))
        buckets = []
        for idx in indexes:
            key = idx * spec.interval + spec.offset
            bucket: dict[str, Any] = {"key": key}
            if spec.format is not None:
                bucket["key_as_string"] = format_number(key, spec.format)
            bucket.update(self._inside(bp, keys, by_index.get(idx), (idx,)))
            buckets.append((bucket.get("key_as_string") or java_double(key), bucket))
        return self._keyed_or_list(spec.keyed, _order(buckets, spec.order))

    def _date_histogram(
        self,
        bp: p.BucketPlan,
        spec: b.DateHistogram,
        info: DateHistogramInfo,
        keys: tuple[Any, ...],
        rows: list[Row],
    ) -> dict[str, Any]:
        by_key = {int(row[bp.keys[0]]): row for row in rows}
        found = sorted(by_key)
        if spec.min_doc_count == 0:
            found = self._date_gaps(found, info)
        self._add_buckets(len(found))
        buckets = []
        for key in found:
            text = format_date(key, spec.format, info.rule.zone)
            bucket = {"key_as_string": text, "key": key, **self._inside(bp, keys, by_key.get(key), (key,))}
            buckets.append((text, bucket))
        return self._keyed_or_list(spec.keyed, _order(buckets, spec.order))

    def _date_gaps(self, found: list[int], info: DateHistogramInfo) -> list[int]:
        ends = [*found[:1], *found[-1:]]
        if info.extended_bounds is not None:
            ends += [bucket_of(v, info.rule) for v in info.extended_bounds if v is not None]
        if not ends:
            return found
        lo, hi = min(ends), max(ends)
        if info.hard_bounds is not None:
            hard_lo, hard_hi = info.hard_bounds
            if hard_lo is not None:
                start = bucket_of(hard_lo, info.rule)
                lo = max(lo, start if start >= hard_lo else next_key(start, info.rule))
            if hard_hi is not None:
                hi = min(hi, hard_hi)
        out: list[int] = []
        key = lo
        while key <= hi:
            out.append(key)
            if self.count + len(out) > self.limits.max_buckets:
                raise too_many_buckets(self.limits.max_buckets, self.count + len(out))
            key = next_key(key, info.rule)
        return out

    def _ranges(
        self, bp: p.BucketPlan, spec: b.Range, info: RangeInfo, keys: tuple[Any, ...], rows: list[Row]
    ) -> dict[str, Any]:
        by_pos = {int(row[bp.keys[0]]): row for row in rows}
        self._add_buckets(len(info.buckets))
        zone = time_zone(spec.time_zone) if isinstance(spec, b.DateRange) else None
        buckets = []
        for pos, r in enumerate(info.buckets):
            bucket: dict[str, Any] = {}
            ends: list[str] = []
            for name, value in (("from", r.start), ("to", r.end)):
                if value is None:
                    ends.append("*")
                    continue
                bucket[name] = value
                if info.date:
                    text = format_date(value, spec.format, zone) if zone else format_date(value, spec.format)
                    bucket[f"{name}_as_string"] = text
                    ends.append(text)
                else:
                    ends.append(java_double(value))
            key = r.key if r.key is not None else f"{ends[0]}-{ends[1]}"
            bucket = {"key": key, **bucket, **self._inside(bp, keys, by_pos.get(pos), (pos,))}
            buckets.append((key, bucket))
        if spec.keyed:
            return {"buckets": {k: {n: v for n, v in bk.items() if n != "key"} for k, bk in buckets}}
        return {"buckets": [bk for _, bk in buckets]}

    def _filters(
        self, bp: p.BucketPlan, spec: b.Filters, info: FiltersInfo, keys: tuple[Any, ...], rows: list[Row]
    ) -> dict[str, Any]:
        by_pos = {int(row[bp.keys[0]]): row for row in rows}
        names = list(info.keys) + ([info.other] if info.other is not None else [])
        self._add_buckets(len(names))
        buckets = []
        for pos, name in enumerate(names):
            inside = self._inside(bp, keys, by_pos.get(pos), (pos,))
            keyed_name = spec.named and not spec.keyed
            buckets.append((name, {"key": name, **inside} if keyed_name else inside))
        return self._keyed_or_list(spec.keyed, buckets)

    def _composite(
        self, bp: p.BucketPlan, spec: b.Composite, info: CompositeInfo, keys: tuple[Any, ...], rows: list[Row]
    ) -> dict[str, Any]:
        self._add_buckets(len(rows))
        buckets = []
        for row in rows:
            key = {
                src.name: _composite_value(row[alias], src, f)
                for src, alias, f in zip(spec.sources, bp.keys, info.fields, strict=True)
            }
            buckets.append({"key": key, **self._inside(bp, keys, row)})
        out: dict[str, Any] = {}
        if buckets:
            out["after_key"] = dict(buckets[-1]["key"])
        out["buckets"] = buckets
        return out

    # -- top hits -------------------------------------------------------------------------

    def _top_hits(self, agg: Agg, keys: tuple[Any, ...], doc_count: int) -> dict[str, Any]:
        tp = self.plan.top_hits[id(agg)]
        spec = agg.spec
        assert isinstance(spec, m.TopHits)
        rows = self.groups[id(agg)].get(keys, [])
        sorted_ = bool(tp.sort)
        hits = []
        for row in rows:
            hit: dict[str, Any] = {
                "_index": self.index,
                "_id": row[ID_FIELD],
                "_score": None if sorted_ else 1.0,
            }
            if spec.source.enabled:
                hit["_source"] = unflatten({c: row[c] for c in tp.columns})
            if sorted_:
                hit["sort"] = [_sort_value(row[alias]) for _, alias in tp.sort]
            hits.append(hit)
        return {
            "hits": {
                "total": {"value": doc_count, "relation": "eq"},
                "max_score": None if sorted_ or not hits else 1.0,
                "hits": hits,
            }
        }


def _order(
    buckets: list[tuple[str, dict[str, Any]]], order: tuple[b.OrderKey, ...]
) -> list[tuple[str, dict[str, Any]]]:
    """Histogram buckets come sorted by key; other orders (``_count``, ``_key`` desc) sort here."""
    if order == (b.OrderKey("_key", False),):
        return buckets
    out = sorted(buckets, key=lambda kb: kb[1]["key"])
    for criterion in reversed(order):
        field_name = "doc_count" if criterion.path == "_count" else "key"
        out.sort(key=lambda kb, f=field_name: kb[1][f], reverse=criterion.desc)  # type: ignore[misc]
    return out


def _term_key(value: Any, f: Field, fmt: str | None) -> dict[str, Any]:
    if f.type is FieldType.BOOLEAN:
        return {"key": 1 if value else 0, "key_as_string": "true" if value else "false"}
    if f.type is FieldType.DATE:
        return {"key": int(value), "key_as_string": format_date(int(value), fmt)}
    if f.type is FieldType.LONG:
        out: dict[str, Any] = {"key": int(value)}
    elif f.type is FieldType.DOUBLE:
        out = {"key": float(value)}
    else:
        return {"key": value}
    if fmt is not None:
        out["key_as_string"] = format_number(out["key"], fmt)
    return out


def _composite_value(value: Any, src: b.CompositeSource, f: Field) -> Any:
    if value is None:
        return None
    if src.kind == "date_histogram" or (src.kind == "terms" and f.type is FieldType.DATE):
        return format_date(int(value), src.format) if src.format else int(value)
    if src.kind == "histogram":
        return float(value)
    if f.type is FieldType.LONG:
        return int(value)
    if f.type is FieldType.DOUBLE:
        return float(value)
    return value


def _sort_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


def aggregation_runs(executed: Executed, dialect: str) -> Iterator[dict[str, Any]]:
    """Profile entries: each statement's SQL, rows and time."""
    for run in executed.runs:
        yield {"sql": render(run["tree"], dialect), "rows": run["rows"], "time_ms": round(run["ms"], 3)}

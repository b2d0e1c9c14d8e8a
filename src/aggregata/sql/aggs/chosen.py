"""The rows inside the buckets a parent ``terms`` (or ``composite``) selected.

A sub-aggregation of a ``terms`` only sees the rows of the buckets its parent selected.
The parent's own statement already ranks them, and it runs first, so its keys can be bound
as parameters (``key IN ($p5, $p6, ...)``) instead of ranking the buckets again in a CTE
(``key IN (SELECT key ... ORDER BY COUNT(*) DESC LIMIT n)``), which reads the data a second
time. The compiler leaves a ``ChosenKeys`` node where the list goes; the executor replaces it
(``bind_chosen``) once the parent's rows are known, before the statement is rendered.
Parents below other keyed levels, ``composite`` parents and large ``size``s keep the CTE
(``in_selection``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import buckets as b
from aggregata.model.mapping import FieldType
from aggregata.sql.aggs.composite import CompositeKeys
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.params import Params
from aggregata.sql.query import col

MAX_BOUND_KEYS = 1000
"""Parents selecting more buckets than this are restricted with a CTE instead."""


class ChosenKeys(exp.Expression):
    """``this IN (keys)``: the keys in column ``column`` of statement ``statement``'s rows.

    Only rows with at least ``minimum`` documents (column ``count``) count: a ``terms``
    statement may return buckets below its ``min_doc_count`` (see ``Planner._rank_terms``).
    Never rendered: ``bind_chosen`` replaces it first.
    """

    arg_types: ClassVar[dict[str, bool]] = {
        "this": True,
        "statement": True,
        "column": True,
        "count": True,
        "minimum": True,
    }


def bound_selection(
    agg: Agg, frame: Frame, statement: int, keys: tuple[str, ...], count: str
) -> ChosenKeys | None:
    """The buckets of ``agg`` as the keys its statement returns, if it is a ``terms`` alone on its key.

    ``None`` (use a CTE) below other keyed levels, for ``composite`` and for large sizes.
    """
    spec = agg.spec
    if not isinstance(spec, b.Terms) or len(frame.keys) != 1 or len(keys) != 1 or spec.size > MAX_BOUND_KEYS:
        return None
    key = frame.keys[0][1].copy()
    return ChosenKeys(this=key, statement=statement, column=keys[0], count=count, minimum=spec.min_doc_count)


def bind_chosen(tree: exp.Select, rows: list[list[dict[str, Any]]], params: Params) -> exp.Select:
    """``tree`` with each ``ChosenKeys`` turned into ``key IN (bound keys)``, or ``FALSE`` if none."""
    if next(tree.find_all(ChosenKeys), None) is None:
        return tree
    bound = tree.copy()
    for marker in list(bound.find_all(ChosenKeys)):
        column, count, minimum = marker.args["column"], marker.args["count"], marker.args["minimum"]
        keys = [
            row[column]
            for row in rows[marker.args["statement"]]
            if row[column] is not None and row[count] >= minimum
        ]
        values: list[exp.Expr] = [params.bind(key) for key in dict.fromkeys(keys)]
        marker.replace(exp.In(this=marker.this, expressions=values) if values else exp.false())
    return bound


def in_selection(frame: Frame, cte: str, nullable: dict[str, exp.Expr]) -> exp.Expr:
    """``(keys) IN (SELECT keys FROM cte)``: the rows inside the buckets a parent selected.

    A key that may be NULL (a composite ``missing_bucket``) takes part as the NULL-free
    pair ``(key IS NULL, COALESCE(key, default))``, because ``IN`` never matches NULL.
    """
    targets: list[exp.Expr] = []
    columns: list[exp.Expr] = []
    for alias, expr in frame.keys:
        default = nullable.get(alias)
        if default is None:
            targets.append(expr.copy())
            columns.append(col(alias))
            continue
        for value, side in ((expr, targets), (col(alias), columns)):
            side.append(exp.Is(this=value.copy(), expression=exp.Null()))
            side.append(exp.Coalesce(this=value.copy(), expressions=[default.copy()]))
    chosen = exp.select(*columns).from_(exp.table_(cte))
    target = targets[0] if len(targets) == 1 else exp.Tuple(expressions=targets)
    return exp.In(this=target, query=chosen.subquery())


def missing_keys(agg: Agg, alias: str, info: object) -> dict[str, exp.Expr]:
    """Key columns of ``agg`` that can be NULL, with a non-NULL stand-in of their type."""
    if not isinstance(agg.spec, b.Composite) or not isinstance(info, CompositeKeys):
        return {}
    out: dict[str, exp.Expr] = {}
    for i, (src, f) in enumerate(zip(agg.spec.sources, info.info.fields, strict=True)):
        if not src.missing_bucket:
            continue
        if src.kind == "terms" and f.type is FieldType.KEYWORD:
            out[f"{alias}_{i}"] = exp.Literal.string("")
        elif src.kind == "terms" and f.type is FieldType.BOOLEAN:
            out[f"{alias}_{i}"] = exp.false()
        else:
            out[f"{alias}_{i}"] = exp.Literal.number(0)
    return out

"""``top_hits``: the best documents of every bucket, ranked in SQL with ``ROW_NUMBER()``.

One statement returns the hits of all buckets at once: rows of the bucket frame, numbered
per bucket by the requested sort (``_id`` breaks ties, so pages are stable), and only
``from < rank <= from + size`` kept.
"""

from __future__ import annotations

from sqlglot import exp

from aggregata.dsl.aggs import Agg
from aggregata.dsl.aggs import metrics as m
from aggregata.errors import BadRequest
from aggregata.model.mapping import ID_FIELD, FieldType, Mapping
from aggregata.sql.aggs.frame import Frame
from aggregata.sql.query import col
from aggregata.sql.search import source_columns

RANK = "rank"
_UNSORTABLE = frozenset({FieldType.NESTED, FieldType.GEO_POINT, FieldType.DENSE_VECTOR, FieldType.TEXT})


def top_hits_select(
    agg: Agg, frame: Frame, mapping: Mapping, max_buckets: int
) -> tuple[exp.Select, list[str], list[tuple[str, str]]]:
    """The statement, the ``_source`` columns, and (field, column) of each sort value."""
    spec = agg.spec
    assert isinstance(spec, m.TopHits)
    if frame.scope.nested_path is not None:
        raise BadRequest(f"[top_hits] aggregation [{agg.name}] is not supported inside a nested aggregation")
    columns = source_columns(mapping, spec.source)
    order: list[exp.Ordered] = []
    sort: list[tuple[str, str]] = []
    for i, key in enumerate(spec.sort):
        if key.field in ("_score", "_doc"):
            continue
        f = mapping.get(key.field)
        if key.field != ID_FIELD and (f is None or f.type in _UNSORTABLE or f.array):
            raise BadRequest(f"[top_hits] aggregation [{agg.name}] cannot sort on field [{key.field}]")
        order.append(exp.Ordered(this=col(key.field), desc=key.descending, nulls_first=key.missing_first))
        sort.append((key.field, f"s{i}"))
    order.append(exp.Ordered(this=col(ID_FIELD), desc=False, nulls_first=False))
    selects: list[exp.Expr] = frame.key_projections()
    selects += [col(c) for c in dict.fromkeys([ID_FIELD, *columns])]
    selects += [exp.alias_(col(fname), alias, quoted=True) for fname, alias in sort]
    select = exp.select(*selects).from_(frame.source.copy())
    condition = frame.condition()
    if condition is not None:
        select = select.where(condition)
    parents = [e for _, e in frame.keys if not isinstance(e, exp.Literal)]
    if not parents:
        select = select.order_by(*order).limit(spec.size)
        return (select.offset(spec.offset) if spec.offset else select), columns, sort
    rank = exp.Window(
        this=exp.RowNumber(), partition_by=[p.copy() for p in parents], order=exp.Order(expressions=order)
    )
    keep = exp.and_(
        exp.GT(this=rank.copy(), expression=exp.Literal.number(spec.offset)),
        exp.LTE(this=rank.copy(), expression=exp.Literal.number(spec.offset + spec.size)),
    )
    select = select.select(exp.alias_(rank, RANK, quoted=True)).qualify(keep)
    select = select.order_by(*[col(a) for a, _ in frame.keys], col(RANK))
    return select.limit((max_buckets + 1) * max(spec.size, 1)), columns, sort

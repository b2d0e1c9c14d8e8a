"""A search request → the SQL trees for its hits and its total count.

The aggregation compiler adds its statements beside these; all share one ``Params``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from aggregata.dsl.search import SearchRequest, SourceFilter
from aggregata.errors import BadRequest
from aggregata.model.mapping import ID_FIELD, FieldType, Mapping
from aggregata.sql.ddl import table
from aggregata.sql.params import Params
from aggregata.sql.query import QueryContext, col, compile_query

_UNSORTABLE = frozenset({FieldType.NESTED, FieldType.GEO_POINT, FieldType.DENSE_VECTOR, FieldType.TEXT})


@dataclass
class CompiledSearch:
    """Trees to run for one search, plus what shaping the response needs."""

    where: exp.Expr
    hits: exp.Select | None
    total: exp.Select | None
    columns: list[str]
    sort_fields: list[str]
    params: Params = field(default_factory=Params)


def source_columns(mapping: Mapping, source: SourceFilter) -> list[str]:
    """Mapped fields selected by ``_source`` includes/excludes (wildcards and object prefixes)."""
    if not source.enabled:
        return []

    def matches(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)

    names = [f.name for f in mapping]
    if source.includes:
        names = [n for n in names if matches(n, source.includes)]
    return [n for n in names if not matches(n, source.excludes)]


def _order(request: SearchRequest, mapping: Mapping) -> tuple[list[exp.Ordered], list[str]]:
    order: list[exp.Ordered] = []
    names: list[str] = []
    for key in request.sort:
        if key.field in ("_score", "_doc"):
            continue
        if key.field != ID_FIELD:
            f = mapping.get(key.field)
            if f is None:
                raise BadRequest(f"No mapping found for [{key.field}] in order to sort on")
            if f.type in _UNSORTABLE or f.array:
                raise BadRequest(f"field [{key.field}] of type [{f.type.value}] cannot be used for sorting")
        order.append(exp.Ordered(this=col(key.field), desc=key.descending, nulls_first=key.missing_first))
        names.append(key.field)
    order.append(exp.Ordered(this=col(ID_FIELD), desc=False, nulls_first=False))
    return order, names


def compile_search(request: SearchRequest, name: str, mapping: Mapping, *, now: datetime) -> CompiledSearch:
    """Compile the hit page and total-count statements of a search."""
    params = Params()
    where = compile_query(request.query, QueryContext(mapping, params, now))
    columns = source_columns(mapping, request.source)
    order, sort_fields = _order(request, mapping)
    hits = None
    if request.size > 0:
        selected = dict.fromkeys([ID_FIELD, *columns, *sort_fields])
        # Fresh nodes throughout: the builders may take them without copying.
        hits = (
            exp.select(*[col(c) for c in selected], copy=False)
            .from_(table(name), copy=False)
            .where(where.copy(), copy=False)
            .order_by(*order, copy=False)
            .limit(exp.Literal.number(request.size), copy=False)
        )
        if request.offset:
            hits = hits.offset(exp.Literal.number(request.offset), copy=False)
    total = None
    track = request.track_total_hits
    if track is True:
        total = exp.select(exp.Count(this=exp.Star()), copy=False).from_(table(name), copy=False)
        total = total.where(where.copy(), copy=False)
    elif track is not False and isinstance(track, int):
        capped = exp.select(exp.Literal.number(1), copy=False).from_(table(name), copy=False)
        capped = capped.where(where.copy(), copy=False).limit(exp.Literal.number(track + 1), copy=False)
        total = exp.select(exp.Count(this=exp.Star()), copy=False)
        total = total.from_(capped.subquery("capped", copy=False), copy=False)
    return CompiledSearch(where, hits, total, columns, sort_fields, params)

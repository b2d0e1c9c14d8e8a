"""Building blocks of the funnel query: a chain of SELECTs, and small tree helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from aggregata.sql.lists import ListIndexWhere, ListZipMap
from aggregata.sql.query import col

ONE, ZERO = exp.Literal.number(1), exp.Literal.number(0)


@dataclass(frozen=True)
class Compiled:
    """A query and its bound parameters."""

    tree: exp.Select
    params: dict[str, Any]


class Layers:
    """A chain of SELECTs (common table expressions), each over the one before.

    Each layer selects the live columns of the layer below plus new ones. CTEs keep the
    tree flat however many steps there are (nested subqueries would be ~100 levels deep,
    too deep to render); each is read once, so both engines inline them.
    """

    def __init__(self, first: exp.Select, columns: Sequence[str]) -> None:
        self.ctes: list[tuple[str, exp.Select]] = [("_l0", first)]
        self.columns = list(columns)

    @property
    def source(self) -> exp.Table:
        """The last layer, to select from (the query must then go through ``finish``)."""
        return exp.table_(self.ctes[-1][0], quoted=True)

    def add(
        self, new: Mapping[str, exp.Expr], *, drop: Iterable[str] = (), where: exp.Expr | None = None
    ) -> None:
        """A layer with ``new`` columns, without ``drop``; ``where`` filters the layer below."""
        gone = set(drop) | set(new)
        keep = [c for c in self.columns if c not in gone]
        select = exp.select(*[col(c) for c in keep], *[exp.alias_(e, n, quoted=True) for n, e in new.items()])
        select = select.from_(self.source, copy=False)
        if where is not None:
            select = select.where(where, copy=False)
        self.ctes.append((f"_l{len(self.ctes)}", select))
        self.columns = keep + list(new)

    def drop(self, *names: str) -> None:
        """Stop carrying ``names`` into the next layer."""
        self.columns = [c for c in self.columns if c not in names]

    def finish(self, query: exp.Select) -> exp.Select:
        """``query`` (which reads ``source``) with every layer as a CTE."""
        for name, layer in self.ctes:
            query = query.with_(exp.to_identifier(name, quoted=True), as_=layer, copy=False)
        return query

    @property
    def tree(self) -> exp.Select:
        """The last layer's columns as a query."""
        return self.finish(exp.select(*[col(c) for c in self.columns]).from_(self.source, copy=False))


def var(name: str) -> exp.Column:
    """A lambda variable of a ``zip_map`` body."""
    return exp.column(name)


def zip_map(body: exp.Expr, arrays: Mapping[str, str | exp.Expr]) -> ListZipMap:
    """``body`` over the elements of ``arrays`` (lambda variable → list column or expression)."""
    return ListZipMap(
        this=body,
        names=[exp.to_identifier(n) for n in arrays],
        arrays=[col(a) if isinstance(a, str) else a for a in arrays.values()],
    )


def case_when(cond: exp.Expr, then: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Case:
    case = exp.Case(ifs=[exp.If(this=cond, true=then)])
    return case.else_(otherwise) if otherwise is not None else case


def element(column: str, index: exp.Expr) -> exp.Bracket:
    """``column[index]``, 1-based in both engines (``offset=1`` stops sqlglot shifting it)."""
    return exp.Bracket(this=col(column), expressions=[index], offset=1)


def number(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def int64(value: int | exp.Expr) -> exp.Cast:
    """A signed 64-bit integer: ClickHouse types big literals and lengths as unsigned, and
    will not mix them with signed times in one list."""
    kind = exp.DataType.build("BIGINT")
    kind.set("nullable", False)
    return exp.cast(number(value) if isinstance(value, int) else value, kind)


# -- reading the actor's element lists by index (``ListIndexWhere`` / ``ListIndexMap`` bodies) --

INDEX = "_i"
"""The index variable of ``ListIndexWhere``/``ListIndexMap`` bodies."""


def at(column: str, offset: int = 0) -> exp.Bracket:
    """``column[_i + offset]``: a list read at the index variable. Out of range is NULL in
    DuckDB and the type's default in ClickHouse (and a negative index counts from the end in
    both), so bodies guard the reads they make near the ends."""
    index: exp.Expr = var(INDEX)
    if offset:
        index = exp.Add(this=index, expression=number(offset))
    return element(column, index)


def index_where(body: exp.Expr, over: str = "_ms") -> ListIndexWhere:
    """The positions of list ``over`` where ``body`` (reading lists with ``at``) holds."""
    return ListIndexWhere(this=body, index=exp.to_identifier(INDEX), over=col(over))


def capped(position: exp.Expr) -> exp.Expr:
    """``min(position, n)``: "none" (n+1) read from an n-element pointer list as its last
    element, which is "none" too. The engines' own ``least`` (both spell it so), not
    sqlglot's NULL-checking CASE around DuckDB's: positions are never NULL."""
    return exp.Anonymous(this="least", expressions=[position, col("_n")])


def has_bit(value: exp.Expr, bit: int) -> exp.Expr:
    return exp.NEQ(this=exp.BitwiseAnd(this=value, expression=number(bit)), expression=ZERO.copy())

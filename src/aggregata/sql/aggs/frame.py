"""The row source a bucket aggregation groups: a FROM item, its conditions and the keys so far.

Walking from the root to an aggregation, each bucket level narrows the rows (``filter``,
a parent's selected ``terms``), adds a key column (``terms``, ``histogram``), or changes
what a row is (``nested``: one row per nested object). Most levels only add an expression;
a level whose key comes from an array (a multi-valued field, overlapping ranges, filters)
*materializes* the frame into a subquery that unnests it, so each document counts once
per bucket while plain levels stay one flat ``SELECT ... WHERE ... GROUP BY``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from sqlglot import exp

from aggregata.sql.aggs.scope import Scope
from aggregata.sql.query import col


def projection(alias: str, expr: exp.Expr) -> exp.Expr:
    """``expr AS alias``, or just the column when it already has that name."""
    if isinstance(expr, exp.Column) and expr.name == alias and not expr.table:
        return expr.copy()
    return exp.alias_(expr.copy(), alias, quoted=True)


@dataclass
class Frame:
    """Rows (``source`` filtered by ``where``) and key expressions (alias → SQL) per level."""

    source: exp.Expr
    where: list[exp.Expr]
    keys: list[tuple[str, exp.Expr]]
    scope: Scope
    counter: Iterator[int] = field(default_factory=itertools.count)

    def fork(self) -> Frame:
        return replace(self, where=list(self.where), keys=list(self.keys))

    def key_projections(self) -> list[exp.Expr]:
        return [projection(alias, expr) for alias, expr in self.keys]

    def key_exprs(self) -> list[exp.Expr]:
        return [e.copy() for _, e in self.keys]

    def condition(self) -> exp.Expr | None:
        return exp.and_(*[w.copy() for w in self.where]) if self.where else None

    def materialize(self, extra: Sequence[tuple[str, exp.Expr]]) -> Frame:
        """``SELECT *, <keys>, <extra> FROM source WHERE ...`` as a subquery; keys become its columns."""
        projections: list[exp.Expr] = [exp.Star()]
        keys: list[tuple[str, exp.Expr]] = []
        for alias, expr in self.keys:
            if not (isinstance(expr, exp.Column) and expr.name == alias):
                projections.append(exp.alias_(expr.copy(), alias, quoted=True))
            keys.append((alias, col(alias)))
        projections += [exp.alias_(expr, alias, quoted=True) for alias, expr in extra]
        select = exp.select(*projections).from_(self.source.copy())
        condition = self.condition()
        if condition is not None:
            select = select.where(condition)
        name = f"__r{next(self.counter)}"
        return Frame(select.subquery(name), [], keys, self.scope, self.counter)

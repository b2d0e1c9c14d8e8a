"""``hits.total`` counted by a top-level bucket statement, so a search runs no count of its own.

A top-level ``terms``, ``histogram`` or ``date_histogram`` reads exactly the rows the
query matches, except those missing its key (``WHERE key IS NOT NULL``). Grouping those
too, as one more bucket, makes ``SUM(COUNT(*)) OVER ()`` the hit count; ``QUALIFY`` then
drops that bucket before ranking and ``LIMIT``, so the buckets are the same as before.
``sum_other_doc_count``'s ``total`` leaves the missing bucket out (``ranking.rank_terms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from aggregata.dsl.aggs import buckets as b
from aggregata.sql.aggs.frame import Frame

HITS = "__hits"
"""The column holding the hit count (``AggPlan.hits``)."""


@dataclass(frozen=True)
class Fold:
    """A statement that counts the hits; ``not_null`` is the key test moved to ``QUALIFY``."""

    not_null: exp.Expr | None

    def apply(self, select: exp.Select) -> exp.Select:
        """Add the hit count (and the moved key test) to ``select``, in place."""
        hits = exp.Window(this=exp.Sum(this=exp.Count(this=exp.Star())))
        select = select.select(exp.alias_(hits, HITS, quoted=True), copy=False)
        return select.qualify(self.not_null, copy=False) if self.not_null is not None else select


def fold_hits(frame: Frame, spec: Any, own: list[tuple[str, exp.Expr]], root_conditions: int) -> Fold | None:
    """Whether this top-level statement can count the hits too; if so its key test leaves ``frame``.

    Only a flat statement (no unnesting) whose level added nothing to the first
    ``root_conditions`` (the query) but its key's ``IS NOT NULL``. A ``HAVING`` (histogram
    ``min_doc_count``) would hide groups from the count, so those keep their own count.
    """
    if not isinstance(spec, b.Terms | b.Histogram | b.DateHistogram) or len(own) != 1:
        return None
    if not isinstance(spec, b.Terms) and spec.min_doc_count > 1:
        return None
    if not isinstance(frame.source, exp.Table):
        return None
    added = frame.where[root_conditions:]
    if not added:
        return Fold(None)
    test = added[0]
    if len(added) > 1 or not (isinstance(test, exp.Not) and isinstance(test.this, exp.Is)):
        return None
    column, key = test.this.this, own[0][1]
    if not isinstance(column, exp.Column) or not any(c == column for c in key.find_all(exp.Column)):
        return None
    frame.where.pop()
    # The key is NULL exactly when its column is (every key expression is strict in it), and
    # unlike the column it is grouped, so ``QUALIFY`` can test it.
    return Fold(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))

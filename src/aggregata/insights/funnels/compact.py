"""Dropping events that cannot change an ordered funnel's answer, before the work per event.

After the sort, every list operation of the funnel costs time per element, and in most
funnels most elements are repeats: a run of pageviews between two other events. Both rules
here apply to ordered funnels without exclusions, over packed elements (``elements.py``),
and keep every attempt that can be the chosen one with its exact path; each is one filter
over the sorted list.

**Entries only** (``compact_entries``, when step 0's condition is used by no later step):
an element that is only an entry matters only as an entry, and an entry directly followed
by another such element is dominated by it — both reach the same step-1 event and what
follows, the later one with more window left, and the chosen attempt is the latest entry
with the best level. Such elements carry ``only_bit``, which sorts them last among the
events at one time, so no step-1 event can share the later one's time.

**Runs** (``compact_runs``, when step 0's event differs from step 1's, so no event is
both an entry and a step-1 event): take a run of elements with the same mask at strictly
increasing times. An attempt can only step into the run at its first element (each step is
the *first* matching event after the previous one) and then walks it one element per step
while the steps' conditions are in the mask: at most ``bound`` elements, the longest
stretch of consecutive steps one event can match. An entry in the run is dominated by the
next element. So an element can go when the ``bound`` elements before it and the one after
it are in its run. The argument:

* element i is used as step k ≥ 1 only if step k-1 is at the time of element i-1, which
  (alone at its time) is element i-1 itself; by induction steps k-j are at i-j for
  j ≤ ``bound``: ``bound`` + 1 consecutive steps matching one mask (impossible) or an
  entry whose step 1 matches its own mask (excluded). Hence "alone at its time" for the
  ``bound`` + 1 elements up to i;
* an entry at i is dominated by the entry at i+1 (same mask, strictly later): no step-1
  event lies between them, nor at i+1's time: it would sort before i+1, whose mask has
  the entry bit (its top bit), so it would come between i and i+1. Both reach the same
  step-1 event and what follows, i+1 with more window left.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from aggregata.insights.funnels.layers import INDEX, ZERO, Layers, at, case_when, index_where, number, var
from aggregata.insights.funnels.models import FunnelStep
from aggregata.sql.lists import ListIndexMap, ListLen, ListSelect
from aggregata.sql.query import col

MAX_RUN_BOUND = 3
"""Longer stretches of steps one event can match (steps without an event, repeated events)
would make each element's test read more neighbours than the filter saves."""


def compact_entries(layers: Layers, only_bit: int) -> None:
    """Drop elements that are only an entry and directly followed by another such element."""

    def other(offset: int) -> exp.Expr:
        only = exp.BitwiseAnd(this=at("_ms", offset), expression=number(only_bit))
        return exp.EQ(this=only, expression=ZERO.copy())

    last = exp.GTE(this=var(INDEX), expression=ListLen(this=col("_ms")))
    keep = exp.or_(last, other(0), other(1))
    layers.add({"_ms": ListSelect(this=col("_ms"), indexes=index_where(keep))})


def run_bound(steps: Sequence[FunnelStep]) -> int | None:
    """The longest stretch of consecutive steps after the entry that one event could match
    (steps naming different events cannot match the same one), or None when the rule does
    not apply: step 1 could match an entry, or the stretch is over ``MAX_RUN_BOUND``."""
    names = [s.event for s in steps]
    if names[0] is None or names[1] is None or names[0] == names[1]:
        return None
    bound = 0
    for k in range(1, len(names)):
        seen: str | None = None
        length = 0
        for name in names[k:]:
            if name is not None and seen is not None and name != seen:
                break
            seen = seen or name
            length += 1
        bound = max(bound, length)
    return bound if bound <= MAX_RUN_BOUND else None


def compact_runs(layers: Layers, shift: int, bound: int) -> None:
    """Drop the elements inside runs (see the module docstring).

    ``_rn[i]``: 1 when element i is strictly later than the one before (or first), plus 2
    when it has the same mask; so 3 means "continues the run, alone at its time so far".
    """
    n = ListLen(this=col("_ms"))
    i = var(INDEX)
    low = number((1 << shift) - 1)

    def time(offset: int) -> exp.Expr:
        return exp.BitwiseRightShift(this=at("_ms", offset), expression=number(shift))

    def mask(offset: int) -> exp.Expr:
        return exp.BitwiseAnd(this=at("_ms", offset), expression=low.copy())

    later = case_when(exp.LT(this=time(-1), expression=time(0)), number(1), ZERO.copy())
    same = case_when(exp.EQ(this=mask(-1), expression=mask(0)), number(2), ZERO.copy())
    first = exp.EQ(this=i.copy(), expression=number(1))
    run = ListIndexMap(
        this=case_when(first, number(1), exp.Add(this=later, expression=same)),
        index=exp.to_identifier(INDEX),
        over=col("_ms"),
    )
    layers.add({"_rn": run})

    def continues(offset: int) -> exp.Expr:
        return exp.EQ(this=at("_rn", offset), expression=number(3))

    def alone(offset: int) -> exp.Expr:
        odd = exp.BitwiseAnd(this=at("_rn", offset), expression=number(1))
        return exp.EQ(this=odd, expression=number(1))

    def beyond(offset: int) -> exp.Expr:
        return exp.GT(this=exp.Add(this=i.copy(), expression=number(offset)), expression=n.copy())

    # The next element continues the run; this one and the ``bound - 1`` before continue
    # it too, and the one before those is alone at its time (it exists: the first element
    # never continues a run).
    after = exp.and_(exp.Not(this=exp.Paren(this=beyond(1))), continues(1))
    before = [continues(-j) for j in range(bound)] + [alone(-bound)]
    drop = exp.and_(after, *before)
    keep = index_where(exp.Not(this=exp.Paren(this=drop)))
    layers.add({"_ms": ListSelect(this=col("_ms"), indexes=keep)}, drop=["_rn"])

"""Funnel phases 1-3: each actor's events as lists sorted by time, and next-pointers.

Most of a funnel's cost is here, in work per *event* (later phases work per attempt, far
fewer once merged), so every list operation per event counts:

* **One sorted list.** Times become µs offsets from the range's start, and when the span
  and the conditions fit in 62 bits (97 days, a 90-day range with a 7-day window, with up
  to 17 conditions; ten years with 11), time and condition bits are packed into one
  integer, ``offset << bits | mask``: ``GROUP BY`` collects one list instead of two and
  sorts it as plain integers (``ListSort``), where grading the times and gathering both
  lists by the grades took twice as long. Otherwise, and with a breakdown or trend buckets
  (which need more fields), a list of tuples is sorted.
* **Less to sort and follow** (ordered funnels without exclusions): an actor without a
  step-1 event gets a one-element list (their latest entry), and ``compact.py`` drops,
  in one filter, the events that cannot change the answer.
* **Positions in one pass** (``ListIndexWhere``: a filter over the indexes), no boolean
  list in between; only conditions some step after the entry (or an exclusion) looks for
  get a bit, so a pageview-first funnel does not test pageviews for step 0 again.
"""

from __future__ import annotations

from datetime import timedelta

from sqlglot import exp

from aggregata.insights.funnels.compact import compact_entries, compact_runs, run_bound
from aggregata.insights.funnels.layers import (
    INDEX,
    ONE,
    ZERO,
    Layers,
    at,
    capped,
    case_when,
    element,
    has_bit,
    index_where,
    int64,
    number,
    var,
    zip_map,
)
from aggregata.insights.funnels.plan import FunnelPlan, epoch_us
from aggregata.sql.lists import (
    LIST_NONE,
    EpochMicros,
    ListAgg,
    ListConcat,
    ListIndexMap,
    ListLen,
    ListNextOf,
    ListPrevOf,
    ListSelect,
    ListSort,
    TupleGet,
    TupleOf,
)
from aggregata.sql.query import col

PACK_BITS = 62
"""Packed elements ``offset << bits | mask`` stay below 2**62: signed 64-bit with room to spare."""


class FunnelLists:
    """Phases 1-3 of ``FunnelSQL``: rows, the actor's elements, next-pointers and entries.

    Masks: the j-th condition of ``conds`` is bit j, the entry bit is above them.
    """

    def __init__(self, plan: FunnelPlan) -> None:
        self.plan = plan
        self.params = plan.params
        self.window = plan.params.bind(plan.window_us)
        self.dedupe = plan.order == "ordered" and not plan.exclusion_cond
        self.conds = self._conditions()
        self.bit = {c: 1 << j for j, c in enumerate(self.conds)}
        self.entry_bit = 1 << len(self.conds)
        # ``compact_entries`` marks elements that are only an entry with one more bit.
        self.compact = self.dedupe and plan.step_cond[0] not in self.conds
        self.only_bit = self.entry_bit << 1
        self.shift = len(self.conds) + 1 + self.compact
        span = epoch_us(plan.end) - epoch_us(plan.start) + plan.window_us
        plain = plan.breakdown is None and plan.bucketing is None
        self.packed = plain and span < 1 << (PACK_BITS - self.shift)
        self.runs = run_bound(plan.req.steps) if self.dedupe and not self.compact else None

    def _conditions(self) -> list[int]:
        """Conditions some step after the entry (or an exclusion) looks for."""
        p = self.plan
        steps = p.step_cond if p.order == "unordered" else p.step_cond[1:]
        return sorted({*steps, *p.exclusion_cond})

    # -- 1-2: rows and elements -----------------------------------------------------------

    def _rows(self) -> exp.Select:
        p, schema = self.plan, self.plan.schema
        ts, actor = schema.column(schema.timestamp), schema.column(schema.actor)
        until = p.end + timedelta(seconds=p.req.window.seconds)
        where = [
            exp.GTE(this=ts.copy(), expression=self.params.bind(p.start)),
            exp.LT(this=ts.copy(), expression=self.params.bind(until)),
            exp.Not(this=exp.Is(this=actor.copy(), expression=exp.Null())),
            p.global_filter,
        ]
        if p.events is not None:
            event = schema.column(schema.event)
            where.append(exp.In(this=event, expressions=[self.params.bind(e) for e in p.events]))
        entry_steps = p.step_cond if p.order == "unordered" else p.step_cond[:1]
        entry = exp.and_(  # (rows are at or after ``start`` already)
            exp.or_(*[p.conditions[c].copy() for c in sorted(set(entry_steps))]),
            exp.LT(this=ts.copy(), expression=self.params.bind(p.end)),
        )
        mask: exp.Expr = case_when(entry, number(self.entry_bit), ZERO)
        for c in self.conds:
            mask = exp.Add(this=mask, expression=case_when(p.conditions[c].copy(), number(self.bit[c]), ZERO))
        offset = exp.Sub(this=EpochMicros(this=ts), expression=self.params.bind(epoch_us(p.start)))
        cols = [
            exp.alias_(actor, "_a", quoted=True),
            exp.alias_(offset, "_t", quoted=True),
            exp.alias_(mask, "_m", quoted=True),
        ]
        if p.breakdown is not None:
            cols.append(exp.alias_(p.breakdown.copy(), "_b", quoted=True))
        if p.bucketing is not None:
            cols.append(exp.alias_(p.bucketing.key_sql(ts.copy(), p.start), "_u", quoted=True))
        table = exp.table_(schema.collection, quoted=True)
        return exp.select(*cols).from_(table).where(exp.and_(*where), copy=False)

    def _elements(self) -> Layers:
        """``_ts``: the actor's time offsets sorted, then ``LIST_NONE`` at n+1; ``_ms``: their
        masks in the low bits (packed: the sorted list itself); ``_bs``/``_us``: breakdown
        values and buckets. With a breakdown, events at one time sort by value, so that of
        entries at one time the last holds the greatest value."""
        p = self.plan
        rows = self._rows().subquery("_rows", copy=False)
        none = exp.Array(expressions=[int64(LIST_NONE)])
        fields: list[exp.Expr] = [col("_t")]
        if p.breakdown is not None:
            fields += [exp.Not(this=exp.Is(this=col("_b"), expression=exp.Null())), col("_b")]
        fields.append(col("_m"))
        if p.bucketing is not None:
            fields.append(col("_u"))
        # Only actors with an entry: dropped here, before any list work is done for them.
        entered: exp.Expr = exp.GTE(this=exp.Max(this=col("_m")), expression=number(self.entry_bit))
        if self.packed:
            listed, entered = self._packed_list(entered)
        else:
            listed = {"_el": ListSort(this=ListAgg(this=TupleOf(expressions=fields)))}
        select = exp.select(col("_a"), *[exp.alias_(e, n, quoted=True) for n, e in listed.items()])
        select = select.from_(rows, copy=False)
        select = select.group_by(col("_a"), copy=False).having(entered, copy=False)
        layers = Layers(select, ["_a", *listed])
        if self.packed:
            if self.compact:
                compact_entries(layers, self.only_bit)
            elif self.runs is not None:
                compact_runs(layers, self.shift, self.runs)
            times = zip_map(self._time(var("v")), {"v": "_ms"})
            layers.add({"_ts": ListConcat(expressions=[times, none])})
            return layers

        def field(k: int) -> exp.Expr:
            return zip_map(TupleGet(this=var("v"), index=number(k)), {"v": "_el"})

        unpack = {
            "_ts": ListConcat(expressions=[field(1), none]),
            "_ms": field(len(fields) - (p.bucketing is not None)),
        }
        if p.breakdown is not None:
            unpack["_bs"] = field(3)
        if p.bucketing is not None:
            unpack["_us"] = field(len(fields))
        layers.add(unpack, drop=["_el"])
        return layers

    def _packed_list(self, entered: exp.Expr) -> tuple[dict[str, exp.Expr], exp.Expr]:
        """``_ms``: the actor's packed elements, sorted (an aggregate over the rows), and the
        condition that the actor has an entry.

        In an ordered funnel without exclusions, an actor without step-1 events has level 1,
        and their latest entry is the chosen attempt: their list is that one element, so
        nothing is sorted or followed for them (in most funnels most actors never get past
        step 0).
        """
        key: exp.Expr = exp.Add(
            this=exp.Mul(this=col("_t"), expression=int64(1 << self.shift)), expression=col("_m")
        )
        if self.compact:
            only = exp.EQ(this=col("_m"), expression=number(self.entry_bit))
            key = exp.Add(this=key, expression=case_when(only, number(self.only_bit), ZERO.copy()))
        listed = ListSort(this=ListAgg(this=key))
        if not self.dedupe:
            return {"_ms": listed}, entered
        step1 = exp.BitwiseAnd(this=col("_m"), expression=number(self.bit[self.plan.step_cond[1]]))
        latest = exp.Max(this=case_when(has_bit(col("_m"), self.entry_bit), key.copy(), int64(0)))
        latest_only = exp.Array(expressions=[latest.copy()])
        moved = exp.GT(this=exp.Max(this=step1), expression=ZERO.copy())
        return {"_ms": case_when(moved, listed, latest_only)}, exp.GT(this=latest, expression=ZERO.copy())

    def _time(self, packed: exp.Expr) -> exp.Expr:
        return exp.BitwiseRightShift(this=packed, expression=number(self.shift))

    # -- 3: next-pointers ---------------------------------------------------------------------

    def _attempt_columns(self) -> dict[str, exp.Expr]:
        """Per attempt: entry time ``_s``, breakdown value ``_bv``, bucket ``_ub``."""
        p = self.plan
        attempt: dict[str, exp.Expr] = {"_s": ListSelect(this=col("_ts"), indexes=col("_q0"))}
        if p.breakdown is not None:
            attempt["_bv"] = ListSelect(this=col("_bs"), indexes=col("_q0"))
        if p.bucketing is not None:
            attempt["_ub"] = ListSelect(this=col("_us"), indexes=col("_q0"))
        return attempt

    def _follow(self, pointers: str, position: exp.Expr, positions: str) -> exp.Expr:
        """``pointers[min(position, n)]`` for each element ``v`` of ``positions``: one pass."""
        return zip_map(element(pointers, capped(position)), {"v": positions})

    def _flags(self, bit: int) -> exp.Expr:
        """The elements' booleans for ``bit`` (ClickHouse's fills read these, not positions)."""
        return zip_map(has_bit(var("m"), bit), {"m": "_ms"})

    def _pointers(self, layers: Layers) -> None:
        """Entries (``_q0``), group ends ``_g`` and next-pointers ``_N{c}``.

        Events at the same time form a *group*; "strictly later" means a later group, so
        ``_N{c}[i]`` is the first c-event after the end of i's group. Positions run 1..n,
        n+1 meaning "none". Pointer lists have n elements: "none" is followed as position n
        (nothing is after the last element either, see ``_follow``), and the times list has
        ``LIST_NONE`` at n+1.
        """
        p, n = self.plan, col("_n")
        ends = exp.NEQ(this=at("_ts"), expression=at("_ts", 1))  # the sentinel ends the last group
        first: dict[str, exp.Expr] = {
            "_n": int64(ListLen(this=col("_ms"))),
            "_ge": index_where(ends),
            **{f"_P{c}": index_where(has_bit(at("_ms"), self.bit[c])) for c in self.conds},
        }
        if not self.dedupe:  # otherwise ``_first_step`` picks the entries that matter
            first["_q0"] = index_where(has_bit(at("_ms"), self.entry_bit))
        layers.add(first)
        inclusive = p.order == "unordered"
        group_ends = ListIndexMap(this=ends.copy(), index=exp.to_identifier(INDEX), over=col("_ms"))
        nexts = {
            f"_x{c}": ListNextOf(
                this=col(f"_P{c}"),
                flags=self._flags(self.bit[c]),
                length=n.copy(),
                inclusive=exp.Boolean(this=inclusive),
            )
            for c in self.conds
        }
        # Most actors have no two events at one time: then each element is its own group.
        alone = exp.EQ(this=ListLen(this=col("_ge")), expression=n.copy())
        new: dict[str, exp.Expr] = {
            "_g": case_when(
                alone,
                col("_ge"),
                ListNextOf(this=col("_ge"), flags=group_ends, length=n.copy(), inclusive=exp.true()),
            ),
            "_ties": exp.Not(this=exp.Paren(this=alone.copy())),
            **nexts,
        }
        if inclusive:  # unordered: from the *start* of each entry's group (0..n without ties)
            prev_end = ListPrevOf(this=col("_ge"), flags=group_ends.copy(), length=n.copy())
            shifted = ListIndexMap(
                this=exp.Sub(this=var(INDEX), expression=ONE.copy()),
                index=exp.to_identifier(INDEX),
                over=col("_ts"),
            )
            new["_pe"] = case_when(
                alone.copy(), shifted, ListConcat(expressions=[exp.Array(expressions=[int64(0)]), prev_end])
            )
        layers.add(new, drop=["_ge", *[f"_P{c}" for c in self.conds]])
        attempt = self._attempt_columns()
        if inclusive:
            starts = zip_map(
                exp.Add(this=var("v"), expression=ONE.copy()),
                {"v": ListSelect(this=col("_pe"), indexes=col("_q0"))},
            )
            layers.add(
                {**attempt, "_gs": starts, **{f"_N{c}": col(f"_x{c}") for c in self.conds}},
                drop=["_ms", "_bs", "_us", "_pe", "_g", "_ties", *nexts],
            )
            return
        pointers: dict[str, exp.Expr] = {
            f"_N{c}": case_when(
                col("_ties"), ListSelect(this=col(f"_x{c}"), indexes=col("_g")), col(f"_x{c}")
            )
            for c in self.conds
        }
        if p.order == "strict":  # the end of the group after each element's group
            pointers["_gn"] = self._follow("_g", exp.Add(this=var("v"), expression=ONE.copy()), "_g")
        if self.dedupe:  # ``_first_step`` reads the masks and makes the attempts
            layers.add(pointers, drop=["_g", "_ties", *nexts])
            return
        layers.add({**attempt, **pointers}, drop=["_ms", "_g", "_ties", "_bs", "_us", *nexts])

    def _dedupe_entries(self, layers: Layers) -> None:
        """``_q0``: the entries that can matter in an ordered funnel without exclusions.

        An entry followed directly by another entry with the same next step-1 event (and,
        in trends, the same bucket) is dominated by it: both reach the same step-1 event
        and everything after, the later one with more window left (and, at one time, the
        greater breakdown value, by the sort), and the chosen attempt is the latest entry
        with the best level. So of a run of pageviews only the last starts an attempt;
        ``_first_step`` merges the rest (entries with the same step-1 event, further apart).
        """
        p = self.plan
        nxt = f"_N{p.step_cond[1]}"
        later: list[exp.Expr] = [
            exp.EQ(this=var(INDEX), expression=col("_n")),
            exp.Not(this=exp.Paren(this=has_bit(at("_ms", 1), self.entry_bit))),
            exp.NEQ(this=at(nxt), expression=at(nxt, 1)),
        ]
        if p.bucketing is not None:
            later.append(exp.NEQ(this=at("_us"), expression=at("_us", 1)))
        entry = exp.and_(has_bit(at("_ms"), self.entry_bit), exp.or_(*later))
        layers.add({"_q0": index_where(entry)}, drop=["_ms"])

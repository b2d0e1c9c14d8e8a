"""Funnel SQL: one pass over the events, then per-actor list work linear in events and steps.

Shape of the query, a chain of CTEs (``Layers``):

1. **rows**: the events of ``[start, end + window)`` (only the funnel's events, except in
   strict mode where any event interrupts), as (actor, µs, bitmask of conditions, entry?).
2. **elements**: ``GROUP BY actor`` collects the times and bitmasks; sorted by time they are
   the actor's *elements*, addressed by position 1..n (n+1 means "none").
3. **pointers**: for each distinct condition c, ``_N{c}[i]``: the position of the first
   c-event strictly later in time than element i — O(n) per condition (``ListNextOf``),
   computed once however many steps repeat the condition.
4. **attempts**: every entry is an attempt; at step k each attempt moves to
   ``_N{c_k}[its position at step k-1]`` — one gather per step. No joins, no search, so the
   cost is O(events * distinct conditions + attempts * steps).
5. **per attempt** the level (steps reached within the window) and disqualification by
   exclusions; **per actor** the best level and the chosen attempt (latest entry with it),
   with its step times and breakdown value. ``views.py`` aggregates those.

Attempts that can no longer matter are merged away after the first steps (``_dedupe``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlglot import exp

from aggregata.insights.funnels.layers import (
    ONE,
    ZERO,
    Layers,
    case_when,
    element,
    int64,
    number,
    var,
    zip_map,
)
from aggregata.insights.funnels.plan import FunnelPlan
from aggregata.sql.lists import (
    LIST_NONE,
    EpochMicros,
    ListAgg,
    ListConcat,
    ListGradeUp,
    ListLastIndexOf,
    ListLen,
    ListMax,
    ListNextOf,
    ListPositions,
    ListPrevOf,
    ListRunEnds,
    ListSelect,
    ListSort,
    ListWhere,
    TupleGet,
    TupleOf,
)
from aggregata.sql.query import col

DEDUPE_STEPS = 2
ENTRY_BIT = 1 << 40  # above every condition's bit (at most 30 conditions)


def _t(k: int, unordered: bool = False) -> str:
    """The list column of every attempt's time at step k: ``_s`` (the entry time) for the
    first step of an ordered funnel; in an unordered one each step has its own."""
    return "_s" if k == 0 and not unordered else f"_t{k}"


class FunnelSQL:
    """Builds the per-actor relation of one plan (``per_actor``), shared by the views."""

    def __init__(self, plan: FunnelPlan) -> None:
        self.plan = plan
        self.params = plan.params
        self.window = plan.params.bind(plan.window_us)
        self.dedupe = plan.order == "ordered" and not plan.exclusion_cond

    # -- 1-3: rows, elements, pointers -----------------------------------------------------

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
        entry = exp.and_(
            exp.or_(*[p.conditions[c].copy() for c in sorted(set(entry_steps))]),
            exp.GTE(this=ts.copy(), expression=self.params.bind(p.start)),
            exp.LT(this=ts.copy(), expression=self.params.bind(p.end)),
        )
        mask: exp.Expr = case_when(entry, number(ENTRY_BIT), ZERO)
        for i, c in enumerate(p.conditions):
            mask = exp.Add(this=mask, expression=case_when(c.copy(), number(1 << i), ZERO))
        cols = [
            exp.alias_(actor, "_a", quoted=True),
            exp.alias_(EpochMicros(this=ts), "_t", quoted=True),
            exp.alias_(mask, "_m", quoted=True),
        ]
        if p.breakdown is not None:
            cols.append(exp.alias_(p.breakdown.copy(), "_b", quoted=True))
        if p.bucketing is not None:
            cols.append(exp.alias_(p.bucketing.key_sql(ts.copy(), p.start), "_u", quoted=True))
        table = exp.table_(schema.collection, quoted=True)
        return exp.select(*cols).from_(table).where(exp.and_(*where), copy=False)

    def _conditions(self) -> list[int]:
        """Conditions some step after the entry (or an exclusion) looks for."""
        p = self.plan
        steps = p.step_cond if p.order == "unordered" else p.step_cond[1:]
        return sorted({*steps, *p.exclusion_cond})

    def _elements(self) -> Layers:
        """``_ts``/``_ms``: the actor's times and bitmasks sorted by time (``_bs``/``_us``:
        breakdown values and buckets). With a breakdown, events at one time sort by value,
        so that of entries at one time the last holds the greatest value."""
        p = self.plan
        rows = self._rows().subquery("_rows", copy=False)
        extra = p.breakdown is not None or p.bucketing is not None
        if not extra:
            aggs: dict[str, exp.Expr] = {"_tr": ListAgg(this=col("_t")), "_mr": ListAgg(this=col("_m"))}
        else:
            fields: list[exp.Expr] = [col("_t")]
            if p.breakdown is not None:
                fields += [exp.Not(this=exp.Is(this=col("_b"), expression=exp.Null())), col("_b")]
            fields.append(col("_m"))
            if p.bucketing is not None:
                fields.append(col("_u"))
            aggs = {"_el": ListSort(this=ListAgg(this=TupleOf(expressions=fields)))}
        select = exp.select(col("_a"), *[exp.alias_(e, n, quoted=True) for n, e in aggs.items()])
        select = select.from_(rows, copy=False).group_by(col("_a"), copy=False)
        # Only actors with an entry: dropped here, before any list work is done for them.
        entries = exp.Max(this=col("_m"))
        select = select.having(exp.GTE(this=entries, expression=number(ENTRY_BIT)), copy=False)
        layers = Layers(select, ["_a", *aggs])
        if not extra:
            layers.add({"_o": ListGradeUp(this=col("_tr"))})
            sort = {
                n: ListSelect(this=col(r), indexes=col("_o")) for n, r in (("_ts", "_tr"), ("_ms", "_mr"))
            }
            layers.add(sort, drop=["_tr", "_mr", "_o"])
            return layers

        def field(k: int) -> exp.Expr:
            return zip_map(TupleGet(this=var("v"), index=number(k)), {"v": "_el"})

        unpack = {"_ts": field(1), "_ms": field(len(fields) - (p.bucketing is not None))}
        if p.breakdown is not None:
            unpack["_bs"] = field(3)
        if p.bucketing is not None:
            unpack["_us"] = field(len(fields))
        layers.add(unpack, drop=["_el"])
        return layers

    def _attempt_columns(self) -> dict[str, exp.Expr]:
        """Per attempt: entry time ``_s``, breakdown value ``_bv``, bucket ``_ub``."""
        p = self.plan
        attempt: dict[str, exp.Expr] = {"_s": ListSelect(this=col("_ts"), indexes=col("_q0"))}
        if p.breakdown is not None:
            attempt["_bv"] = ListSelect(this=col("_bs"), indexes=col("_q0"))
        if p.bucketing is not None:
            attempt["_ub"] = ListSelect(this=col("_us"), indexes=col("_q0"))
        return attempt

    def _first_step(self, layers: Layers) -> None:
        """Step 1 of an ordered funnel without exclusions, merging attempts first.

        Entries with the same next step-1 event share everything after it, and the latest
        of them has the most window left: at step 1 it does at least as well as the others
        (see ``_dedupe``), so only the last entry before each step-1 event (per trend
        bucket) is kept before anything else is computed for the attempts — in a
        pageview-first funnel this leaves one attempt per later step-1 event instead of one
        per pageview.
        """
        p = self.plan
        layers.add({"_q1": ListSelect(this=col(f"_N{p.step_cond[1]}"), indexes=col("_q0"))})
        keys = [col("_q1")] + ([col("_ub")] if p.bucketing is not None else [])
        layers.add({"_keep": ListRunEnds(expressions=keys)})
        kept = [c for c in ("_q0", "_q1", "_ub") if c in layers.columns]
        layers.add({c: ListWhere(this=col(c), mask=col("_keep")) for c in kept}, drop=["_keep"])
        timed = {k: v for k, v in self._attempt_columns().items() if k != "_ub"}
        timed["_t1"] = ListSelect(this=col("_ts"), indexes=col("_q1"))
        layers.add(timed, drop=["_bs", "_us"])
        level = exp.Add(this=ONE.copy(), expression=self._reached("t"))
        layers.add({"_lv": zip_map(level, {"t": "_t1", "s": "_s"})})

    def _follow(self, pointers: str, position: exp.Expr, positions: str) -> ListSelect:
        """``pointers[min(position, n)]`` for each element ``v`` of ``positions``."""
        capped = exp.Least(this=position, expressions=[col("_n")])
        return ListSelect(this=col(pointers), indexes=zip_map(capped, {"v": positions}))

    def _flags(self, bit: int) -> exp.Expr:
        has = exp.NEQ(this=exp.BitwiseAnd(this=var("m"), expression=number(bit)), expression=ZERO)
        return zip_map(has, {"m": "_ms"})

    def _pointers(self, layers: Layers) -> None:
        """Entries (``_q0``, times ``_t0``), group ends ``_g`` and next-pointers ``_N{c}``.

        Events at the same time form a *group*; "strictly later" means a later group, so
        ``_N{c}[i]`` is the first c-event after the end of i's group. Lists get sentinels
        at n+1 (time ``LIST_NONE``) so that "none" can be followed like any position.

        Positions run 1..n, n+1 meaning "none". Pointer lists have n elements: "none" is
        followed as position n (nothing is after the last element either, see ``_follow``),
        and the times list has ``LIST_NONE`` at n+1.
        """
        p, n = self.plan, col("_n")
        conds = self._conditions()
        flags = {f"_F{c}": self._flags(1 << c) for c in conds}
        layers.add({**flags, "_fe": ListRunEnds(expressions=[col("_ts")])})
        positions = {f"_P{c}": ListPositions(this=col(f"_F{c}")) for c in conds}
        layers.add(
            {
                "_n": int64(ListLen(this=col("_ts"))),
                "_q0": ListPositions(this=self._flags(ENTRY_BIT)),
                "_ge": ListPositions(this=col("_fe")),
                **positions,
            },
            drop=["_ms"],
        )
        inclusive = p.order == "unordered"
        nexts = {
            f"_x{c}": ListNextOf(
                this=col(f"_P{c}"),
                flags=col(f"_F{c}"),
                length=n.copy(),
                inclusive=exp.Boolean(this=inclusive),
            )
            for c in conds
        }
        new: dict[str, exp.Expr] = {
            # Most actors have no two events at one time: then each element is its own group.
            "_g": case_when(
                exp.EQ(this=ListLen(this=col("_ge")), expression=n.copy()),
                col("_ge"),
                ListNextOf(this=col("_ge"), flags=col("_fe"), length=n.copy(), inclusive=exp.true()),
            ),
            "_ties": exp.NEQ(this=ListLen(this=col("_ge")), expression=n.copy()),
            "_ts": ListConcat(expressions=[col("_ts"), exp.Array(expressions=[int64(LIST_NONE)])]),
            **nexts,
        }
        if inclusive:  # unordered: from the *start* of each entry's group
            prev_end = ListPrevOf(this=col("_ge"), flags=col("_fe"), length=n.copy())
            new["_pe"] = ListConcat(expressions=[exp.Array(expressions=[int64(0)]), prev_end])
        layers.add(
            new,
            drop=["_ge", "_fe", *positions, *flags],
        )
        attempt = self._attempt_columns()
        if inclusive:
            starts = zip_map(
                exp.Add(this=var("v"), expression=ONE.copy()),
                {"v": ListSelect(this=col("_pe"), indexes=col("_q0"))},
            )
            layers.add(
                {**attempt, "_gs": starts, **{f"_N{c}": col(f"_x{c}") for c in conds}},
                drop=["_bs", "_us", "_pe", "_g", "_ties", *nexts],
            )
            return
        pointers: dict[str, exp.Expr] = {
            f"_N{c}": case_when(
                col("_ties"), ListSelect(this=col(f"_x{c}"), indexes=col("_g")), col(f"_x{c}")
            )
            for c in conds
        }
        if p.order == "strict":  # the end of the group after each element's group
            pointers["_gn"] = self._follow("_g", exp.Add(this=var("v"), expression=ONE.copy()), "_g")
        if self.dedupe:  # the attempts' columns after the first step has merged them
            attempt = {"_ub": attempt["_ub"]} if "_ub" in attempt else {}
        layers.add(
            {**attempt, **pointers}, drop=["_g", "_ties", *nexts] + ([] if self.dedupe else ["_bs", "_us"])
        )

    # -- 4: attempts -------------------------------------------------------------------------

    def _last_use(self) -> dict[int, int]:
        """After which step each condition's pointers are no longer needed (exclusions: never)."""
        p = self.plan
        last = {p.step_cond[k]: k for k in range(1, p.n_steps)}
        return last | {c: -1 for c in p.exclusion_cond}

    def _steps(self, layers: Layers) -> None:
        """``_q{k}``/``_t{k}``: each attempt's position and time at step k."""
        p = self.plan
        n = p.n_steps
        if p.order == "unordered":  # the first event of each step at or after the entry time
            moves = {
                f"_q{k}": ListSelect(this=col(f"_N{p.step_cond[k]}"), indexes=col("_gs")) for k in range(n)
            }
            layers.add(moves, drop=["_gs", *{f"_N{c}" for c in p.step_cond}])
            layers.add(
                {_t(k, True): ListSelect(this=col("_ts"), indexes=col(f"_q{k}")) for k in range(n)},
                drop=[f"_q{k}" for k in range(n)],
            )
            return
        last = self._last_use()
        if self.dedupe:
            self._first_step(layers)
            if last.get(p.step_cond[1]) == 1:
                layers.drop(f"_N{p.step_cond[1]}")
        for k in range(2 if self.dedupe else 1, n):
            cond = p.step_cond[k]
            done = [f"_N{cond}"] if last.get(cond) == k else []
            move: dict[str, exp.Expr] = {f"_q{k}": self._follow(f"_N{cond}", var("v"), f"_q{k - 1}")}
            if p.order == "strict":
                move[f"_e{k}"] = self._follow("_gn", var("v"), f"_q{k - 1}")
            layers.add(move, drop=done)
            timed: dict[str, exp.Expr] = {_t(k): ListSelect(this=col("_ts"), indexes=col(f"_q{k}"))}
            if p.order == "strict":
                # Step k counts only if it is in the very next group of events (nothing else
                # came in between) and step k-1 counted. ``_q{k}`` itself stays the plain
                # next step-k event, so every attempt still moves forward.
                ok: exp.Expr = exp.LTE(this=var("q"), expression=var("e"))
                arrays = {"q": f"_q{k}", "e": f"_e{k}"}
                if k > 1:
                    ok, arrays["o"] = exp.and_(var("o"), ok), f"_ok{k - 1}"
                timed[f"_ok{k}"] = zip_map(ok, arrays)
            layers.add(timed, drop=[f"_e{k}"])
            if self.dedupe:
                self._dedupe(layers, k)
        layers.drop("_gn")

    def _dedupe(self, layers: Layers, k: int) -> None:
        """Drop attempts that cannot matter any more: one per (step-k position, level so far).

        ``_lv`` counts the steps each attempt reached so far (a step out of the window ends
        it). Two attempts at the same step-k event with the same level so far either both
        still run, and then share the rest of their path, the later entry having more
        window left; or both ended with that level. Either way the later entry does at
        least as well, and the chosen attempt is the latest entry with the best level, so
        keeping the last attempt of each run loses nothing. Without this, every entry (each
        pageview of a pageview-first funnel) would move again at every step. With trend
        buckets, runs are also split by bucket. Filtering touches every per-attempt list,
        so only the first ``DEDUPE_STEPS`` steps do it (they remove the most).
        """
        level = exp.Add(this=var("lv"), expression=self._reached("t"))
        layers.add({"_lv": zip_map(level, {"lv": "_lv", "t": _t(k), "s": "_s"})})
        if k > DEDUPE_STEPS:
            return
        keys = [col(f"_q{k}"), col("_lv")] + ([col("_ub")] if self.plan.bucketing is not None else [])
        layers.add({"_keep": ListRunEnds(expressions=keys)})
        attempts = [c for c in layers.columns if c in ("_s", "_lv", "_bv", "_ub") or c[:2] in ("_q", "_t")]
        attempts.remove("_ts")
        layers.add({c: ListWhere(this=col(c), mask=col("_keep")) for c in attempts}, drop=["_keep"])

    def _exclusions(self, layers: Layers) -> None:
        """``_x{i}``: per attempt, the time of the first exclusion event after its step a."""
        p = self.plan
        if not p.exclusion_cond:
            return
        found = {
            f"_x{i}": ListSelect(
                this=col("_ts"), indexes=self._follow(f"_N{c}", var("v"), f"_q{x.from_step}")
            )
            for i, (x, c) in enumerate(zip(p.req.exclusions, p.exclusion_cond, strict=True))
        }
        layers.add(found, drop=[f"_N{c}" for c in sorted(set(p.exclusion_cond))])

    def _reached(self, step: str, ok: str | None = None) -> exp.Expr:
        """1 when the attempt's step time (lambda variable) is within its window (and ``ok``)."""
        limit = exp.Add(this=var("s"), expression=self.window.copy())
        cond: exp.Expr = exp.LTE(this=var(step), expression=limit)
        if ok is not None:
            cond = exp.and_(var(ok), cond)
        return case_when(cond, ONE.copy(), ZERO.copy())

    def _attempt_levels(self, layers: Layers) -> None:
        """``_lf``: per attempt, the steps reached within the window; 0 when disqualified."""
        p = self.plan
        n = p.n_steps
        if self.dedupe:  # counted step by step already
            layers.add({"_lf": col("_lv")}, drop=["_lv"])
            return
        first = 0 if p.order == "unordered" else 1
        arrays = {"s": "_s", **{f"v{k}": _t(k, p.order == "unordered") for k in range(first, n)}}
        level: exp.Expr = ZERO.copy() if first == 0 else ONE.copy()
        for k in range(first, n):
            ok = None
            if p.order == "strict":
                arrays[f"o{k}"] = ok = f"_ok{k}"
            level = exp.Add(this=level, expression=self._reached(f"v{k}", ok and f"o{k}"))
        layers.add({"_lv": zip_map(level, arrays)}, drop=[f"_ok{k}" for k in range(1, n)])
        if not p.exclusion_cond:
            layers.add({"_lf": col("_lv")}, drop=["_lv"])
            return
        limit = exp.Add(this=var("s"), expression=self.window.copy())
        hits: list[exp.Expr] = []
        arrays = {"lv": "_lv", "s": "_s"}
        for i, x in enumerate(p.req.exclusions):
            arrays[f"b{i}"], arrays[f"x{i}"] = _t(x.to_step), f"_x{i}"
            reached_b = exp.GT(this=var("lv"), expression=number(x.to_step))
            between = case_when(
                reached_b,
                exp.LT(this=var(f"x{i}"), expression=var(f"b{i}")),
                exp.LTE(this=var(f"x{i}"), expression=limit.copy()),
            )
            hits.append(exp.and_(exp.GT(this=var("lv"), expression=number(x.from_step)), between))
        body = case_when(exp.or_(*hits), ZERO.copy(), var("lv"))
        layers.add({"_lf": zip_map(body, arrays)}, drop=["_lv", *[f"_x{i}" for i in range(len(hits))]])

    # -- 5: per actor ------------------------------------------------------------------------

    def per_actor(self) -> Layers:
        """One row per actor with an entry: ``_lf`` (attempt levels) and, but for trends,
        ``_L`` (best level), ``_j`` (chosen attempt), ``_d{k}`` (µs from step k-1 to k on it),
        ``_bd`` (its breakdown value); actors whose every attempt is disqualified drop out."""
        layers = self._elements()
        self._pointers(layers)
        self._steps(layers)
        self._exclusions(layers)
        self._attempt_levels(layers)
        layers.drop("_ts", *[f"_q{k}" for k in range(self.plan.n_steps)])
        if self.plan.req.funnel_viz == "trends":
            return layers
        layers.add({"_L": ListMax(this=col("_lf"))})
        chosen = ListLastIndexOf(this=col("_lf"), value=col("_L"))
        layers.add({"_j": chosen}, where=exp.GT(this=col("_L"), expression=ZERO))
        self._times(layers)
        return layers

    def _times(self, layers: Layers) -> None:
        p = self.plan
        n = p.n_steps
        j = col("_j")
        unordered = p.order == "unordered"
        path = [element(_t(k, unordered), j.copy()) for k in range(n)]
        if unordered:
            # The steps reached, in the order they were first done: the window's first events.
            limit = exp.Add(this=element("_s", j.copy()), expression=self.window.copy())
            kept = case_when(exp.LTE(this=var("v"), expression=limit), var("v"), int64(LIST_NONE))
            layers.add({"_tau": ListSort(this=zip_map(kept, {"v": exp.Array(expressions=path)}))})
            path = [element("_tau", number(k + 1)) for k in range(n)]
        new: dict[str, exp.Expr] = {
            f"_d{k}": case_when(
                exp.GT(this=col("_L"), expression=number(k)), exp.Sub(this=path[k], expression=path[k - 1])
            )
            for k in range(1, n)
        }
        if p.breakdown is not None:
            new["_bd"] = element("_bv", j.copy())
        layers.add(new, drop=["_tau", "_s", *[_t(k, unordered) for k in range(n)], "_bv"])

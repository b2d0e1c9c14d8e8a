"""Funnel SQL: one pass over the events, then per-actor list work linear in events and steps.

Shape of the query, a chain of CTEs (``Layers``). Phases 1-3 (``elements.py``) run per
event and are most of the cost (on 2M events, a 4-step funnel spends about a fifth each
on reading the events, grouping them and sorting them), so they do as little per event
as possible; phases 4-5 (here) run per attempt, of which there are far fewer.

1. **rows**: the events of ``[start, end + window)`` (only the funnel's events, except in
   strict mode where any event interrupts), as (actor, µs since ``start``, bitmask of the
   conditions a step after the entry looks for, entry?).
2. **elements**: ``GROUP BY actor`` collects them, sorted by time: the actor's *elements*,
   addressed by position 1..n (n+1 means "none"). Time and mask are packed into one
   integer when they fit, so one list is collected and sorted as plain integers (tuples
   otherwise, and with a breakdown or trend buckets). In ordered funnels without
   exclusions, an actor without a step-1 event keeps only their latest entry (nothing to
   sort or follow), and one filter drops the elements that cannot change the answer
   (``compact.py``: a run of pageviews keeps the few an attempt can start at or walk).
3. **pointers**: for each distinct condition c, ``_N{c}[i]``: the position of the first
   c-event strictly later in time than element i, O(n) per condition (``ListNextOf``),
   computed once however many steps repeat the condition.
4. **attempts**: every entry is an attempt (in ordered funnels without exclusions, only
   the last entry before each step-1 event: the others cannot be better); at step k each
   attempt moves to ``_N{c_k}[its position at step k-1]``, one pass per step. Times are
   read through the positions only where needed (levels, the chosen attempt's steps).
5. **per attempt** the level (steps reached within the window, counted in one pass) and
   disqualification by exclusions; **per actor** the best level and the chosen attempt
   (latest entry with it), with its step times and breakdown value. ``views.py``
   aggregates those.

No joins, no search, no per-step sort: O(events * distinct conditions + attempts *
steps).

Why not ClickHouse's ``windowFunnel`` algorithm (per step, the latest entry that reached
the previous step, carried along the actor's events)? It needs a scan per step: as window
functions DuckDB re-sorts every pass (several times slower on 2M events at 4 steps), as
``list_reduce`` it builds a struct per event and step (slower than the pointers), and it
yields the level but not the chosen attempt's step times.
"""

from __future__ import annotations

from sqlglot import exp

from aggregata.insights.funnels.elements import FunnelLists
from aggregata.insights.funnels.layers import (
    ONE,
    ZERO,
    Layers,
    capped,
    case_when,
    element,
    int64,
    number,
    var,
    zip_map,
)
from aggregata.sql.lists import (
    LIST_NONE,
    ListLastIndexOf,
    ListMax,
    ListRunEnds,
    ListSelect,
    ListSort,
    ListWhere,
)
from aggregata.sql.query import col


class FunnelSQL(FunnelLists):
    """Builds the per-actor relation of one plan (``per_actor``), shared by the views."""

    # -- 4: attempts -------------------------------------------------------------------------

    def _first_step(self, layers: Layers) -> None:
        """Step 1 of an ordered funnel without exclusions, merging attempts first.

        Entries with the same next step-1 event share everything after it, and the latest
        of them has the most window left, so it reaches at least the same level; the
        chosen attempt is the latest entry with the best level. So only the last entry
        before each step-1 event (per trend bucket) is kept before anything else is
        computed for the attempts: in a pageview-first funnel, one attempt per later step-1
        event instead of one per pageview (``_dedupe_entries`` already dropped runs of
        entries in one pass). Merging again at later steps (attempts at one position with
        one level so far) was measured to cost more than carrying the attempts along.
        """
        p = self.plan
        self._dedupe_entries(layers)
        first: dict[str, exp.Expr] = {"_q1": ListSelect(this=col(f"_N{p.step_cond[1]}"), indexes=col("_q0"))}
        if p.bucketing is not None:
            first["_ub"] = ListSelect(this=col("_us"), indexes=col("_q0"))
        layers.add(first)
        keys = [col("_q1")] + ([col("_ub")] if p.bucketing is not None else [])
        layers.add({"_keep": ListRunEnds(expressions=keys)})
        kept = [c for c in ("_q0", "_q1", "_ub") if c in layers.columns]
        layers.add({c: ListWhere(this=col(c), mask=col("_keep")) for c in kept}, drop=["_keep"])
        timed = {k: v for k, v in self._attempt_columns().items() if k != "_ub"}
        layers.add(timed, drop=["_bs", "_us"])
        level = exp.Add(this=ONE.copy(), expression=self._reached("q"))
        layers.add({"_lv": zip_map(level, {"q": "_q1", "s": "_s"})})

    def _last_use(self) -> dict[int, int]:
        """After which step each condition's pointers are no longer needed (exclusions: never)."""
        p = self.plan
        last = {p.step_cond[k]: k for k in range(1, p.n_steps)}
        return last | {c: -1 for c in p.exclusion_cond}

    def _steps(self, layers: Layers) -> None:
        """``_q{k}``: each attempt's position at step k (its time is ``_ts[_q{k}]``)."""
        p = self.plan
        n = p.n_steps
        if p.order == "unordered":  # the first event of each step at or after the entry time
            moves = {
                f"_q{k}": ListSelect(this=col(f"_N{p.step_cond[k]}"), indexes=col("_gs")) for k in range(n)
            }
            layers.add(moves, drop=["_gs", *{f"_N{c}" for c in p.step_cond}])
            return
        last = self._last_use()
        if self.dedupe:
            self._first_step(layers)
            if last.get(p.step_cond[1]) == 1:
                layers.drop(f"_N{p.step_cond[1]}")
        for k in range(2 if self.dedupe else 1, n):
            cond = p.step_cond[k]
            done = [f"_N{cond}"] if last.get(cond) == k else []
            layers.add({f"_q{k}": self._follow(f"_N{cond}", var("v"), f"_q{k - 1}")}, drop=done)
            if p.order == "strict":
                # Step k counts only if it is in the very next group of events (nothing else
                # came in between) and step k-1 counted. ``_q{k}`` itself stays the plain
                # next step-k event, so every attempt still moves forward.
                following = element("_gn", capped(var("p")))
                ok: exp.Expr = exp.LTE(this=var("q"), expression=following)
                arrays = {"q": f"_q{k}", "p": f"_q{k - 1}"}
                if k > 1:
                    ok, arrays["o"] = exp.and_(var("o"), ok), f"_ok{k - 1}"
                layers.add({f"_ok{k}": zip_map(ok, arrays)})
        layers.drop("_gn")

    def _exclusions(self, layers: Layers) -> None:
        """``_x{i}``: per attempt, the time of the first exclusion event after its step a."""
        p = self.plan
        if not p.exclusion_cond:
            return
        found = {
            f"_x{i}": zip_map(
                element("_ts", element(f"_N{c}", capped(var("v")))),
                {"v": f"_q{x.from_step}"},
            )
            for i, (x, c) in enumerate(zip(p.req.exclusions, p.exclusion_cond, strict=True))
        }
        layers.add(found, drop=[f"_N{c}" for c in sorted(set(p.exclusion_cond))])

    def _reached(self, step: str, ok: str | None = None) -> exp.Expr:
        """1 when the time at the attempt's step position (lambda variable ``step``) is within
        its window (and ``ok``)."""
        limit = exp.Add(this=var("s"), expression=self.window.copy())
        cond: exp.Expr = exp.LTE(this=element("_ts", var(step)), expression=limit)
        if ok is not None:
            cond = exp.and_(var(ok), cond)
        return case_when(cond, ONE.copy(), ZERO.copy())

    def _attempt_levels(self, layers: Layers) -> None:
        """``_lf``: per attempt, the steps reached within the window; 0 when disqualified."""
        p = self.plan
        n = p.n_steps
        # The level is the number of steps within the window (in order, each step is later
        # than the one before, so they are a prefix); ``_first_step`` counted steps 0 and 1.
        first = 2 if self.dedupe else 0 if p.order == "unordered" else 1
        if self.dedupe and first >= n:
            layers.add({"_lf": col("_lv")}, drop=["_lv"])
            return
        arrays = {"s": "_s", **{f"v{k}": f"_q{k}" for k in range(first, n)}}
        level: exp.Expr = ZERO.copy() if p.order == "unordered" else ONE.copy()
        if self.dedupe:
            arrays["lv"], level = "_lv", var("lv")
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
            arrays[f"b{i}"], arrays[f"x{i}"] = f"_q{x.to_step}", f"_x{i}"
            reached_b = exp.GT(this=var("lv"), expression=number(x.to_step))
            between = case_when(
                reached_b,
                exp.LT(this=var(f"x{i}"), expression=element("_ts", var(f"b{i}"))),
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
        positions = [f"_q{k}" for k in range(self.plan.n_steps)]
        if self.plan.req.funnel_viz == "trends":
            layers.drop("_ts", "_s", *positions)
            return layers
        layers.add({"_L": ListMax(this=col("_lf"))})
        chosen = ListLastIndexOf(this=col("_lf"), value=col("_L"))
        layers.add({"_j": chosen}, where=exp.GT(this=col("_L"), expression=ZERO))
        self._times(layers)
        return layers

    def _times(self, layers: Layers) -> None:
        """``_d{k}``: µs from step k-1 to step k on the chosen attempt ``_j``."""
        p = self.plan
        n = p.n_steps
        j = col("_j")
        unordered = p.order == "unordered"
        path = [element("_ts", element(f"_q{k}", j.copy())) for k in range(n)]
        if not unordered:
            path[0] = element("_s", j.copy())
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
        layers.add(new, drop=["_tau", "_s", "_ts", *[f"_q{k}" for k in range(n)], "_bv"])

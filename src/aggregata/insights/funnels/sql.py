"""Funnel SQL: one pass over the events, then per-actor list work linear in the steps.

Shape of the query (every layer is a nested ``SELECT`` over the one before):

1. **rows**: the events of the range ``[start, end + window)`` (only the funnel's events,
   except in strict mode where every event can interrupt), as ``(actor, µs, conditions)``.
2. **actors**: ``GROUP BY actor`` collects, per distinct step condition, the list of its
   times, and the sorted list of *entries* ``(time, breakdown, bucket)`` in ``[start, end)``.
3. **levels**: every entry is an attempt. For step k, each attempt's time at step k is
   ``next(time at step k-1, times of step k)``: one sorted merge of the attempts' list with
   the step's list (``ListMergeKeys``/``ListMergedNext``), so the cost is one merge per
   step — linear in the number of steps, never a join or a cross product.
4. **per attempt**: its level (steps reached within the window), disqualification by
   exclusions; **per actor**: the best level and the chosen attempt (latest entry with it).
5. **aggregate**: counts per step and breakdown value, mean and median step times; or the
   time-to-convert histogram; or per entry bucket the entered/converted actors.

Attempt times stay sorted from one step to the next (``next`` is monotone), which is what
lets a merge replace a search. Each list-level operation is a dialect node
(``sql/dialects.py``), so the tree is the same for DuckDB and ClickHouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlglot import exp

from aggregata.insights.funnels.plan import FunnelPlan, epoch_us
from aggregata.sql.dialects import (
    LIST_NONE,
    EpochMicros,
    ListAgg,
    ListLastIndexOf,
    ListLen,
    ListMax,
    ListMergedNext,
    ListMergeKeys,
    ListSort,
    ListZipMap,
    TupleGet,
    TupleOf,
)
from aggregata.sql.query import col

ONE, ZERO = exp.Literal.number(1), exp.Literal.number(0)


@dataclass(frozen=True)
class Compiled:
    tree: exp.Select
    params: dict[str, Any]


class Layers:
    """Nested SELECTs; each selects the live columns of the layer below plus new ones."""

    def __init__(self, first: exp.Select, columns: Sequence[str]) -> None:
        self.tree = first
        self.columns = list(columns)
        self._n = 0

    def add(
        self, new: Mapping[str, exp.Expr], *, drop: Iterable[str] = (), where: exp.Expr | None = None
    ) -> None:
        """A layer with ``new`` columns, without ``drop``; ``where`` filters the layer below."""
        gone = set(drop)
        keep = [c for c in self.columns if c not in gone]
        self._n += 1
        select = exp.select(*[col(c) for c in keep], *[exp.alias_(e, n, quoted=True) for n, e in new.items()])
        select = select.from_(self.tree.subquery(f"_l{self._n}", copy=False), copy=False)
        self.tree = select.where(where, copy=False) if where is not None else select
        self.columns = keep + list(new)

    def drop(self, *names: str) -> None:
        """Stop carrying ``names`` into the next layer."""
        self.columns = [c for c in self.columns if c not in names]


def _var(name: str) -> exp.Column:
    return exp.column(name)


def zip_map(body: exp.Expr, arrays: dict[str, str]) -> ListZipMap:
    """``body`` over the elements of the list columns ``arrays`` (lambda name → column)."""
    return ListZipMap(
        this=body,
        names=[exp.to_identifier(n) for n in arrays],
        arrays=[col(c) for c in arrays.values()],
    )


def _next_after(queries: str, candidates: str, *, inclusive: bool) -> tuple[exp.Expr, exp.Expr]:
    flag = exp.Boolean(this=inclusive)
    keys = ListMergeKeys(this=col(queries), expression=col(candidates), inclusive=flag)
    return keys, flag


def case_when(cond: exp.Expr, then: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Case:
    case = exp.Case(ifs=[exp.If(this=cond, true=then)])
    return case.else_(otherwise) if otherwise is not None else case


def element(column: str, index: exp.Expr) -> exp.Bracket:
    """``column[index]``, 1-based in both engines (``offset=1`` stops sqlglot shifting it)."""
    return exp.Bracket(this=col(column), expressions=[index], offset=1)


def _at(column: str, index: str) -> exp.Bracket:
    return element(column, col(index))


def _q(k: int) -> str:
    """The list column of every attempt's time at step ``k`` (step 0: the entry time)."""
    return "_s" if k == 0 else f"_q{k}"


class FunnelSQL:
    """Builds the query of one plan; ``per_actor()`` is shared by the three views."""

    def __init__(self, plan: FunnelPlan) -> None:
        self.plan = plan
        self.params = plan.params
        self.window = plan.params.bind(plan.window_us)

    # -- 1-2: rows and per-actor lists ---------------------------------------------------------

    def _rows(self) -> exp.Select:
        p, schema = self.plan, self.plan.schema
        ts = schema.column(schema.timestamp)
        actor = schema.column(schema.actor)
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
        cols: list[exp.Expr] = [
            exp.alias_(actor, "_a", quoted=True),
            exp.alias_(EpochMicros(this=ts), "_t", quoted=True),
        ]
        cols += [exp.alias_(c, f"_c{i}", quoted=True) for i, c in enumerate(p.conditions)]
        if p.breakdown is not None:
            cols.append(exp.alias_(p.breakdown.copy(), "_b", quoted=True))
        if p.bucketing is not None:
            cols.append(exp.alias_(p.bucketing.key_sql(ts.copy(), p.start), "_u", quoted=True))
        return (
            exp.select(*cols)
            .from_(exp.table_(schema.collection, quoted=True))
            .where(exp.and_(*where), copy=False)
        )

    def _list_conditions(self) -> list[int]:
        """Conditions whose times each actor needs as a list (not the entry-only ones)."""
        p = self.plan
        steps = p.step_cond if p.order == "unordered" else p.step_cond[1:]
        return sorted({*steps, *p.exclusion_cond})

    def _actors(self) -> Layers:
        p = self.plan
        t = col("_t")
        entry_steps = p.step_cond if p.order == "unordered" else p.step_cond[:1]
        in_range = exp.and_(
            exp.or_(*[col(f"_c{c}") for c in sorted(set(entry_steps))]),
            exp.GTE(this=t.copy(), expression=self.params.bind(epoch_us(p.start))),
            exp.LT(this=t.copy(), expression=self.params.bind(epoch_us(p.end))),
        )
        fields: list[exp.Expr] = [t.copy()]
        if p.breakdown is not None:
            # (has value, value): among entries at one time the last is the greatest value.
            fields += [exp.Not(this=exp.Is(this=col("_b"), expression=exp.Null())), col("_b")]
        if p.bucketing is not None:
            fields.append(col("_u"))
        aggs: dict[str, exp.Expr] = {
            f"_e{c}": ListAgg(this=t.copy(), where=col(f"_c{c}")) for c in self._list_conditions()
        }
        if p.order == "strict":
            aggs["_all"] = ListAgg(this=t.copy())
        aggs["_en"] = ListSort(this=ListAgg(this=TupleOf(expressions=fields), where=in_range))
        select = exp.select(col("_a"), *[exp.alias_(e, n, quoted=True) for n, e in aggs.items()])
        select = select.from_(self._rows().subquery("_rows", copy=False)).group_by(col("_a"), copy=False)
        layers = Layers(select, ["_a", *aggs])
        unpack = {"_s": zip_map(TupleGet(this=_var("v"), index=ONE), {"v": "_en"})}
        if p.breakdown is not None:
            unpack["_bv"] = zip_map(TupleGet(this=_var("v"), index=exp.Literal.number(3)), {"v": "_en"})
        if p.bucketing is not None:
            unpack["_ub"] = zip_map(
                TupleGet(this=_var("v"), index=exp.Literal.number(len(fields))), {"v": "_en"}
            )
        layers.add(unpack, drop=["_en"], where=exp.GT(this=ListLen(this=col("_en")), expression=ZERO))
        return layers

    # -- 3: attempts' times per step -----------------------------------------------------------

    def _last_use(self) -> dict[int, int]:
        """After which step's merge each condition list is no longer needed (exclusions: -1)."""
        p = self.plan
        last = {p.step_cond[k]: k for k in range(1, p.n_steps)}
        return last | {c: -1 for c in p.exclusion_cond}

    def _levels(self, layers: Layers) -> None:
        p = self.plan
        n = p.n_steps
        if p.order == "unordered":
            keys = {
                f"_k{k}": ListMergeKeys(
                    this=col("_s"), expression=col(f"_e{p.step_cond[k]}"), inclusive=exp.true()
                )
                for k in range(n)
            }
            layers.add(keys, drop=[f"_e{c}" for c in sorted(set(p.step_cond))])
            layers.add(
                {f"_q{k}": ListMergedNext(this=col(f"_k{k}"), inclusive=exp.true()) for k in range(n)},
                drop=list(keys),
            )
            return
        last = self._last_use()
        for k in range(1, n):
            cond = p.step_cond[k]
            done = [f"_e{cond}"] if last.get(cond) == k else []
            new = {
                f"_k{k}": ListMergeKeys(
                    this=col(_q(k - 1)), expression=col(f"_e{cond}"), inclusive=exp.false()
                )
            }
            if p.order == "strict":
                new[f"_ka{k}"] = ListMergeKeys(
                    this=col(_q(k - 1)), expression=col("_all"), inclusive=exp.false()
                )
            layers.add(new, drop=done)
            nxt = {f"_q{k}": ListMergedNext(this=col(f"_k{k}"), inclusive=exp.false())}
            if p.order == "strict":
                nxt[f"_m{k}"] = ListMergedNext(this=col(f"_ka{k}"), inclusive=exp.false())
            layers.add(nxt, drop=list(new))
            if p.order == "strict":
                # Step k counts only if no other event comes first, and step k-1 counted. The
                # times list itself stays the plain "next step-k event" so that it stays sorted.
                ok: exp.Expr = exp.EQ(this=_var("n"), expression=_var("m"))
                arrays = {"n": f"_q{k}", "m": f"_m{k}"}
                if k > 1:
                    ok, arrays["o"] = exp.and_(_var("o"), ok), f"_ok{k - 1}"
                layers.add({f"_ok{k}": zip_map(ok, arrays)}, drop=[f"_m{k}"])
        if p.order == "strict":
            layers.drop("_all")

    def _exclusions(self, layers: Layers) -> None:
        p = self.plan
        if not p.exclusion_cond:
            return
        keys = {
            f"_xk{i}": ListMergeKeys(
                this=col(_q(x.from_step)), expression=col(f"_e{c}"), inclusive=exp.false()
            )
            for i, (x, c) in enumerate(zip(p.req.exclusions, p.exclusion_cond, strict=True))
        }
        layers.add(keys, drop=[f"_e{c}" for c in sorted(set(p.exclusion_cond))])
        layers.add(
            {f"_nx{i}": ListMergedNext(this=col(k), inclusive=exp.false()) for i, k in enumerate(keys)},
            drop=list(keys),
        )

    # -- 4: per attempt and per actor ----------------------------------------------------------

    def _reached(self, step_var: str, ok_var: str | None = None) -> exp.Expr:
        """1 when the attempt's step (lambda variable) is within the window (and ``ok_var``)."""
        limit = exp.Add(this=_var("s"), expression=self.window.copy())
        cond: exp.Expr = exp.LTE(this=_var(step_var), expression=limit)
        if ok_var is not None:
            cond = exp.and_(_var(ok_var), cond)
        return case_when(cond, ONE, ZERO)

    def _attempt_levels(self, layers: Layers) -> None:
        """``_lf``: per attempt, the steps reached within the window; 0 when disqualified."""
        p = self.plan
        n = p.n_steps
        first = 0 if p.order == "unordered" else 1
        step = (lambda k: f"_q{k}") if p.order == "unordered" else _q
        arrays = {"s": "_s", **{f"v{k}": step(k) for k in range(first, n)}}
        level: exp.Expr = ZERO if first == 0 else ONE
        for k in range(first, n):
            level = exp.Add(this=level, expression=self._reached(f"v{k}"))
        if p.order == "strict":
            arrays |= {f"o{k}": f"_ok{k}" for k in range(1, n)}
            level = ONE.copy()
            for k in range(1, n):
                level = exp.Add(this=level, expression=self._reached(f"v{k}", f"o{k}"))
        layers.add({"_lv": zip_map(level, arrays)}, drop=[f"_ok{k}" for k in range(1, n)])
        if not p.exclusion_cond:
            layers.add({"_lf": col("_lv")}, drop=["_lv"])
            return
        limit = exp.Add(this=_var("s"), expression=self.window.copy())
        hits: list[exp.Expr] = []
        arrays = {"lv": "_lv", "s": "_s"}
        for i, x in enumerate(p.req.exclusions):
            arrays[f"a{i}"], arrays[f"b{i}"], arrays[f"x{i}"] = _q(x.from_step), _q(x.to_step), f"_nx{i}"
            reached_b = exp.GT(this=_var("lv"), expression=exp.Literal.number(x.to_step))
            before = case_when(
                reached_b,
                exp.LT(this=_var(f"x{i}"), expression=_var(f"b{i}")),
                exp.LTE(this=_var(f"x{i}"), expression=limit.copy()),
            )
            reached_a = exp.GT(this=_var("lv"), expression=exp.Literal.number(x.from_step))
            hits.append(exp.and_(reached_a, before))
        body = case_when(exp.or_(*hits), ZERO, _var("lv"))
        layers.add({"_lf": zip_map(body, arrays)}, drop=["_lv", *[f"_nx{i}" for i in range(len(hits))]])

    def per_actor(self) -> Layers:
        """One row per counted actor: ``_L`` (best level), ``_j`` (chosen attempt), ``_d{k}``, ``_bd``."""
        layers = self._actors()
        self._levels(layers)
        self._exclusions(layers)
        self._attempt_levels(layers)
        if self.plan.req.funnel_viz == "trends":
            return layers
        layers.add({"_L": ListMax(this=col("_lf"))})
        layers.add(
            {"_j": ListLastIndexOf(this=col("_lf"), value=col("_L"))},
            where=exp.GT(this=col("_L"), expression=ZERO),
        )
        self._times(layers)
        return layers

    def _times(self, layers: Layers) -> None:
        """``_d{k}``: microseconds from step k-1 to step k on the chosen attempt (if it got there)."""
        p = self.plan
        n = p.n_steps
        path = [_q(k) for k in range(n)]
        if p.order == "unordered":
            firsts = exp.Array(expressions=[_at(c, "_j") for c in [f"_q{k}" for k in range(n)]])
            limit = exp.Add(this=_at("_s", "_j"), expression=self.window.copy())
            kept = case_when(
                exp.LTE(this=_var("v"), expression=limit), _var("v"), exp.Literal.number(LIST_NONE)
            )
            layers.add(
                {
                    "_tau": ListSort(
                        this=ListZipMap(this=kept, names=[exp.to_identifier("v")], arrays=[firsts])
                    )
                }
            )
            path = ["_tau"] * n
        new: dict[str, exp.Expr] = {}
        for k in range(1, n):
            if p.order == "unordered":
                cur, prev = (
                    element("_tau", exp.Literal.number(k + 1)),
                    element("_tau", exp.Literal.number(k)),
                )
            else:
                cur, prev = _at(path[k], "_j"), _at(path[k - 1], "_j")
            gap = exp.Sub(this=cur, expression=prev)
            new[f"_d{k}"] = case_when(exp.GT(this=col("_L"), expression=exp.Literal.number(k)), gap)
        if p.breakdown is not None:
            new["_bd"] = _at("_bv", "_j")
        layers.add(new)

"""HyperLogLog in SQL: mergeable unique-actor sketches stored as rows of a table.

A sketch is the set of its non-empty registers, one row ``(reg, rnk)`` each, next to the
rollup's key columns. Merging sketches is ``MAX(rnk) GROUP BY reg``, which is why a rollup
row can be added to (incremental maintenance takes the larger rank) and why any set of
rollup rows, for any union of buckets, events and breakdown values, can be estimated.

Registers come from a 64-bit hash of the actor: the low ``P`` bits pick the register, the
next 32 bits give the rank (1 + leading zeros of those 32 bits; 33 when all are zero, which
bounds the estimate at about 2^32 * m — far beyond any actor count here).

The estimate is the original HyperLogLog (Flajolet et al., 2007) with its small-range
correction (linear counting while the raw estimate is below 2.5 m): with ``P = 14``
(m = 16,384 registers) the relative standard error is ``1.04 / sqrt(m)`` ≈ 0.81% for
large counts, and far smaller below a few thousand actors, where linear counting is nearly
exact (it only errs through hash collisions between registers). ``ERROR_BOUND`` (4 standard
errors, ≈ 3.3%) is what tests and the docs promise.
"""

from __future__ import annotations

import math

from sqlglot import exp

from aggregata.sql.dialects import ActorHash

P = 14
M = 1 << P
STANDARD_ERROR = 1.04 / math.sqrt(M)
ERROR_BOUND = 4 * STANDARD_ERROR
_ALPHA = 0.7213 / (1 + 1.079 / M)
_RANK_BITS = 32


def _num(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def actor_hash(actor: exp.Expr) -> exp.Expr:
    """The 64-bit hash ``register`` and ``rank`` take apart (compute it once per row)."""
    return ActorHash(this=actor)


def register(hashed: exp.Expr) -> exp.Expr:
    """The register (0 … m-1) an actor with hash ``hashed`` updates."""
    return exp.BitwiseAnd(this=hashed, expression=_num(M - 1))


def rank(hashed: exp.Expr) -> exp.Expr:
    """1 + leading zeros of the 32 hash bits after the register bits (1 … 33).

    ``w | 1`` has the same integer log2 as ``w`` for every ``w`` ≥ 1 and keeps the
    logarithm defined at 0 (engines may evaluate both branches), where the rank is 33.
    """
    shifted = exp.Paren(this=exp.BitwiseRightShift(this=hashed, expression=_num(P)))
    w = exp.Paren(this=exp.BitwiseAnd(this=shifted, expression=_num((1 << _RANK_BITS) - 1)))
    positive = exp.Paren(this=exp.BitwiseOr(this=w.copy(), expression=_num(1)))
    log2 = exp.Floor(this=exp.Log(this=_num(2), expression=positive))
    return exp.Case(
        ifs=[exp.If(this=exp.EQ(this=w.copy(), expression=_num(0)), true=_num(_RANK_BITS + 1))],
        default=exp.Sub(this=_num(_RANK_BITS), expression=log2),
    )


def estimate(nonzero: exp.Expr, inverse_sum: exp.Expr) -> exp.Expr:
    """Cardinality from ``COUNT(*)`` and ``SUM(2^-rnk)`` over one merged sketch's rows."""
    empty = exp.Paren(this=exp.Sub(this=_num(M), expression=nonzero))
    total = exp.Paren(this=exp.Add(this=inverse_sum, expression=empty.copy()))
    raw = exp.Div(this=_num(_ALPHA * M * M), expression=total)
    linear = exp.Mul(
        this=_num(M),
        expression=exp.Ln(this=exp.Div(this=_num(float(M)), expression=empty.copy())),
    )
    small = exp.and_(
        exp.LTE(this=raw.copy(), expression=_num(2.5 * M)), exp.GT(this=empty.copy(), expression=_num(0))
    )
    return exp.Case(ifs=[exp.If(this=small, true=linear)], default=raw)


def estimate_aggregate(rnk: exp.Expr) -> exp.Expr:
    """The estimate as an aggregate over rows that each hold one merged register's rank."""
    inverse = exp.Sum(this=exp.Pow(this=_num(2.0), expression=exp.Neg(this=rnk)))
    return estimate(exp.Count(this=exp.Star()), inverse)


def estimate_python(ranks: dict[int, int]) -> float:
    """The same estimate in Python, for tests and docs (ranks by register)."""
    empty = M - len(ranks)
    raw = _ALPHA * M * M / (sum(2.0**-r for r in ranks.values()) + empty)
    if raw <= 2.5 * M and empty > 0:
        return M * math.log(M / empty)
    return raw

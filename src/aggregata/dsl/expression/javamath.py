"""Java's double arithmetic and ``Math`` functions for the expression evaluator.

Pipeline scripts must compute what Elasticsearch's Painless computes, so division by zero,
overflow and domain errors follow Java (±Infinity, NaN) instead of raising, ``%`` is
``fmod`` and ``Math.round`` rounds half up. Also here: the :class:`Function` record that
lets callers (``moving_fn``) add functions, and the argument helpers they use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from aggregata.errors import BadRequest

Value = float | bool | None | tuple[float, ...]
"""What an expression computes: a double, a boolean, null, or an array (``values``)."""


class Function(NamedTuple):
    """A function scripts may call by its dotted name; ``impl`` gets evaluated arguments."""

    name: str
    min_args: int
    max_args: int
    impl: Callable[[tuple[Value, ...]], Value]


def script_error(reason: str) -> BadRequest:
    """A runtime script failure: a 400 with Elasticsearch's ``script_exception`` type."""
    return BadRequest(reason, type="script_exception")


def describe(v: Value) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    return "an array" if isinstance(v, tuple) else "a number"


def number_args(fn: str, args: Sequence[Value]) -> tuple[float, ...] | None:
    """The arguments as doubles, or ``None`` when one is null (null propagates)."""
    out: list[float] = []
    for a in args:
        if a is None:
            return None
        if isinstance(a, bool | tuple):
            raise script_error(f"{fn} expects numbers, got {describe(a)}")
        out.append(a)
    return tuple(out)


def array_arg(fn: str, arg: Value) -> tuple[float, ...]:
    if not isinstance(arg, tuple):
        raise script_error(f"{fn} expects an array as its first argument, got {describe(arg)}")
    return arg


# -- Java double semantics ---------------------------------------------------------------


def java_div(a: float, b: float) -> float:
    """``a / b`` for doubles: division by zero is ±Infinity or NaN, never an exception."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def java_mod(a: float, b: float) -> float:
    """Java's ``%``: the sign follows the dividend (``fmod``), ``x % 0`` is NaN."""
    if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
        return math.nan
    return math.fmod(a, b)


def _odd_integer(x: float) -> bool:
    return math.isfinite(x) and x == math.floor(x) and math.fmod(x, 2) != 0


def java_pow(a: float, b: float) -> float:
    """``Math.pow``: overflow gives ±Infinity and domain errors NaN instead of raising."""
    try:
        return math.pow(a, b)
    except OverflowError:
        return -math.inf if a < 0 and _odd_integer(b) else math.inf
    except ValueError:
        if a == 0:  # 0 ** negative
            return -math.inf if math.copysign(1.0, a) < 0 and _odd_integer(b) else math.inf
        return math.nan


def java_round(x: float) -> float:
    """``Math.round``: ``floor(x + 0.5)`` into a long (NaN → 0, saturating at the long range)."""
    if math.isnan(x):
        return 0.0
    if x >= 2.0**63:
        return 9.223372036854775807e18
    if x <= -(2.0**63):
        return -9.223372036854775808e18
    r = math.floor(x)
    return float(r + 1 if x - r >= 0.5 else r)


def _log(x: float, log: Callable[[float], float]) -> float:
    if math.isnan(x) or x < 0:
        return math.nan
    return -math.inf if x == 0 else log(x)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _integral(x: float, op: Callable[[float], int]) -> float:
    return float(op(x)) if math.isfinite(x) else x


def _minmax(a: float, b: float, pick: Callable[[float, float], float]) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else pick(a, b)


def _math(name: str, arity: int, fn: Callable[..., float]) -> Function:
    def impl(args: tuple[Value, ...]) -> Value:
        nums = number_args(name, args)
        return None if nums is None else fn(*nums)

    return Function(name, arity, arity, impl)


MATH_FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        _math("Math.abs", 1, abs),
        _math("Math.max", 2, lambda a, b: _minmax(a, b, max)),
        _math("Math.min", 2, lambda a, b: _minmax(a, b, min)),
        _math("Math.sqrt", 1, lambda x: math.nan if x < 0 else math.sqrt(x)),
        _math("Math.pow", 2, java_pow),
        _math("Math.log", 1, lambda x: _log(x, math.log)),
        _math("Math.log10", 1, lambda x: _log(x, math.log10)),
        _math("Math.exp", 1, _exp),
        _math("Math.round", 1, java_round),
        _math("Math.floor", 1, lambda x: _integral(x, math.floor)),
        _math("Math.ceil", 1, lambda x: _integral(x, math.ceil)),
    )
}
CONSTANTS: dict[str, float] = {
    "Math.PI": math.pi,
    "Math.E": math.e,
    "Double.NaN": math.nan,
    "Double.POSITIVE_INFINITY": math.inf,
    "Double.NEGATIVE_INFINITY": -math.inf,
    "Double.MAX_VALUE": 1.7976931348623157e308,
    "Double.MIN_VALUE": 5e-324,
}

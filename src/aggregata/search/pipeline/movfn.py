"""Elasticsearch's ``MovingFunctions`` and the ``moving_avg`` models, ported line for line.

``moving_fn`` scripts call ``MovingFunctions.*`` and ``moving_avg`` models are built on the
same code, so users moving between Elasticsearch and Aggregata get the same numbers. That
includes ES's quirks, kept on purpose: ``linearWeightedAvg`` divides by ``1 + Σweights``
(not ``Σweights``), ``holt`` returns the level without the trend, ``stdDev`` is the
population deviation around the average it is given, and ``sum([])`` is 0 while the
others return NaN for an empty window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aggregata.dsl.expression import Function, Value, array_arg, number_args, script_error
from aggregata.errors import BadRequest


def _present(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def mf_max(values: Sequence[float]) -> float:
    return max(values) if values else math.nan


def mf_min(values: Sequence[float]) -> float:
    return min(values) if values else math.nan


def mf_sum(values: Sequence[float]) -> float:
    return math.fsum(_present(values)) if values else 0.0


def unweighted_avg(values: Sequence[float]) -> float:
    vs = _present(values)
    return sum(vs) / len(vs) if vs else math.nan


def std_dev(values: Sequence[float], avg: float) -> float:
    if math.isnan(avg):
        return math.nan
    vs = _present(values)
    if not vs:
        return math.nan
    return math.sqrt(sum((v - avg) ** 2 for v in vs) / len(vs))


def linear_weighted_avg(values: Sequence[float]) -> float:
    avg, total_weight, current = 0.0, 1, 1
    for v in _present(values):
        avg += v * current
        total_weight += current
        current += 1
    return math.nan if total_weight == 1 else avg / total_weight


def ewma(values: Sequence[float], alpha: float) -> float:
    avg = math.nan
    for i, v in enumerate(_present(values)):
        avg = v if i == 0 else v * alpha + avg * (1 - alpha)
    return avg


def holt(values: Sequence[float], alpha: float, beta: float) -> float:
    vs = _present(values)
    if not vs:
        return math.nan
    s = b = last_s = last_b = 0.0
    for i, v in enumerate(vs):
        if i == 0:
            s, b = v, 0.0
        else:
            s = alpha * v + (1.0 - alpha) * (last_s + last_b)
            b = beta * (s - last_s) + (1 - beta) * last_b
        last_s, last_b = s, b
    return s


def holt_winters(
    values: Sequence[float], alpha: float, beta: float, gamma: float, period: int, multiplicative: bool
) -> float:
    if not values:
        return math.nan
    if len(values) < period * 2:
        raise BadRequest(
            f"Holt-Winters aggregation requires at least (2 * period == 2 * {period} == {2 * period}) "
            f"data-points to function.  Only [{len(values)}] were provided."
        )
    padding = 0.0000000001 if multiplicative else 0.0
    vs = [v + padding for v in _present(values)]
    if not vs:
        return math.nan
    vs += [0.0] * (len(values) - len(vs))  # Java's array keeps its length, zero-filled
    s = b = last_b = 0.0
    for i in range(period):
        s += vs[i]
        b += (vs[i + period] - vs[i]) / period
    s /= period
    b /= period
    last_s = s
    seasonal = [0.0] * len(vs)
    if s != 0.0:
        for i in range(period):
            seasonal[i] = vs[i] / s
    for i in range(period, len(vs)):
        if multiplicative:
            s = alpha * (vs[i] / seasonal[i - period]) + (1.0 - alpha) * (last_s + last_b)
        else:
            s = alpha * (vs[i] - seasonal[i - period]) + (1.0 - alpha) * (last_s + last_b)
        b = beta * (s - last_s) + (1 - beta) * last_b
        if multiplicative:
            seasonal[i] = gamma * (vs[i] / (last_s + last_b)) + (1 - gamma) * seasonal[i - period]
        else:
            seasonal[i] = gamma * (vs[i] - (last_s - last_b)) + (1 - gamma) * seasonal[i - period]
        last_s, last_b = s, b
    idx = len(values) - period
    return (s + b) * seasonal[idx] if multiplicative else s + b + seasonal[idx]


# -- exposed to moving_fn scripts ------------------------------------------------------------


def _fn(name: str, n: int, impl: Callable[[tuple[float, ...], tuple[float, ...]], float]) -> Function:
    full = f"MovingFunctions.{name}"

    def call(args: tuple[Value, ...]) -> Value:
        values = array_arg(full, args[0])
        rest = number_args(full, args[1:])
        return None if rest is None else impl(values, rest)

    return Function(full, n, n, call)


def _holt_winters(args: tuple[Value, ...]) -> Value:
    name = "MovingFunctions.holtWinters"
    values = array_arg(name, args[0])
    nums = number_args(name, args[1:5])
    if nums is None:
        return None
    alpha, beta, gamma, period = nums
    if not isinstance(args[5], bool):
        raise script_error(f"{name} expects a boolean [multiplicative] argument")
    if period != int(period) or period < 1:
        raise script_error(f"{name} expects a positive integer period, got [{period}]")
    return holt_winters(values, alpha, beta, gamma, int(period), args[5])


MOVING_FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        _fn("max", 1, lambda v, _: mf_max(v)),
        _fn("min", 1, lambda v, _: mf_min(v)),
        _fn("sum", 1, lambda v, _: mf_sum(v)),
        _fn("unweightedAvg", 1, lambda v, _: unweighted_avg(v)),
        _fn("linearWeightedAvg", 1, lambda v, _: linear_weighted_avg(v)),
        _fn("stdDev", 2, lambda v, a: std_dev(v, a[0])),
        _fn("ewma", 2, lambda v, a: ewma(v, a[0])),
        _fn("holt", 3, lambda v, a: holt(v, a[0], a[1])),
        Function("MovingFunctions.holtWinters", 6, 6, _holt_winters),
    )
}


# -- moving_avg models -------------------------------------------------------------------------


@dataclass(frozen=True)
class MovAvgModel:
    """One ``moving_avg`` model: ``next`` is called with the window *before* each bucket."""

    name: str
    alpha: float = 0.3
    beta: float = 0.1

    def next(self, window: Sequence[float]) -> float:
        if self.name == "simple":
            return sum(window) / len(window)
        if self.name == "linear":
            return linear_weighted_avg(window)
        if self.name == "ewma":
            return ewma(window, self.alpha)
        return holt(window, self.alpha, self.beta)


_MODEL_SETTINGS = {"simple": (), "linear": (), "ewma": ("alpha",), "holt": ("alpha", "beta")}


def parse_model(model: object, settings: object, where: str) -> MovAvgModel:
    """Build a model from ``model`` and ``settings`` with ES's parameter checks."""
    if model == "holt_winters":
        raise BadRequest(
            f"[{where}] moving_avg model [holt_winters] is not supported (its default parameter "
            "minimization is randomized); use moving_fn with MovingFunctions.holtWinters"
        )
    if not isinstance(model, str) or model not in _MODEL_SETTINGS:
        raise BadRequest(
            f"Unknown model [{model}] specified.  Valid options are:[simple, linear, ewma, holt]"
        )
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise BadRequest(f"[{where}] settings must be an object")
    known = _MODEL_SETTINGS[model]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise BadRequest(f"Unrecognized parameter(s): [{', '.join(unknown)}]")
    values: dict[str, float] = {}
    for key in known:
        if key not in settings:
            continue
        v = settings[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise BadRequest(
                f"Parameter [{key}] must be a double, type `{type(v).__name__}` provided instead"
            )
        if not 0 <= v <= 1:
            raise BadRequest(f"Parameter [{key}] must be between 0-1 inclusive.  Provided value was [{v}]")
        values[key] = float(v)
    return MovAvgModel(model, **values)

"""A safe evaluator for the small expressions inside scripts and formulas.

``bucket_script``/``bucket_selector``/``moving_fn`` scripts and product-analytics formulas
(``A / B * 100``) arrive in request bodies, so they are user text: they are tokenized and
parsed here into a tiny AST and interpreted, never handed to ``eval``/``exec``/``compile``.
Nothing in the interpreter looks up Python attributes, so ``().__class__`` or
``__import__('os')`` are syntax errors or unknown names, not escapes.

The language is the Painless subset people write in those scripts::

    params.x  params['x']  x          variables (``params.`` is optional)
    1  2.5  1e3  true  false  null     literals
    - + !  * / %  + -  < <= > >=  == !=  &&  ||  ?:   (Java precedence)
    Math.abs/max/min/sqrt/pow/log/log10/exp/round/floor/ceil, Math.PI, Math.E
    Double.NaN/POSITIVE_INFINITY/NEGATIVE_INFINITY/MAX_VALUE/MIN_VALUE, values.length
    (double) (int) (long) (float)      casts
    an optional leading ``return`` and trailing ``;``

Numbers are IEEE doubles with Java's rules, because the pipeline code must match what
Elasticsearch computes: ``1/0`` is Infinity, ``0/0`` and ``Math.sqrt(-1)`` are NaN,
overflow is Infinity, ``%`` is ``fmod`` and ``Math.round`` is ``floor(x + 0.5)``. Unlike
Painless, integer literals are doubles too (``5/2`` is 2.5, a formula's expectation).
JSON cannot hold NaN/Infinity, so :meth:`Expression.evaluate` returns ``None`` for them;
:meth:`Expression.evaluate_raw` keeps them for callers that must tell them apart.

``null`` propagates through arithmetic and functions (``null + 1`` is null), compares false
with ``< <= > >=``, equals only ``null``, and is false in a boolean context. Applying an
operator to the wrong type (``1 && true``, ``true + 1``) is a 400, as are syntax errors,
which name their position. Limits: 10,000 characters and nesting depth 64.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from aggregata.dsl.expression.javamath import (
    CONSTANTS,
    MATH_FUNCTIONS,
    Function,
    Value,
    array_arg,
    java_div,
    java_mod,
    java_pow,
    java_round,
    number_args,
    script_error,
)
from aggregata.dsl.expression.syntax import MAX_DEPTH, Node, Parser, is_number, to_value
from aggregata.errors import BadRequest, ParsingError

MAX_LENGTH = 10_000

__all__ = [
    "CONSTANTS",
    "MATH_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "Function",
    "Script",
    "Value",
    "array_arg",
    "compile_expression",
    "compile_script",
    "is_number",
    "java_div",
    "java_mod",
    "java_pow",
    "java_round",
    "number_args",
    "script_error",
    "to_value",
]


@dataclass(frozen=True)
class Expression:
    """A compiled expression: immutable, thread-safe, evaluated once per bucket or row."""

    text: str
    names: frozenset[str]
    root: Node = field(repr=False)

    def evaluate_raw(self, variables: Mapping[str, object]) -> float | bool | None:
        """The result with Java's NaN/±Infinity kept (``bucket_script`` renders them null)."""
        v = self.root.eval(variables)
        if isinstance(v, tuple):
            raise script_error("script must return a number or a boolean, not an array")
        return v

    def evaluate(self, variables: Mapping[str, object]) -> float | bool | None:
        """The result as JSON can hold it: NaN and ±Infinity (``1/0``, overflow) are ``None``."""
        v = self.evaluate_raw(variables)
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v


def compile_expression(
    text: str,
    allowed_names: Collection[str] | None = None,
    *,
    functions: Mapping[str, Function] | None = None,
) -> Expression:
    """Parse ``text``; with ``allowed_names`` an unknown variable is a compile error.

    ``functions`` adds callables by dotted name (``moving_fn`` adds ``MovingFunctions.*``).
    """
    if not isinstance(text, str):
        raise ParsingError("script source must be a string", type="script_exception")
    if len(text) > MAX_LENGTH:
        raise ParsingError(
            f"compile error: script is {len(text)} characters long, the limit is {MAX_LENGTH}",
            type="script_exception",
        )
    parser = Parser(text, allowed_names, functions or {})
    root = parser.script()
    return Expression(text, frozenset(parser.names), root)


# -- script objects ------------------------------------------------------------------------

SCRIPT_LANGS = frozenset({"painless", "expression"})


@dataclass(frozen=True)
class Script:
    """A compiled ``script`` parameter: its expression plus its own ``params``."""

    expression: Expression
    params: Mapping[str, object]

    def evaluate_raw(self, variables: Mapping[str, object]) -> float | bool | None:
        """Evaluate with the script's params, overridden by ``variables`` (as Elasticsearch)."""
        return self.expression.evaluate_raw({**self.params, **variables} if self.params else variables)


def compile_script(
    script: object,
    variables: Collection[str] = (),
    *,
    functions: Mapping[str, Function] | None = None,
    where: str = "script",
) -> Script:
    """Compile Elasticsearch's script forms: ``"src"``, ``{"source"|"inline": src, "params"}``.

    ``variables`` are the names the caller binds (``buckets_path`` keys, ``values``); the
    script's ``params`` are added, so a typo is a compile error before any bucket is read.
    """
    params: dict[str, object] = {}
    source: object
    if isinstance(script, str):
        source = script
    elif isinstance(script, dict):
        unknown = set(script) - {"source", "inline", "lang", "params", "options"}
        if "id" in script:
            raise BadRequest(f"[{where}] stored scripts (script id) are not supported")
        if unknown:
            raise ParsingError(f"[{where}] unknown field [{sorted(unknown)[0]}] in script")
        lang = script.get("lang", "painless")
        if lang not in SCRIPT_LANGS:
            raise BadRequest(f"script_lang not supported [{lang}]", type="script_exception")
        source = script.get("source", script.get("inline"))
        if not isinstance(source, str):
            raise ParsingError(f"[{where}] script must have a [source] string")
        raw_params = script.get("params") or {}
        if not isinstance(raw_params, dict):
            raise ParsingError(f"[{where}] script [params] must be an object")
        params = dict(raw_params)
    else:
        raise ParsingError(f"[{where}] script must be a string or an object")
    expression = compile_expression(source, set(variables) | set(params), functions=functions)
    for name in expression.names & set(params):
        to_value(name, params[name])  # a referenced param must be usable: fail at compile time
    return Script(expression, params)

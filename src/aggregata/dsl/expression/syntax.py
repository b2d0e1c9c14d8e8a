"""Tokenizer, AST and recursive-descent parser of the expression language.

The AST is interpreted directly (``Node.eval``); nothing here calls ``eval``/``exec`` or
looks up Python attributes. Runs of one precedence level are n-ary ``_Chain`` nodes
evaluated in a loop, so ``1+1+...+1`` does not recurse per operator, and nesting (parens,
unary operators, ternaries, calls) is capped at ``MAX_DEPTH``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from aggregata.dsl.expression.javamath import (
    CONSTANTS,
    MATH_FUNCTIONS,
    Function,
    Value,
    describe,
    java_div,
    java_mod,
    script_error,
)
from aggregata.errors import ParsingError

MAX_DEPTH = 64
_CASTS = frozenset({"double", "float", "int", "long"})
_KEYWORDS = frozenset({"true", "false", "null", "params", "return"})

# -- tokens ------------------------------------------------------------------------------


class _Tok(NamedTuple):
    kind: str  # num, ident, str, op, end
    text: str
    pos: int


_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[dDfFlL]?)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%()<>!?:,.\[\];])"
)


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _syntax(text, pos, f"unexpected character [{text[pos]}]")
        kind = m.lastgroup or "ws"
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


def _syntax(text: str, pos: int, msg: str) -> ParsingError:
    start = max(0, pos - 20)
    snippet = text[start : pos + 20]
    return ParsingError(
        f"compile error: {msg} at position {pos} in script [...{snippet}...]"
        if len(text) > 40
        else f"compile error: {msg} at position {pos} in script [{text}]",
        type="script_exception",
    )


# -- AST -----------------------------------------------------------------------------------

Env = Mapping[str, Any]


class Node:
    __slots__ = ()

    def eval(self, env: Env) -> Value:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Const(Node):
    value: Value

    def eval(self, env: Env) -> Value:
        return self.value


@dataclass(frozen=True, slots=True)
class _Var(Node):
    name: str

    def eval(self, env: Env) -> Value:
        if self.name not in env:
            raise script_error(f"variable [{self.name}] is not defined")
        return to_value(self.name, env[self.name])


def is_number(v: object) -> bool:
    """A real number of any Python flavour (int, float, Decimal, numpy), but not a bool."""
    return isinstance(v, numbers.Real | Decimal) and not isinstance(v, bool)


def to_value(name: str, v: object) -> Value:
    """A variable's Python value as an expression value (every number becomes a double)."""
    if v is None or isinstance(v, bool):
        return v
    if is_number(v):
        return float(v)  # type: ignore[arg-type]
    if isinstance(v, list | tuple) and all(is_number(x) for x in v):
        return tuple(float(x) for x in v)
    raise script_error(f"variable [{name}] must be a number, boolean, null or array of numbers")


def _number(op: str, v: Value) -> float | None:
    if v is None or (isinstance(v, float) and not isinstance(v, bool)):
        return v
    raise script_error(f"cannot apply [{op}] to {describe(v)}")


def _truth(op: str, v: Value) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    raise script_error(f"[{op}] expects a boolean, got {describe(v)}")


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": java_div,
    "%": java_mod,
}
_ORDER: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _equal(a: Value, b: Value) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        raise script_error("cannot compare arrays with [==]")
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


@dataclass(frozen=True, slots=True)
class _Unary(Node):
    op: str
    operand: Node

    def eval(self, env: Env) -> Value:
        v = self.operand.eval(env)
        if self.op == "!":
            return not _truth("!", v)
        x = _number(self.op, v)
        return None if x is None else (-x if self.op == "-" else x)


@dataclass(frozen=True, slots=True)
class _Cast(Node):
    kind: str
    operand: Node

    def eval(self, env: Env) -> Value:
        x = _number(f"({self.kind})", self.operand.eval(env))
        if x is None or self.kind in ("double", "float"):
            return x
        if math.isnan(x):
            return 0.0
        return (
            float(max(-(2**63), min(2**63 - 1, math.trunc(x))))
            if math.isfinite(x)
            else math.copysign(2.0**63, x)
        )


@dataclass(frozen=True, slots=True)
class _Chain(Node):
    """A left-associative run of one precedence level, evaluated in a loop (no deep recursion)."""

    first: Node
    rest: tuple[tuple[str, Node], ...]

    def eval(self, env: Env) -> Value:
        acc = self.first.eval(env)
        for op, node in self.rest:
            if op in ("&&", "||"):
                left = _truth(op, acc)
                if left == (op == "||"):
                    acc = left
                    continue
                acc = _truth(op, node.eval(env))
                continue
            right = node.eval(env)
            if op in ("==", "!="):
                acc = _equal(acc, right) == (op == "==")
            elif op in _ORDER:
                a, b = _number(op, acc), _number(op, right)
                acc = False if a is None or b is None else _ORDER[op](a, b)
            else:
                a, b = _number(op, acc), _number(op, right)
                acc = None if a is None or b is None else _ARITH[op](a, b)
        return acc


@dataclass(frozen=True, slots=True)
class _Cond(Node):
    cond: Node
    then: Node
    other: Node

    def eval(self, env: Env) -> Value:
        return self.then.eval(env) if _truth("?:", self.cond.eval(env)) else self.other.eval(env)


@dataclass(frozen=True, slots=True)
class _Call(Node):
    fn: Function
    args: tuple[Node, ...]

    def eval(self, env: Env) -> Value:
        return self.fn.impl(tuple(a.eval(env) for a in self.args))


@dataclass(frozen=True, slots=True)
class _Length(Node):
    """``values.length``: the size of an array variable (``moving_fn`` window guards)."""

    array: Node

    def eval(self, env: Env) -> Value:
        v = self.array.eval(env)
        if not isinstance(v, tuple):
            raise script_error(f"[.length] expects an array, got {describe(v)}")
        return float(len(v))


# -- parser --------------------------------------------------------------------------------

_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!="}),
    frozenset({"<", "<=", ">", ">="}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
)


class Parser:
    def __init__(self, text: str, allowed: Collection[str] | None, functions: Mapping[str, Function]) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.allowed = allowed
        self.functions = functions
        self.names: set[str] = set()

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, msg: str, tok: _Tok | None = None) -> ParsingError:
        return _syntax(self.text, (tok or self.tok).pos, msg)

    def unexpected(self) -> ParsingError:
        t = self.tok
        return self.error("unexpected end of script" if t.kind == "end" else f"unexpected token [{t.text}]")

    def accept(self, text: str) -> bool:
        if self.tok.kind in ("op", "ident") and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            t = self.tok
            got = "end of script" if t.kind == "end" else f"[{t.text}]"
            raise self.error(f"expected [{text}] but found {got}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression is nested too deeply (limit {MAX_DEPTH})")

    def script(self) -> Node:
        self.accept("return")
        self.depth = -1  # the top-level expression is depth 0; each nesting adds one
        node = self.expr()
        self.accept(";")
        if self.tok.kind != "end":
            raise self.unexpected()
        return node

    def expr(self) -> Node:
        self.enter()
        cond = self.binary(0)
        if self.accept("?"):
            then = self.expr()
            self.expect(":")
            cond = _Cond(cond, then, self.expr())
        self.depth -= 1
        return cond

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        first = self.binary(level + 1)
        rest: list[tuple[str, Node]] = []
        while self.tok.kind == "op" and self.tok.text in _LEVELS[level]:
            op = self.tok.text
            self.i += 1
            rest.append((op, self.binary(level + 1)))
        return _Chain(first, tuple(rest)) if rest else first

    def unary(self) -> Node:
        t = self.tok
        node: Node
        if t.kind == "op" and t.text in ("-", "+", "!"):
            self.i += 1
            self.enter()
            node = _Unary(t.text, self.unary())
            self.depth -= 1
            return node
        if t.kind == "op" and t.text == "(":
            nxt, close = self.toks[self.i + 1], self.toks[min(self.i + 2, len(self.toks) - 1)]
            if nxt.kind == "ident" and nxt.text in _CASTS and close.text == ")":
                self.i += 3
                self.enter()
                node = _Cast(nxt.text, self.unary())
                self.depth -= 1
                return node
        return self.primary()

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            value = float(t.text.rstrip("dDfFlL"))
            if not math.isfinite(value):
                raise self.error(f"number [{t.text}] is out of range", t)
            return _Const(value)
        if t.kind == "op" and t.text == "(":
            self.i += 1
            node = self.expr()
            self.expect(")")
            return node
        if t.kind == "ident":
            if t.text in ("true", "false", "null"):
                self.i += 1
                return _Const(None if t.text == "null" else t.text == "true")
            return self.name()
        raise self.unexpected()

    def name(self) -> Node:
        start = self.tok
        if start.text == "params":
            self.i += 1
            if self.accept("["):
                key = self.tok
                if key.kind != "str":
                    raise self.error("expected a quoted name inside params[...]")
                self.i += 1
                self.expect("]")
                return self.variable(key.text[1:-1], key)
            self.expect(".")
            if self.tok.kind != "ident":
                raise self.error("expected a name after [params.]")
            ident = self.tok
            self.i += 1
            return self.variable(ident.text, ident)
        if start.text in _KEYWORDS:
            raise self.unexpected()
        parts = [start.text]
        self.i += 1
        while self.tok.text == "." and self.toks[self.i + 1].kind == "ident":
            parts.append(self.toks[self.i + 1].text)
            self.i += 2
        dotted = ".".join(parts)
        if self.accept("("):
            return self.call(dotted, start)
        if dotted in CONSTANTS:
            return _Const(CONSTANTS[dotted])
        if len(parts) == 2 and parts[1] == "length" and parts[0] not in _KEYWORDS:
            return _Length(self.variable(parts[0], start))
        if len(parts) > 1:
            raise self.error(f"unknown name [{dotted}]", start)
        return self.variable(dotted, start)

    def variable(self, name: str, tok: _Tok) -> Node:
        if self.allowed is not None and name not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            raise self.error(f"unknown variable [{name}] (known: {known})", tok)
        self.names.add(name)
        return _Var(name)

    def call(self, name: str, tok: _Tok) -> Node:
        fn = self.functions.get(name) or MATH_FUNCTIONS.get(name)
        if fn is None:
            raise self.error(f"unknown function [{name}]", tok)
        args: list[Node] = []
        if not self.accept(")"):
            args.append(self.expr())
            while self.accept(","):
                args.append(self.expr())
            self.expect(")")
        if not fn.min_args <= len(args) <= fn.max_args:
            want = str(fn.min_args) if fn.min_args == fn.max_args else f"{fn.min_args}-{fn.max_args}"
            raise self.error(f"function [{name}] takes {want} argument(s), got {len(args)}", tok)
        return _Call(fn, tuple(args))

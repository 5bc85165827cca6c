"""Custom formulas from a spec, parsed by a whitelist into SymPy; nothing is ever evaluated.

A spec may define an activation ``{"expr": "x/(1+abs(x))"}`` in ``x``, or a loss term
``{"expr": "(o-t)**2/2"}`` in ``o`` and ``t``.  The text is untrusted, so it is read by the
small recursive-descent parser below, not by ``eval``, ``ast`` or ``sympify``.  The grammar::

    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | power
    power   := atom ("**" unary)?
    atom    := NUMBER | VARIABLE | FUNCTION "(" sum ("," sum)* ")" | "(" sum ")"

Anything else (attribute access, subscripts, lambdas, strings, unknown names) is rejected with
the offending token and its position.  Sizes are bounded (length, nesting, constants), and a
constant that overflows is an error, so no input can make parsing slow.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from .errors import SpecError

MAX_LENGTH = 1000
MAX_DEPTH = 64
MAX_NUMBER = 1e15


def _sigmoid(x: sp.Expr) -> sp.Expr:
    from .rules import Sigmoid

    return Sigmoid(x)


def _softplus(x: sp.Expr) -> sp.Expr:
    from .rules import Softplus

    return Softplus(x)


#: name -> (number of arguments, how to build it)
FUNCTIONS: dict[str, tuple[int, Callable[..., sp.Expr]]] = {
    "exp": (1, sp.exp),
    "log": (1, sp.log),
    "sqrt": (1, sp.sqrt),
    "abs": (1, sp.Abs),
    "tanh": (1, sp.tanh),
    "sigmoid": (1, _sigmoid),
    "softplus": (1, _softplus),
    "erf": (1, sp.erf),
    "max": (2, sp.Max),
    "min": (2, sp.Min),
}

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/(),])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def parse_formula(text: str, variables: dict[str, sp.Symbol], where: str) -> sp.Expr:
    """``text`` as a SymPy expression in ``variables``; :class:`SpecError` at ``where`` if it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(where, "the formula is empty", "write an expression such as " + _example(variables))
    if len(text) > MAX_LENGTH:
        raise SpecError(where, f"the formula has {len(text)} characters, more than {MAX_LENGTH}",
                        "write a shorter formula")
    parser = _Parser(_tokens(text, where), variables, where)
    result = parser.sum(0)
    if parser.peek() is not None:
        token = parser.peek()
        raise SpecError(where, f"unexpected {token.text!r} at position {token.position}",
                        "an operator (+ - * / **) or the end of the formula was expected here")
    if not (result.free_symbols <= set(variables.values())):
        raise SpecError(where, "the formula uses unknown names", "use only " + ", ".join(variables))
    return result


def _example(variables: dict[str, sp.Symbol]) -> str:
    return "x/(1+abs(x))" if "x" in variables else "(o-t)**2/2"


def _tokens(text: str, where: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            hint = "use ** for powers" if char == "^" else "use numbers, names, + - * / **, parentheses and commas"
            raise SpecError(where, f"unexpected character {char!r} at position {position}", hint)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], variables: dict[str, sp.Symbol], where: str) -> None:
        self.tokens = tokens
        self.index = 0
        self.variables = variables
        self.where = where

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise SpecError(self.where, "the formula ends too early",
                            f"complete it{' with ' + repr(text) if text else ''}")
        if text is not None and token.text != text:
            raise SpecError(self.where, f"expected {text!r} at position {token.position}, found {token.text!r}",
                            "check the parentheses and commas")
        self.index += 1
        return token

    def _deeper(self, depth: int) -> int:
        if depth >= MAX_DEPTH:
            token = self.peek()
            raise SpecError(self.where, f"the formula is nested too deeply (at position {token.position if token else '?'})",
                            f"use at most {MAX_DEPTH} levels of nesting")
        return depth + 1

    def sum(self, depth: int) -> sp.Expr:
        depth = self._deeper(depth)
        result = self.product(depth)
        while (token := self.peek()) is not None and token.text in ("+", "-"):
            self.take()
            right = self.product(depth)
            result = self._checked(result + right if token.text == "+" else result - right, token)
        return result

    def product(self, depth: int) -> sp.Expr:
        result = self.unary(depth)
        while (token := self.peek()) is not None and token.text in ("*", "/"):
            self.take()
            right = self.unary(depth)
            if token.text == "/" and right.is_zero:
                raise SpecError(self.where, f"division by zero at position {token.position}", "divide by something else")
            result = self._checked(result * right if token.text == "*" else result / right, token)
        return result

    def unary(self, depth: int) -> sp.Expr:
        token = self.peek()
        if token is not None and token.text in ("-", "+"):
            self.take()
            operand = self.unary(self._deeper(depth))
            return -operand if token.text == "-" else operand
        return self.power(depth)

    def power(self, depth: int) -> sp.Expr:
        base = self.atom(depth)
        token = self.peek()
        if token is not None and token.text == "**":
            self.take()
            exponent = self.unary(self._deeper(depth))
            if exponent.is_Number and abs(float(exponent)) > 64:
                raise SpecError(self.where, f"the exponent {exponent} at position {token.position} is too large",
                                "use exponents between -64 and 64")
            if base.is_zero and exponent.is_Number and exponent <= 0:
                raise SpecError(self.where, f"0 to a non-positive power at position {token.position}",
                                "this is undefined")
            return self._checked(base ** exponent, token)
        return base

    def atom(self, depth: int) -> sp.Expr:
        token = self.take()
        if token.kind == "number":
            value = float(token.text)
            if not math.isfinite(value) or abs(value) > MAX_NUMBER:
                raise SpecError(self.where, f"the number {token.text} at position {token.position} is too large",
                                f"use numbers up to {MAX_NUMBER:g}")
            return sp.Integer(int(token.text)) if token.text.isdigit() else sp.Float(value)
        if token.kind == "name":
            return self.name(token, depth)
        if token.text == "(":
            inner = self.sum(self._deeper(depth))
            self.take(")")
            return inner
        raise SpecError(self.where, f"unexpected {token.text!r} at position {token.position}",
                        "a number, a name or '(' was expected here")

    def name(self, token: _Token, depth: int) -> sp.Expr:
        following = self.peek()
        if following is not None and following.text == "(":
            if token.text not in FUNCTIONS:
                raise SpecError(self.where, f"unknown function {token.text!r} at position {token.position}",
                                "the functions allowed are: " + ", ".join(FUNCTIONS))
            arity, build = FUNCTIONS[token.text]
            self.take("(")
            args = [self.sum(self._deeper(depth))]
            while (comma := self.peek()) is not None and comma.text == ",":
                self.take()
                args.append(self.sum(self._deeper(depth)))
            self.take(")")
            if len(args) != arity:
                raise SpecError(self.where, f"{token.text} at position {token.position} takes {arity} argument(s), "
                                f"got {len(args)}", f"write {token.text}({', '.join('ab'[:arity])})")
            return self._checked(build(*args), token)
        if token.text in self.variables:
            return self.variables[token.text]
        if token.text in FUNCTIONS:
            raise SpecError(self.where, f"{token.text!r} at position {token.position} is a function",
                            f"call it: {token.text}(...)")
        raise SpecError(self.where, f"unknown name {token.text!r} at position {token.position}",
                        "the formula may use " + ", ".join(self.variables) + " and the functions "
                        + ", ".join(FUNCTIONS))

    def _checked(self, value: sp.Expr, token: _Token) -> sp.Expr:
        if value.has(sp.I):
            raise SpecError(self.where, f"the formula is complex at position {token.position}",
                            "check for the square root or logarithm of a negative number")
        if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise SpecError(self.where, f"the formula is undefined or infinite at position {token.position}",
                            "check for division by zero or log of zero")
        if value.is_Number and abs(float(value)) > MAX_NUMBER:
            raise SpecError(self.where, f"a constant in the formula is too large at position {token.position}",
                            f"keep constants up to {MAX_NUMBER:g}")
        return value

"""Custom formulas from a spec, checked by a whitelist parser without SymPy; nothing is ever evaluated.

A spec may define an activation ``{"expr": "x/(1+abs(x))"}`` in ``x``, or a loss term
``{"expr": "(o-t)**2/2"}`` in ``o`` and ``t``.  Input: the untrusted text.  Output: a
:class:`ParsedFormula`, a small frozen tree that :func:`symgrad.rules.formula_expr` turns into
SymPy when the model is built.  The text is read by the recursive-descent parser below, not by
``eval``, ``ast`` or ``sympify``, so validating a spec needs no SymPy.  The grammar::

    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | power
    power   := atom ("**" unary)?
    atom    := NUMBER | VARIABLE | FUNCTION "(" sum ("," sum)* ")" | "(" sum ")"

Anything else (attribute access, subscripts, lambdas, strings, control characters, unknown
names) is rejected with the offending token and its position.  Constant parts are computed in
floats as they are parsed, so a complex, infinite or huge constant is an error; and the work
SymPy will do later is bounded: length, nesting, literal exponents, the polynomial degree the
formula can reach (exponents multiply through nesting) and the number of nodes.
"""

from __future__ import annotations

import math
import operator
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import SpecError

MAX_LENGTH = 1000
MAX_DEPTH = 64
MAX_NUMBER = 1e15
MAX_EXPONENT = 64
#: The highest polynomial degree a formula may reach: SymPy's cancel/factor on the chain rule's
#: products grows steeply with it (a loss 1/(o - t + 2)**64 takes about 10 s, **32 under 1 s).
MAX_DEGREE = 32
MAX_NODES = 400


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _log(x: float) -> float:
    if x == 0:
        raise ZeroDivisionError("log(0)")
    return math.log(x)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


#: name -> (number of arguments, its value on floats, for the constant parts of a formula)
FUNCTIONS: dict[str, tuple[int, Callable[..., float]]] = {
    "exp": (1, math.exp),
    "log": (1, _log),
    "sqrt": (1, math.sqrt),
    "abs": (1, abs),
    "tanh": (1, math.tanh),
    "sigmoid": (1, _sigmoid),
    "softplus": (1, _softplus),
    "erf": (1, math.erf),
    "max": (2, max),
    "min": (2, min),
}

#: The binary operators, for floats here and for SymPy expressions in :func:`symgrad.rules.formula_expr`.
OPERATORS: dict[str, Callable[[object, object], object]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow,
}

_TOKEN = re.compile(r"""
    (?P<space>[ ]+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/(),])
""", re.VERBOSE)


# -- the tree ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """One node of a parsed formula.

    ``constant`` is its value when it names no variable (else None); ``degree`` bounds the
    polynomial degree it reaches in the variables; ``size`` counts its nodes.
    """

    constant: float | None = field(compare=False)
    degree: int = field(compare=False)
    size: int = field(compare=False)


@dataclass(frozen=True)
class Number(Node):
    text: str = ""

    @property
    def integer(self) -> bool:
        """Digits only: SymPy gets an exact Integer, anything else a Float."""
        return self.text.isdigit()


@dataclass(frozen=True)
class Variable(Node):
    name: str = ""


@dataclass(frozen=True)
class Negate(Node):
    operand: Node | None = None


@dataclass(frozen=True)
class Operation(Node):
    """``left op right`` for op in ``+ - * / **``."""

    op: str = ""
    left: Node | None = None
    right: Node | None = None


@dataclass(frozen=True)
class Call(Node):
    function: str = ""
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class ParsedFormula:
    """A formula that passed every check: its text, its variables' names and its tree."""

    text: str
    variables: tuple[str, ...]
    tree: Node


def parse_formula(text: str, variables: Iterable[str], where: str,
                  functions: dict[str, tuple[int, Callable[..., float]]] | None = None) -> ParsedFormula:
    """``text`` as a checked tree in ``variables``; :class:`SpecError` at ``where`` (a JSON path) if it is not one.

    ``functions`` (default :data:`FUNCTIONS`) is the whitelist of callable names with their arity
    and float value; ``check`` adds the derivative helpers that ``formulas`` prints (step).
    """
    names = tuple(variables)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(where, "the formula is empty", "write an expression such as " + _example(names))
    if len(text) > MAX_LENGTH:
        raise SpecError(where, f"the formula has {len(text)} characters, more than {MAX_LENGTH}",
                        "write a shorter formula")
    parser = _Parser(_tokens(text, where), names, where, FUNCTIONS if functions is None else functions)
    tree = parser.sum(0)
    if parser.peek() is not None:
        token = parser.peek()
        raise SpecError(where, f"unexpected {token.text!r} at position {token.position}",
                        "an operator (+ - * / **) or the end of the formula was expected here")
    if tree.degree > MAX_DEGREE:
        raise SpecError(where, f"the formula reaches degree {tree.degree} in {', '.join(names)}, more than "
                        f"{MAX_DEGREE} (exponents multiply through nesting and products)",
                        "use smaller powers; the derivatives of high-degree formulas take SymPy minutes")
    return ParsedFormula(text, names, tree)


def _example(variables: tuple[str, ...]) -> str:
    return "x/(1+abs(x))" if "x" in variables else "(o-t)**2/2"


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokens(text: str, where: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char.isspace():
                raise SpecError(where, f"control or space character {_codepoint(char)} at position {position}",
                                "write the formula on one line, with plain spaces only")
            hint = "use ** for powers" if char == "^" else "use numbers, names, + - * / **, parentheses and commas"
            raise SpecError(where, f"unexpected character {char!r} at position {position}", hint)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    if len(tokens) > 2 * MAX_NODES:
        raise SpecError(where, f"the formula has {len(tokens)} tokens, more than {2 * MAX_NODES}",
                        "write a shorter formula")
    return tokens


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}" + (f" ({unicodedata.name(char)})" if unicodedata.name(char, "") else "")


def _shown(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else f"{value:g}"


class _Parser:
    def __init__(self, tokens: list[_Token], variables: tuple[str, ...], where: str,
                 functions: dict[str, tuple[int, Callable[..., float]]]) -> None:
        self.tokens = tokens
        self.functions = functions
        self.index = 0
        self.variables = variables
        self.where = where

    def fail(self, message: str, hint: str) -> SpecError:
        return SpecError(self.where, message, hint)

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise self.fail("the formula ends too early", f"complete it{' with ' + repr(text) if text else ''}")
        if text is not None and token.text != text:
            raise self.fail(f"expected {text!r} at position {token.position}, found {token.text!r}",
                            "check the parentheses and commas")
        self.index += 1
        return token

    def _deeper(self, depth: int) -> int:
        if depth >= MAX_DEPTH:
            token = self.peek()
            raise self.fail(f"the formula is nested too deeply (at position {token.position if token else '?'})",
                            f"use at most {MAX_DEPTH} levels of nesting")
        return depth + 1

    def sum(self, depth: int) -> Node:
        depth = self._deeper(depth)
        result = self.product(depth)
        while (token := self.peek()) is not None and token.text in ("+", "-"):
            self.take()
            result = self.operation(token, result, self.product(depth))
        return result

    def product(self, depth: int) -> Node:
        result = self.unary(depth)
        while (token := self.peek()) is not None and token.text in ("*", "/"):
            self.take()
            right = self.unary(depth)
            if token.text == "/" and right.constant == 0:
                raise self.fail(f"division by zero (or by a constant that rounds to 0) at position {token.position}",
                                "divide by something else")
            result = self.operation(token, result, right)
        return result

    def unary(self, depth: int) -> Node:
        token = self.peek()
        if token is not None and token.text in ("-", "+"):
            self.take()
            operand = self.unary(self._deeper(depth))
            if token.text == "+":
                return operand
            constant = -operand.constant if operand.constant is not None else None
            return Negate(constant, operand.degree, operand.size + 1, operand)
        return self.power(depth)

    def power(self, depth: int) -> Node:
        base = self.atom(depth)
        token = self.peek()
        if token is None or token.text != "**":
            return base
        self.take()
        exponent = self.unary(self._deeper(depth))
        if exponent.constant is not None and abs(exponent.constant) > MAX_EXPONENT:
            raise self.fail(f"the exponent {_shown(exponent.constant)} at position {token.position} is too large",
                            f"use exponents between -{MAX_EXPONENT} and {MAX_EXPONENT}")
        if base.constant == 0 and exponent.constant is not None and exponent.constant <= 0:
            raise self.fail(f"0 to a non-positive power at position {token.position}", "this is undefined")
        if base.constant is not None and base.constant <= 0 and exponent.constant is None:
            raise self.fail(f"the constant base {_shown(base.constant)} at position {token.position} is not positive, "
                            "so the power is complex or undefined for most exponents",
                            "write exp(x*log(b)) with a positive b, or abs(...) around the base")
        return self.operation(token, base, exponent)

    def atom(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "number":
            value = float(token.text)
            if not math.isfinite(value) or abs(value) > MAX_NUMBER:
                raise self.fail(f"the number {token.text} at position {token.position} is too large",
                                f"use numbers up to {MAX_NUMBER:g}")
            return Number(value, 0, 1, token.text)
        if token.kind == "name":
            return self.name(token, depth)
        if token.text == "(":
            inner = self.sum(self._deeper(depth))
            self.take(")")
            return inner
        raise self.fail(f"unexpected {token.text!r} at position {token.position}",
                        "a number, a name or '(' was expected here")

    def name(self, token: _Token, depth: int) -> Node:
        following = self.peek()
        if following is not None and following.text == "(":
            if token.text not in self.functions:
                raise self.fail(f"unknown function {token.text!r} at position {token.position}",
                                "the functions allowed are: " + ", ".join(self.functions))
            arity, value = self.functions[token.text]
            self.take("(")
            args = [self.sum(self._deeper(depth))]
            while (comma := self.peek()) is not None and comma.text == ",":
                self.take()
                args.append(self.sum(self._deeper(depth)))
            self.take(")")
            if len(args) != arity:
                raise self.fail(f"{token.text} at position {token.position} takes {arity} argument(s), got {len(args)}",
                                f"write {token.text}({', '.join('ab'[:arity])})")
            constants = [a.constant for a in args]
            constant = self.folded(lambda: value(*constants), token) if None not in constants else None
            degree = 0 if constant is not None else max(1, *(a.degree for a in args))
            return self.sized(Call(constant, degree, 1 + sum(a.size for a in args), token.text, tuple(args)))
        if token.text in self.variables:
            return Variable(None, 1, 1, token.text)
        if token.text in self.functions:
            raise self.fail(f"{token.text!r} at position {token.position} is a function",
                            f"call it: {token.text}(...)")
        raise self.fail(f"unknown name {token.text!r} at position {token.position}",
                        f"the formula may use {', '.join(self.variables)} and the functions {', '.join(self.functions)}")

    def operation(self, token: _Token, left: Node, right: Node) -> Node:
        op = token.text
        constant = None
        if left.constant is not None and right.constant is not None:
            a, b = left.constant, right.constant
            constant = self.folded(lambda: OPERATORS[op](a, b), token)
        if op in ("+", "-"):
            degree = max(left.degree, right.degree)
        elif op == "**" and right.constant is not None:
            degree = left.degree * max(1, math.ceil(abs(right.constant)))
        else:  # a product, a quotient (cancel works on both), or a power with a variable exponent
            degree = left.degree + right.degree
        return self.sized(Operation(constant, degree, left.size + right.size + 1, op, left, right))

    def folded(self, compute: Callable[[], float], token: _Token) -> float:
        """A constant part's value, or the error SymPy would meet with it later."""
        try:
            value = compute()
        except ZeroDivisionError:
            raise self.fail(f"the formula is undefined or infinite at position {token.position}",
                            "check for division by zero or log of zero") from None
        except OverflowError:
            value = math.inf
        except ValueError:  # the log or square root of a negative number
            value = complex(math.nan)
        if isinstance(value, complex):
            raise self.fail(f"the formula is complex at position {token.position}",
                            "check for the square root or logarithm of a negative number, or a negative number "
                            "to a fractional power")
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise self.fail(f"a constant in the formula is too large at position {token.position}",
                            f"keep constants up to {MAX_NUMBER:g} (exp(35) is about 1.6e15)")
        return float(value)

    def sized(self, node: Node) -> Node:
        if node.size > MAX_NODES:
            raise self.fail(f"the formula has more than {MAX_NODES} operations", "write a shorter formula")
        return node

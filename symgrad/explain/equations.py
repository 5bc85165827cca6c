"""The worked example's equations: small trees of names, numbers, formulas and operations.

Input: model symbols, SymPy formulas, chain-rule factors and numbers.  Output: immutable
:class:`Node` trees (``side = side = ...``) that say what an equation is, not how it looks;
:mod:`.notation` prints them as plain text, LaTeX or MathML.  Each :class:`Name` carries its
spelling in all three.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping

import sympy as sp

from ..formulas import Factor, TexPrinter, tex_escape
from ..model import display_name
from .printers import MathMLPrinter

# -- the nodes ---------------------------------------------------------------------------------


class Node:
    """One piece of an equation."""


@dataclass(frozen=True)
class Name(Node):
    """A named quantity, spelled once per notation (``text``, ``latex``, ``mathml``)."""

    text: str
    latex: str
    mathml: str


@dataclass(frozen=True)
class Number(Node):
    value: float


@dataclass(frozen=True)
class Formula(Node):
    """A SymPy expression; with ``at``, every symbol it names is shown as its value there."""

    expr: sp.Expr
    at: Mapping[sp.Symbol, float] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Partial(Node):
    """d(of)/d(wrt), labelled as the chain rule labels it."""

    factor: Factor


@dataclass(frozen=True)
class Product(Node):
    """``op``: ``dot`` (symbols), ``times`` (numbers), ``odot`` (elementwise) or ``juxt`` (matrix product)."""

    items: tuple[Node, ...]
    op: str = "dot"


@dataclass(frozen=True)
class Sum(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Difference(Node):
    left: Node
    right: Node


@dataclass(frozen=True)
class Fraction(Node):
    numerator: Node
    denominator: Node


@dataclass(frozen=True)
class Root(Node):
    """The square root of ``item``."""

    item: Node


@dataclass(frozen=True)
class Square(Node):
    item: Node


@dataclass(frozen=True)
class Equation(Node):
    """side = side = ...; ``aligned`` puts each further side on its own line under the first '='."""

    sides: tuple[Node, ...]
    aligned: bool = False


def product(items, op: str = "dot") -> Node:
    items = tuple(items)
    return items[0] if len(items) == 1 else Product(items, op)


def total(items) -> Node:
    items = tuple(items)
    return items[0] if len(items) == 1 else Sum(items)



# -- names -------------------------------------------------------------------------------------

def _mi(text: str) -> str:
    return f"<mi>{html.escape(text)}</mi>"


def quantity(symbol: sp.Symbol) -> Name:
    """A model symbol (parameter, input, target, net, out, delta) as a name."""
    return Name(display_name(symbol), TexPrinter().doprint(symbol), MathMLPrinter().doprint(symbol))


def subscripted(base: str, sub: str, tex_base: str | None = None, mathml_base: str | None = None) -> Name:
    """``E_o1``, ``W_2`` and the like: a one-letter (or Greek) base and a subscript."""
    return Name(f"{base}_{sub}" if len(sub) > 1 or not sub.isdigit() else f"{base}{sub}",
                f"{tex_base or base}_{{{tex_escape(sub)}}}",
                f"<msub>{_mi(mathml_base or base)}{_mi(sub) if not sub.isdigit() else f'<mn>{sub}</mn>'}</msub>")


def marked(name: Name, mark: str, tex_mark: str | None = None) -> Name:
    """``name`` with a superscript mark: ``w5+`` after the update, ``W2^T`` transposed."""
    text_mark = {"+": "+", "T": "\u1d40"}.get(mark, mark)
    return Name(f"{name.text}{text_mark}", f"{{{name.latex}}}^{{{tex_mark or mark}}}",
                f"<msup>{name.mathml}<mo>{html.escape(mark)}</mo></msup>" if mark == "+"
                else f"<msup>{name.mathml}{_mi(mark)}</msup>")


ETA = Name("\u03b7", r"\eta", _mi("\u03b7"))


ERROR = Name("E", "E", _mi("E"))


PENALTY = Name("penalty", r"\mathrm{penalty}", _mi("penalty"))


def greek(letter: str, tex: str, sub: str = "") -> Name:
    """An optimizer's constant as PyTorch's documentation names it: \u03bc, \u03bb, \u03b2\u2081, \u03b5."""
    if not sub:
        return Name(letter, tex, _mi(letter))
    return Name(f"{letter}{sub}", f"{tex}_{{{sub}}}", f"<msub>{_mi(letter)}<mn>{sub}</mn></msub>")


MU, LAMBDA, ALPHA, EPSILON = greek("\u03bc", r"\mu"), greek("\u03bb", r"\lambda"), greek("\u03b1", r"\alpha"), \
    greek("\u03b5", r"\varepsilon")


BETA1, BETA2 = greek("\u03b2", r"\beta", "1"), greek("\u03b2", r"\beta", "2")


def per_parameter(base: str, parameter: str, hat: bool = False) -> Name:
    """An optimizer's quantity for one parameter: ``g_w5``, ``m_w5``, ``v\u0302_w5`` (with a hat)."""
    mark = "\u0302" if hat else ""
    mathml_base = f"<mover accent=\"true\">{_mi(base)}<mo>^</mo></mover>" if hat else _mi(base)
    return Name(f"{base}{mark}_{parameter}", rf"{{\hat{{{base}}}}}_{{{tex_escape(parameter)}}}" if hat
                else f"{base}_{{{tex_escape(parameter)}}}", f"<msub>{mathml_base}{_mi(parameter)}</msub>")


def summed(power: str, k: int) -> Name:
    """\u03a3_k p\u00b2 or \u03a3_k |p|: over the parameters layer k's penalty covers."""
    if power == "square":
        return Name(f"\u03a3_{k} p\u00b2", rf"\sum_{{{k}}} p^{{2}}",
                    f"<mrow><msub><mo>\u2211</mo><mn>{k}</mn></msub><msup>{_mi('p')}<mn>2</mn></msup></mrow>")
    return Name(f"\u03a3_{k} |p|", rf"\sum_{{{k}}} \left|p\right|",
                f"<mrow><msub><mo>\u2211</mo><mn>{k}</mn></msub><mrow><mo>|</mo>{_mi('p')}<mo>|</mo></mrow></mrow>")


"""Printers for SymPy expressions in the worked example: numbers in place of symbols, and MathML.

Input: a SymPy expression and, optionally, values for its symbols.  Output: plain text, LaTeX
or presentation MathML with the spec's names (subclasses of SymPy's printers and of
:mod:`symgrad.formulas`' text and LaTeX printers), so the HTML page needs no JavaScript.
"""

from __future__ import annotations

import re
from typing import Mapping

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from .. import rules
from ..formulas import TexPrinter, TextPrinter, format_number, tex_number
from ..model import display_name
from ..naming import PREFIXES

#: How MathML shows the prefixes of the model's symbol names (LaTeX: formulas.latex_name).
_MATHML_PREFIXES = tuple((PREFIXES[role], shown) for role, shown in (
    ("net", "net"), ("out", "out"), ("delta", "\u03b4"), ("target", "t"), ("log_out", "log\u2009out"), ("lse", "lse")))


def _negative_value(printer, item) -> bool:
    """Whether ``item`` is a symbol the printer shows as a negative number."""
    return isinstance(item, sp.Symbol) and printer.at.get(item, 0.0) < 0


MINUS = "\u2212"
_SUPERSCRIPTS = str.maketrans("0123456789-", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b")
_FRACTIONS = {(1, 2): "\u00bd", (1, 3): "\u2153", (1, 4): "\u00bc", (2, 3): "\u2154", (3, 4): "\u00be"}


def superscript(text: str) -> str:
    """``-5`` -> ``\u207b\u2075``: digits and a minus sign raised."""
    return text.translate(_SUPERSCRIPTS)


def text_number(text: str) -> str:
    """A formatted number as mathematics: U+2212 for minus, ``3.5 \u00d7 10\u207b\u2075`` for ``3.5e-05``."""
    if "e" in text and not text.lstrip("-").startswith(("inf", "nan")):
        mantissa, exponent = text.split("e")
        text = f"{mantissa} \u00d7 10{superscript(str(int(exponent)))}"
    return text.replace("-", MINUS)


class _PositiveFirst:
    """A sum starts with a positive term where it has one: t \u2212 o, not \u2212o + t."""

    def _as_ordered_terms(self, expr, order=None):
        terms = list(super()._as_ordered_terms(expr, order=order))
        positive = [t for t in terms if not t.could_extract_minus_sign()]
        return positive + [t for t in terms if t.could_extract_minus_sign()]


class MathText(_PositiveFirst, TextPrinter):
    """Plain text as mathematics: ½(t_o1 − out_o1)², out_o1·(1 − out_o1), σ(net_h1), δ_o1.

    Never Python's ``**`` or ``*``; minus signs are U+2212.
    """

    def doprint(self, expr) -> str:
        return super().doprint(expr).replace("*", "\u00b7").replace("-", MINUS)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        text = super()._print_Symbol(expr)
        return "\u03b4_" + text[len("delta_"):] if text.startswith("delta_") else text

    def _print_Function(self, expr: sp.Function) -> str:
        if isinstance(expr, rules.Sigmoid):
            return f"\u03c3({self._print(expr.args[0])})"
        return super()._print_Function(expr)

    def _print_Float(self, expr: sp.Float) -> str:  # a hyphen-minus here: SymPy's sums look for it; doprint converts
        return text_number(format_number(float(expr), 15)).replace(MINUS, "-")

    def _print_Abs(self, expr) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_exp(self, expr) -> str:
        return "e" + self._raised(expr.args[0])

    def _raised(self, exponent) -> str:
        text = self._print(exponent)
        if re.fullmatch(r"-?[0-9]+", text):
            return superscript(text)
        return f"^({text})"

    def _print_Pow(self, expr, rational=False) -> str:
        base, exponent = expr.args
        if exponent is sp.S.Half:
            inner = self._print(base)
            return "\u221a" + (inner if base.is_Atom else f"({inner})")
        if exponent.is_Rational and exponent < 0:
            denominator = base if exponent == -1 else sp.Pow(base, -exponent, evaluate=False)
            return "1/" + self.parenthesize(denominator, PRECEDENCE["Mul"], strict=True)
        shown = self.parenthesize(base, precedence(expr), strict=True)
        if isinstance(base, sp.Function) and not isinstance(base, sp.exp):
            shown = self._print(base)
        return shown + self._raised(exponent)

    def _print_Mul(self, expr) -> str:
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient.is_Rational and not coefficient.is_Integer and rest is not sp.S.One:
            fraction = _FRACTIONS.get((abs(coefficient.p), coefficient.q))
            if fraction:
                sign = "-" if coefficient < 0 else ""
                return sign + fraction + self.parenthesize(rest, PRECEDENCE["Mul"], strict=False)
        return super()._print_Mul(expr)


class ValueText(MathText):
    """Plain text with numbers in place of the symbols that have a value in ``at``.

    A negative number is parenthesized where the printer would parenthesize a sum (a factor, a
    base); in a sum it reads as a subtraction and in a function's argument it stands alone.
    """

    def __init__(self, at: Mapping[sp.Symbol, float], digits: int) -> None:
        super().__init__()
        self.at, self.digits = at, digits

    def parenthesize(self, item, level, strict=False):
        if _negative_value(self, item):
            return f"({self._print(item)})"
        return super().parenthesize(item, level, strict)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        if expr in self.at:  # a hyphen-minus, as in MathText._print_Float
            return text_number(format_number(self.at[expr], self.digits)).replace(MINUS, "-")
        return super()._print_Symbol(expr)


class MathTex(_PositiveFirst, TexPrinter):
    """LaTeX as the walk-throughs write it: \\frac{1}{2}(t - o)^{2}, single letters in italics."""

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return expr.name if len(expr.name) == 1 else super()._print_Symbol(expr, style)

    def _print_Mul(self, expr: sp.Expr) -> str:
        coefficient, rest = expr.as_coeff_Mul()
        small = coefficient.is_Rational and (abs(coefficient.p), coefficient.q) in _FRACTIONS
        if small and rest is not sp.S.One:
            sign = "- " if coefficient < 0 else ""
            fraction = rf"\frac{{{abs(coefficient.p)}}}{{{coefficient.q}}} "
            return sign + fraction + self.parenthesize(rest, PRECEDENCE["Mul"])
        return super()._print_Mul(expr)


class ValueTex(MathTex):
    """LaTeX with numbers in place of the symbols that have a value in ``at`` (parentheses as ValueText)."""

    def __init__(self, at: Mapping[sp.Symbol, float], digits: int) -> None:
        super().__init__({"mul_symbol": "dot"})
        self.at, self.digits = at, digits

    def parenthesize(self, item, level, is_neg=False, strict=False):
        if _negative_value(self, item):
            return rf"\left({self._print(item)}\right)"
        return super().parenthesize(item, level, is_neg, strict)

    def _needs_add_brackets(self, expr) -> bool:
        return _negative_value(self, expr) or super()._needs_add_brackets(expr)

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        return (_negative_value(self, expr) and not first) or super()._needs_mul_brackets(expr, first, last)

    def _print_Mul(self, expr: sp.Expr) -> str:
        if _negative_value(self, -expr):  # -x with x < 0: SymPy would print "- -0.2"
            return "-" + self.parenthesize(-expr, 0)
        return super()._print_Mul(expr)


    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr in self.at:
            return tex_number(format_number(self.at[expr], self.digits))
        return super()._print_Symbol(expr, style)


class MathMLPrinter(_PositiveFirst, MathMLPresentationPrinter):
    """Presentation MathML with the spec's names (``out`` with subscript ``o1``, ``w5``, \u03b4 with
    subscript ``h1``) and the rule table's functions; with ``at``, numbers in place of symbols.

    Text goes into DOM text nodes, so whatever a name holds comes out escaped.
    """

    def __init__(self, at: Mapping[sp.Symbol, float] | None = None, digits: int = 6,
                 settings: Mapping[str, str] | None = None) -> None:
        super().__init__({**({"mul_symbol": "dot"} if at else {}), **(settings or {})})
        self.at = at or {}
        self.digits = digits

    def doprint(self, expr) -> str:
        """As SymPy's, with minus signs (U+2212) where SymPy writes hyphens."""
        return super().doprint(expr).replace("<mo>-</mo>", f"<mo>{MINUS}</mo>").replace(
            "<mn>-", f"<mo>{MINUS}</mo><mn>")

    def element(self, tag: str, *children, text: str | None = None):
        node = self.dom.createElement(tag)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        for child in children:
            node.appendChild(child)
        return node

    def name(self, name: str):
        """A name as the walk-throughs write it: prefixes net_, out_, delta_, t_ become a subscripted base."""
        for prefix, shown in _MATHML_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                return self.element("msub", self.element("mi", text=shown), self.element("mi", text=name[len(prefix):]))
        return self.element("mi", text=name)

    def number(self, text: str):
        """A formatted number: <mn>, a leading minus as an operator, e-notation as a power of ten."""
        negative = text.startswith("-")
        mantissa, _, exponent = text.lstrip("-").partition("e")
        shown = self.element("mn", text=mantissa)
        if exponent:
            power = self.element("mn", text=str(abs(int(exponent))))
            if int(exponent) < 0:
                power = self.element("mrow", self.element("mo", text="\u2212"), power)
            shown = self.element("mrow", shown, self.element("mo", text="\u00d7"),
                                 self.element("msup", self.element("mn", text="10"), power))
        return self.element("mrow", self.element("mo", text="\u2212"), shown) if negative else shown

    def parenthesize(self, item, level, strict=False):
        if _negative_value(self, item):
            return self.element("mrow", self._l_paren(), self._print(item), self._r_paren())
        return super().parenthesize(item, level, strict)

    def _print_Add(self, expr, order=None):
        """As SymPy's, but a negative number after the first term is parenthesized (no '+ \u2212')."""
        terms = self._as_ordered_terms(expr, order=order)
        row = self.element("mrow", self._print(terms[0]))
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                row.appendChild(self.element("mo", text="-"))
                row.appendChild(self.parenthesize(-term, 0, strict=True))
            else:
                row.appendChild(self.element("mo", text="+"))
                row.appendChild(self.parenthesize(term, 0, strict=True))
        return row

    def _print_Mul(self, expr):
        if _negative_value(self, -expr):  # -x with x < 0: SymPy would print "- -0.2"
            return self.element("mrow", self.element("mo", text="-"), self.parenthesize(-expr, 0))
        if self._settings.get("order") == "none" and not expr.could_extract_minus_sign():  # the factors as built
            row = self.element("mrow")
            for k, factor in enumerate(expr.args):
                if k:
                    row.appendChild(self.element("mo", text="\u2062"))
                row.appendChild(self.parenthesize(factor, PRECEDENCE["Mul"]))
            return row
        return super()._print_Mul(expr)

    def _print_Symbol(self, sym: sp.Symbol, style: str = "plain"):
        if sym in self.at:
            return self.number(format_number(self.at[sym], self.digits))
        return self.name(display_name(sym))

    def _print_Float(self, expr: sp.Float):
        return self.number(format_number(float(expr), 15))

    def _print_Exp1(self, expr):
        return self.element("mi", text="e")

    def _print_Function(self, e):
        spelling = rules.SPELLINGS.get(type(e))
        if spelling is None or type(e).__module__ != rules.__name__:  # SymPy's own: its MathML
            return super()._print_Function(e)
        name = "\u03c3" if isinstance(e, rules.Sigmoid) else spelling.text.split("(")[0]
        return self.element("mrow", self.element("mi", text=name), self._paren_comma_separated(*e.args))


def mathml_name(name: str) -> str:
    return MathMLPrinter().name(name).toxml()


def mathml_number(text: str) -> str:
    return MathMLPrinter().number(text).toxml()


"""Printers for SymPy expressions in the worked example: numbers in place of symbols, and MathML.

Input: a SymPy expression and, optionally, values for its symbols.  Output: plain text, LaTeX
or presentation MathML with the spec's names (subclasses of SymPy's printers and of
:mod:`symgrad.formulas`' text and LaTeX printers), so the HTML page needs no JavaScript.
"""

from __future__ import annotations

from typing import Mapping

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from .. import rules
from ..formulas import TexPrinter, TextPrinter, format_number, tex_number
from ..model import display_name


#: How MathML shows the prefixes of the model's symbol names (LaTeX: formulas.latex_name).
_MATHML_PREFIXES = (("net_", "net"), ("out_", "out"), ("delta_", "\u03b4"), ("t_", "t"),
                    ("logp_", "log\u2009out"), ("lse_", "lse"))


def _negative_value(printer, item) -> bool:
    """Whether ``item`` is a symbol the printer shows as a negative number."""
    return isinstance(item, sp.Symbol) and printer.at.get(item, 0.0) < 0


class ValueText(TextPrinter):
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
        if expr in self.at:
            return format_number(self.at[expr], self.digits)
        return super()._print_Symbol(expr)


class ValueTex(TexPrinter):
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


class MathMLPrinter(MathMLPresentationPrinter):
    """Presentation MathML with the spec's names (``out`` with subscript ``o1``, ``w5``, \u03b4 with
    subscript ``h1``) and the rule table's functions; with ``at``, numbers in place of symbols.

    Text goes into DOM text nodes, so whatever a name holds comes out escaped.
    """

    def __init__(self, at: Mapping[sp.Symbol, float] | None = None, digits: int = 6) -> None:
        super().__init__({"mul_symbol": "dot"} if at else {})
        self.at = at or {}
        self.digits = digits

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


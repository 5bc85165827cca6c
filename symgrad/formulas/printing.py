"""Formulas as text: SymPy expressions printed with the spec's names, in plain text or LaTeX.

Input: a SymPy expression from the model or the gradients.  Output: a string that uses the
names the spec uses (``w5``, ``out_o1``, ``delta_h1``) and the rule table's spellings.
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from .. import rules
from ..errors import SpecError
from ..model import display_name
from ..naming import PREFIXES

MULTIPLY = " * "


class TextPrinter(StrPrinter):
    """Plain text with the spec's names (``w5``, ``out_o1``) and the rule table's spellings."""

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return display_name(expr)

    def _print_Function(self, expr: sp.Function) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is None:
            return super()._print_Function(expr)
        return spelling.text.format(*(self._print(arg) for arg in expr.args))

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))


class TexPrinter(LatexPrinter):
    """LaTeX with subscripted unit names: out_{o1}, net_{h1}, \\delta_{o1}."""

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return latex_name(display_name(expr))

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is None or type(expr) in (sp.exp, sp.log, sp.tanh):
            return super()._print_Function(expr, exp)
        text = spelling.latex.format(*(self._print(arg) for arg in expr.args))
        return f"{text}^{{{exp}}}" if exp else text


#: How LaTeX shows each role's prefix (net_h1 as \mathrm{net}_{h1}).
_LATEX_ROLES = {"net": r"\mathrm{net}", "out": r"\mathrm{out}", "delta": r"\delta", "target": "t",
                "log_out": r"\log \mathrm{out}", "lse": r"\mathrm{lse}"}


def latex_name(name: str) -> str:
    for role, shown in _LATEX_ROLES.items():
        prefix = PREFIXES[role]
        if name.startswith(prefix):
            return f"{shown}_{{{tex_escape(name[len(prefix):])}}}"
    return r"\mathrm{" + tex_escape(name) + "}"


def tex_escape(text: str) -> str:
    return text.replace("_", r"\_")


def to_text(expr: sp.Expr) -> str:
    return TextPrinter().doprint(expr)


def to_latex(expr: sp.Expr) -> str:
    return TexPrinter().doprint(expr)


def latex_factor(expr: sp.Expr) -> str:
    text = to_latex(expr)
    return rf"\left({text}\right)" if isinstance(expr, sp.Add) else text


def grouped_text(expr: sp.Expr) -> str:
    """``expr`` as text, in parentheses when it is a sum (so it can stand as a factor)."""
    text = to_text(expr)
    return f"({text})" if isinstance(expr, sp.Add) or text.startswith("-") else text


def check_digits(digits: int, where: str = "--digits") -> None:
    """Significant digits for format_number are 1 to 17 (a float64 has 17): the one check of --digits."""
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise SpecError(where, f"{digits!r} is out of range", "use 1 to 17")


def format_number(value: float, digits: int = 6) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.{digits}g}"


def tex_number(text: str) -> str:
    """``3.5e-05`` -> ``3.5 \\times 10^{-5}``."""
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text

"""The worked example's equations, and how plain text, LaTeX and MathML write them.

An equation is a small tree of :class:`Node` values: names (``w5``, ``out_h1``), numbers,
SymPy formulas (printed as they are, or with numbers in place of their symbols), partial
derivatives (the chain rule's :class:`~symgrad.formulas.Factor`), products, sums and
differences.  The explain stage builds the trees once; a :class:`Notation` prints them for one
output format.  SymPy expressions go through the printers of :mod:`symgrad.formulas` (text,
LaTeX) and :class:`MathMLPrinter` here, a presentation-MathML printer with the same names, so
the HTML page needs no JavaScript to show formulas.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from .. import rules
from ..formulas import Factor, TexPrinter, TextPrinter, format_number
from ..model import display_name

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

#: How MathML shows the prefixes of the model's symbol names (LaTeX: formulas.latex_name).
_MATHML_PREFIXES = (("net_", "net"), ("out_", "out"), ("delta_", "\u03b4"), ("t_", "t"),
                    ("logp_", "log\u2009out"), ("lse_", "lse"))


def _mi(text: str) -> str:
    return f"<mi>{html.escape(text)}</mi>"


def tex_text(text: str) -> str:
    """A name inside LaTeX: identifiers only need their underscores escaped."""
    return text.replace("_", r"\_")


def quantity(symbol: sp.Symbol) -> Name:
    """A model symbol (parameter, input, target, net, out, delta) as a name."""
    return Name(display_name(symbol), TexPrinter().doprint(symbol), MathMLPrinter().doprint(symbol))


def subscripted(base: str, sub: str, tex_base: str | None = None, mathml_base: str | None = None) -> Name:
    """``E_o1``, ``W_2`` and the like: a one-letter (or Greek) base and a subscript."""
    return Name(f"{base}_{sub}" if len(sub) > 1 or not sub.isdigit() else f"{base}{sub}",
                f"{tex_base or base}_{{{tex_text(sub)}}}",
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
    return Name(f"{base}{mark}_{parameter}", rf"{{\hat{{{base}}}}}_{{{tex_text(parameter)}}}" if hat
                else f"{base}_{{{tex_text(parameter)}}}", f"<msub>{mathml_base}{_mi(parameter)}</msub>")


def summed(power: str, k: int) -> Name:
    """\u03a3_k p\u00b2 or \u03a3_k |p|: over the parameters layer k's penalty covers."""
    if power == "square":
        return Name(f"\u03a3_{k} p\u00b2", rf"\sum_{{{k}}} p^{{2}}",
                    f"<mrow><msub><mo>\u2211</mo><mn>{k}</mn></msub><msup>{_mi('p')}<mn>2</mn></msup></mrow>")
    return Name(f"\u03a3_{k} |p|", rf"\sum_{{{k}}} \left|p\right|",
                f"<mrow><msub><mo>\u2211</mo><mn>{k}</mn></msub><mrow><mo>|</mo>{_mi('p')}<mo>|</mo></mrow></mrow>")


# -- printers for SymPy expressions ------------------------------------------------------------

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


def tex_number(text: str) -> str:
    """``3.5e-05`` -> ``3.5 \\times 10^{-5}``."""
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


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


# -- notations ---------------------------------------------------------------------------------

class Notation:
    """How one output format writes equations; ``notation(node)`` gives the node's text."""

    OPERATORS: dict[str, str] = {}

    def __init__(self, digits: int = 6) -> None:
        self.digits = digits

    def __call__(self, node: Node) -> str:
        return getattr(self, "_" + type(node).__name__)(node)

    # the primitives each notation defines
    def name(self, node: Name) -> str:
        raise NotImplementedError

    def number(self, text: str) -> str:
        """A number already formatted (``format_number``)."""
        raise NotImplementedError

    def formula(self, node: Formula) -> str:
        raise NotImplementedError

    def partial(self, factor: Factor) -> str:
        raise NotImplementedError

    def parenthesized(self, text: str) -> str:
        raise NotImplementedError

    def aligned(self, sides: list[str]) -> str:
        """side0 = side1, then '= side' per further side, lined up."""
        raise NotImplementedError

    def row(self, parts: list[str], operator: str) -> str:
        return self.OPERATORS[operator].join(parts)

    # shared structure
    def _Name(self, node: Name) -> str:
        return self.name(node)

    def _Number(self, node: Number) -> str:
        return self.number(format_number(node.value, self.digits))

    def _Formula(self, node: Formula) -> str:
        return self.formula(node)

    def _Partial(self, node: Partial) -> str:
        return self.partial(node.factor)

    def _operand(self, node: Node, first: bool, context: str) -> str:
        """``node`` inside a product, a sum or on the right of a difference, parenthesized where needed."""
        text = self(node)
        negative = ((isinstance(node, Number) and node.value < 0)
                    or (isinstance(node, Formula) and sp.sympify(node.expr).could_extract_minus_sign()))
        grouped = isinstance(node, (Sum, Difference)) or (isinstance(node, Formula) and isinstance(node.expr, sp.Add))
        if (negative and not first) or (grouped and context != "sum") or (
                isinstance(node, Product) and context == "product"):
            return self.parenthesized(text)
        return text

    def _Product(self, node: Product, leading: bool = True) -> str:
        """``leading``: the product starts its expression (else a negative first factor is parenthesized)."""
        op = "times" if node.op == "dot" and all(isinstance(i, Number) for i in node.items) else node.op
        return self.row([self._operand(item, leading and k == 0, "product") for k, item in enumerate(node.items)], op)

    def _Sum(self, node: Sum) -> str:
        return self.row([self._Product(item, k == 0) if isinstance(item, Product) else self._operand(item, k == 0, "sum")
                         for k, item in enumerate(node.items)], "plus")

    def _Difference(self, node: Difference) -> str:
        right = self._Product(node.right, False) if isinstance(node.right, Product) else \
            self._operand(node.right, False, "difference")
        return self.row([self._operand(node.left, True, "sum"), right], "minus")

    def _simple(self, node: Node, power: bool = False) -> bool:
        """Whether ``node`` can stand in a fraction, under a root or (``power``) as a base without parentheses."""
        if isinstance(node, Number):
            return node.value >= 0 and not (power and "e" in format_number(node.value, self.digits))
        return isinstance(node, Name)

    def _Fraction(self, node: Fraction) -> str:
        return self.fraction(self(node.numerator), self(node.denominator),
                             self._simple(node.numerator), self._simple(node.denominator))

    def _Root(self, node: Root) -> str:
        return self.root(self(node.item), self._simple(node.item))

    def _Square(self, node: Square) -> str:
        text = self(node.item)
        return self.square(text if self._simple(node.item, power=True) else self.parenthesized(text))

    def fraction(self, numerator: str, denominator: str, simple_numerator: bool, simple_denominator: bool) -> str:
        raise NotImplementedError

    def root(self, text: str, simple: bool) -> str:
        raise NotImplementedError

    def square(self, text: str) -> str:
        raise NotImplementedError

    def _Equation(self, node: Equation) -> str:
        sides = [self(side) for side in node.sides]
        if node.aligned and len(sides) > 2:
            return self.aligned(sides)
        return self.row(sides, "eq")


class TextNotation(Notation):
    OPERATORS = {"dot": " \u00b7 ", "times": " \u00d7 ", "odot": " \u2299 ", "juxt": " ", "plus": " + ",
                 "minus": " - ", "eq": " = "}

    def name(self, node: Name) -> str:
        return node.text

    def number(self, text: str) -> str:
        return text

    def formula(self, node: Formula) -> str:
        printer = ValueText(node.at, self.digits) if node.at is not None else TextPrinter()
        return printer.doprint(node.expr)

    def partial(self, factor: Factor) -> str:
        return factor.label

    def parenthesized(self, text: str) -> str:
        return f"({text})"

    def fraction(self, numerator: str, denominator: str, simple_numerator: bool, simple_denominator: bool) -> str:
        return (f"{numerator if simple_numerator else self.parenthesized(numerator)}/"
                f"{denominator if simple_denominator else self.parenthesized(denominator)}")

    def root(self, text: str, simple: bool) -> str:
        return "\u221a" + (text if simple else self.parenthesized(text))

    def square(self, text: str) -> str:
        return text + "\u00b2"

    def aligned(self, sides: list[str]) -> str:
        pad = " " * len(sides[0])
        return "\n".join([f"{sides[0]} = {sides[1]}"] + [f"{pad} = {side}" for side in sides[2:]])


class LatexNotation(Notation):
    OPERATORS = {"dot": r" \cdot ", "times": r" \times ", "odot": r" \odot ", "juxt": " ", "plus": " + ",
                 "minus": " - ", "eq": " = "}

    def name(self, node: Name) -> str:
        return node.latex

    def number(self, text: str) -> str:
        return tex_number(text)

    def formula(self, node: Formula) -> str:
        printer = ValueTex(node.at, self.digits) if node.at is not None else TexPrinter()
        return printer.doprint(node.expr)

    def partial(self, factor: Factor) -> str:
        return factor.latex_label

    def parenthesized(self, text: str) -> str:
        return rf"\left({text}\right)"

    def fraction(self, numerator: str, denominator: str, simple_numerator: bool, simple_denominator: bool) -> str:
        return rf"\frac{{{numerator}}}{{{denominator}}}"

    def root(self, text: str, simple: bool) -> str:
        return rf"\sqrt{{{text}}}"

    def square(self, text: str) -> str:
        return f"{{{text}}}^{{2}}"

    def aligned(self, sides: list[str]) -> str:
        lines = [f"{sides[0]} &= {sides[1]}"] + [f"&= {side}" for side in sides[2:]]
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


class MathMLNotation(Notation):
    """Presentation MathML (the inside of a ``<math>`` element); names and numbers are escaped."""

    OPERATORS = {"dot": "\u00b7", "times": "\u00d7", "odot": "\u2299", "juxt": "\u2062", "plus": "+",
                 "minus": "\u2212", "eq": "="}

    def name(self, node: Name) -> str:
        return node.mathml

    def number(self, text: str) -> str:
        return mathml_number(text)

    def formula(self, node: Formula) -> str:
        return MathMLPrinter(node.at, self.digits).doprint(node.expr)

    def partial(self, factor: Factor) -> str:
        of = self.name(derivative_name(factor.of))
        wrt = self.name(derivative_name(factor.wrt))
        return f"<mfrac><mrow><mo>\u2202</mo>{of}</mrow><mrow><mo>\u2202</mo>{wrt}</mrow></mfrac>"

    def parenthesized(self, text: str) -> str:
        return f"<mrow><mo>(</mo>{text}<mo>)</mo></mrow>"

    def fraction(self, numerator: str, denominator: str, simple_numerator: bool, simple_denominator: bool) -> str:
        return f"<mfrac><mrow>{numerator}</mrow><mrow>{denominator}</mrow></mfrac>"

    def root(self, text: str, simple: bool) -> str:
        return f"<msqrt><mrow>{text}</mrow></msqrt>"

    def square(self, text: str) -> str:
        return f"<msup><mrow>{text}</mrow><mn>2</mn></msup>"

    def row(self, parts: list[str], operator: str) -> str:
        return "<mrow>" + f"<mo>{self.OPERATORS[operator]}</mo>".join(parts) + "</mrow>"

    def aligned(self, sides: list[str]) -> str:
        rows = [(sides[0], sides[1])] + [("", side) for side in sides[2:]]
        return ('<mtable class="aligned" displaystyle="true">' + "".join(f"<mtr><mtd>{a}</mtd><mtd><mrow><mo>=</mo>{b}</mrow></mtd></mtr>" for a, b in rows)
                + "</mtable>")


def derivative_name(name: str) -> Name:
    """The name a :class:`Factor` uses (``E``, ``out_o1``, ``w5``) as a :class:`Name`."""
    if name == "E":
        return ERROR
    return Name(name, name, mathml_name(name))


NOTATIONS: dict[str, type[Notation]] = {"txt": TextNotation, "md": LatexNotation, "html": MathMLNotation}

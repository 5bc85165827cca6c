"""Notations: how plain text, LaTeX and MathML write the worked example's equations.

Input: an :mod:`.equations` tree and the digits.  Output: its text in one format; a
:class:`Notation` decides the operators, parentheses, fractions and alignment, and prints
SymPy formulas through :mod:`.printers`.
"""

from __future__ import annotations

import sympy as sp

from ..formulas import Factor, TexPrinter, TextPrinter, format_number, tex_number
from .equations import (ERROR, Difference, Equation, Formula, Fraction, Name, Node, Number, Partial, Product,
                        Root, Square, Sum)
from .printers import MathMLPrinter, ValueTex, ValueText, mathml_name, mathml_number


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


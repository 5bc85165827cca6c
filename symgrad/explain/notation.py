"""Notations: how plain text, LaTeX and MathML write the worked example's equations.

Input: an :mod:`.equations` tree and the digits.  Output: its text in one format; a
:class:`Notation` decides the operators, parentheses, fractions and alignment, and prints
SymPy formulas through :mod:`.printers`.
"""

from __future__ import annotations

import sympy as sp

from ..formulas import Factor, format_number, tex_number
from .equations import (
    ERROR,
    Difference,
    Equation,
    Formula,
    Fraction,
    Matrix,
    Name,
    Node,
    Number,
    Parenthesized,
    Partial,
    Product,
    Root,
    Square,
    Sum,
)
from .printers import (
    MINUS,
    MathMLPrinter,
    MathTex,
    MathText,
    ValueTex,
    ValueText,
    mathml_name,
    mathml_number,
    text_number,
)


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

    def _Matrix(self, node: Matrix) -> str:
        return self.matrix([[self(cell) for cell in row] for row in node.rows])

    def matrix(self, cells: list[list[str]]) -> str:
        raise NotImplementedError

    def _Parenthesized(self, node: Parenthesized) -> str:
        return self.parenthesized(self(node.item))

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
                 "minus": f" {MINUS} ", "eq": " = "}

    def name(self, node: Name) -> str:
        return node.text

    def number(self, text: str) -> str:
        return text_number(text)

    def formula(self, node: Formula) -> str:
        printer = ValueText(node.at, self.digits) if node.at is not None else MathText(_order(node))
        return printer.doprint(node.expr)

    def partial(self, factor: Factor) -> str:
        return f"\u2202{text_name(factor.of)}/\u2202{text_name(factor.wrt)}"

    def parenthesized(self, text: str) -> str:
        return f"({text})" if "\n" not in text else text  # a matrix product binds first anyway

    def fraction(self, numerator: str, denominator: str, simple_numerator: bool, simple_denominator: bool) -> str:
        return (f"{numerator if simple_numerator else self.parenthesized(numerator)}/"
                f"{denominator if simple_denominator else self.parenthesized(denominator)}")

    def root(self, text: str, simple: bool) -> str:
        return "\u221a" + (text if simple else self.parenthesized(text))

    def square(self, text: str) -> str:
        return text + "\u00b2"

    def matrix(self, cells: list[list[str]]) -> str:
        """Rows in brackets, one text line each, columns lined up (right-aligned numbers)."""
        widths = [max(len(row[c]) for row in cells) for c in range(len(cells[0]))]
        body = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
        if len(body) == 1:
            return f"[ {body[0]} ]"
        edges = [("\u23a1", "\u23a4")] + [("\u23a2", "\u23a5")] * (len(body) - 2) + [("\u23a3", "\u23a6")]
        return "\n".join(f"{left} {line} {right}" for (left, right), line in zip(edges, body))

    def row(self, parts: list[str], operator: str) -> str:
        if not any("\n" in part for part in parts):
            return super().row(parts, operator)
        blocks = [part.split("\n") for part in parts]  # side by side, centred on the middle line
        height = max(len(block) for block in blocks)
        middle = (height - 1) // 2
        columns = []
        for k, block in enumerate(blocks):
            width = max(len(line) for line in block)
            top = middle - (len(block) - 1) // 2
            lines = [" " * width] * top + [line.ljust(width) for line in block]
            columns.append(lines + [" " * width] * (height - len(lines)))
            if k < len(blocks) - 1:
                symbol = self.OPERATORS[operator]
                columns.append([symbol if y == middle else " " * len(symbol) for y in range(height)])
        return "\n".join("".join(column[y] for column in columns).rstrip() for y in range(height))

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
        printer = ValueTex(node.at, self.digits) if node.at is not None else MathTex(_order(node))
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

    def matrix(self, cells: list[list[str]]) -> str:
        return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(row) for row in cells) + r"\end{bmatrix}"

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
        return MathMLPrinter(node.at, self.digits, _order(node)).doprint(node.expr)

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

    def matrix(self, cells: list[list[str]]) -> str:
        rows = "".join("<mtr>" + "".join(f"<mtd>{cell}</mtd>" for cell in row) + "</mtr>" for row in cells)
        return f'<mrow><mtable class="matrix">{rows}</mtable></mrow>'  # the page's style draws the brackets

    def aligned(self, sides: list[str]) -> str:
        rows = [(sides[0], sides[1])] + [("", side) for side in sides[2:]]
        return ('<mtable class="aligned" displaystyle="true">' + "".join(f"<mtr><mtd>{a}</mtd><mtd><mrow><mo>=</mo>{b}</mrow></mtd></mtr>" for a, b in rows)
                + "</mtable>")


def _order(node: Formula) -> dict[str, str]:
    return {"order": "none"} if node.as_built else {}


def text_name(name: str) -> str:
    """A factor's name (``E``, ``out_o1``, ``delta_h1``) as the text form writes it (\u03b4_h1)."""
    return "\u03b4_" + name[len("delta_"):] if name.startswith("delta_") else name


def derivative_name(name: str) -> Name:
    """The name a :class:`Factor` uses (``E``, ``out_o1``, ``w5``) as a :class:`Name`."""
    if name == "E":
        return ERROR
    return Name(name, name, mathml_name(name))


NOTATIONS: dict[str, type[Notation]] = {"txt": TextNotation, "md": LatexNotation, "html": MathMLNotation}


"""Rendering: a :class:`~.document.WorkedExample` as plain text, Markdown with LaTeX, or HTML.

Input: the worked example, a format and the digits.  Output: one string, through the Jinja2
templates beside this file (HTML with MathML and an inline SVG diagram: no JavaScript,
nothing fetched).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import markupsafe

from ..formulas import format_number
from ..templates import template_environment
from .diagram import layout
from .document import Table, WorkedExample
from .notation import NOTATIONS
from .printers import text_number

_TEMPLATES = Path(__file__).parent


def _environment() -> jinja2.Environment:
    environment = template_environment(_TEMPLATES)
    environment.autoescape = lambda name: name is not None and name.endswith((".html.jinja", ".svg.jinja"))
    environment.filters["md"] = markdown_escape
    return environment


def markdown_escape(text: str) -> str:
    """Text from a spec, safe inside Markdown prose: markup characters and HTML escaped."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + c if c in "\\`*_{}[]#|~" else c for c in escaped)


def _table(table: Table, format: str, digits: int) -> dict[str, object]:
    """The table's cells as text (numbers with minus signs); for txt, its lines with the columns lined up."""
    rows = [[cell if isinstance(cell, str) else text_number(format_number(cell, digits)) for cell in row]
            for row in table.rows]
    cells = [list(table.header)] + rows
    widths = [max(len(row[c]) for row in cells) for c in range(len(table.header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
    return {"header": list(table.header), "rows": rows,
            "lines": [lines[0], "  ".join("\u2500" * width for width in widths)] + lines[1:]}


def render(example: WorkedExample, format: str = "txt", digits: int = 6, fragment: bool = False) -> str:
    """``example`` as plain text (txt), Markdown with LaTeX (md) or HTML with MathML and SVG (html).

    ``fragment`` (html): a ``<div>`` whose style applies inside it only, for a page that has its own
    (a Jupyter notebook's output).
    """
    notation = NOTATIONS[format](digits)
    wrap = markupsafe.Markup if format == "html" else str
    sections = [{
        "title": section.title,
        "text": section.text,
        "groups": [{
            "title": group.title,
            "text": group.text,
            "lines": [{"math": wrap(notation(line.equation)), "before": line.before, "after": line.after}
                      for line in group.lines],
            "table": _table(group.table, format, digits) if group.table else None,
        } for group in section.groups],
    } for section in example.sections]
    environment = _environment()
    diagram = None
    if format != "txt":
        diagram = wrap(environment.get_template("diagram.svg.jinja").render(
            diagram=layout(example.spec, example.point, digits)))
    name = "explain.fragment.html.jinja" if fragment and format == "html" else f"explain.{format}.jinja"
    return environment.get_template(name).render(
        spec=example.spec, sections=sections, diagram=diagram, layer_rules=example.layer_rules,
        error=format_number(example.error, digits), after=format_number(example.error_after_step, digits))


"""Rendering: a :class:`~.document.WorkedExample` as plain text, Markdown with LaTeX, or HTML.

Input: the worked example, a format and the digits.  Output: one string, through the Jinja2
templates beside this file (HTML with MathML and an inline SVG diagram: no JavaScript,
nothing fetched).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import markupsafe

from ..emit import template_environment
from ..formulas import format_number
from .diagram import layout
from .document import WorkedExample
from .notation import NOTATIONS

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


def render(example: WorkedExample, format: str = "txt", digits: int = 6) -> str:
    """``example`` as plain text (txt), Markdown with LaTeX (md) or HTML with MathML and SVG (html)."""
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
        } for group in section.groups],
    } for section in example.sections]
    environment = _environment()
    diagram = None
    if format != "txt":
        diagram = wrap(environment.get_template("diagram.svg.jinja").render(
            diagram=layout(example.spec, example.point, digits)))
    return environment.get_template(f"explain.{format}.jinja").render(
        spec=example.spec, sections=sections, diagram=diagram, layer_rules=example.layer_rules,
        error=format_number(example.error, digits), after=format_number(example.error_after_step, digits))


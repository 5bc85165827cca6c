"""Inspecting derivatives: every dE/dp as its chain-rule factors, its closed form, and its value.

This is the third way people use symgrad (checking a hand-derived gradient, or learning how
backpropagation assembles one).  Input: :class:`~symgrad.gradients.Gradients`; output: text.
The stages, one module each: :mod:`.chain` (the factors of each dE/dp), :mod:`.evaluation`
(their values at given numbers), :mod:`.printing` (plain text and LaTeX with the spec's
names) and :mod:`.report` (what ``python -m symgrad formulas`` prints).
"""

from __future__ import annotations

from .chain import ChainRule, Factor, Path, Upstream, chain_rule, formula_texts, layer_formula_templates
from .evaluation import Point, evaluate, point_from_spec, points_from_spec, reduce_examples, value_of
from .printing import (
                       MULTIPLY,
                       TexPrinter,
                       TextPrinter,
                       check_digits,
                       format_number,
                       grouped_text,
                       latex_name,
                       tex_escape,
                       tex_number,
                       to_latex,
                       to_text,
)
from .report import formulas_report

__all__ = ["ChainRule", "Factor", "MULTIPLY", "Path", "Point", "TexPrinter", "TextPrinter", "Upstream",
           "chain_rule", "check_digits", "evaluate", "format_number", "formula_texts", "formulas_report",
           "grouped_text", "latex_name", "layer_formula_templates", "point_from_spec", "points_from_spec",
           "reduce_examples", "tex_escape", "tex_number", "to_latex", "to_text", "value_of"]

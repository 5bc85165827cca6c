"""Worked examples in Jupyter: ``symgrad.worked_example(spec)`` displays itself in a notebook.

Input: a spec (a path or a dict) and explain's options.  Output: a :class:`Lesson`, which a
notebook shows as HTML (MathML and the SVG diagram, styled inside its own ``<div>`` so the page
keeps its look) or Markdown, and whose ``str()`` is explain's text form.  Its numbers stay
reachable (``lesson.error``, ``lesson.gradient["w5"]``, ``lesson.value("delta_o1")``).  The
formula objects of :mod:`symgrad.formulas` (``chain_rule(...)``) display as LaTeX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .explain import WorkedExample, check_digits, render
from .explain import worked_example as _worked_example
from .pipeline import analyze


@dataclass(frozen=True)
class Lesson:
    """A worked example that displays itself: HTML and Markdown in Jupyter, text as ``str()``."""

    example: WorkedExample
    digits: int = 6

    def __str__(self) -> str:
        return render(self.example, "txt", self.digits)

    def __repr__(self) -> str:
        return f"Lesson({self.example!r})"

    def _repr_html_(self) -> str:
        return render(self.example, "html", self.digits, fragment=True)

    def _repr_markdown_(self) -> str:
        return render(self.example, "md", self.digits)

    def __getattr__(self, name: str) -> Any:
        """The worked example's numbers: ``error``, ``gradient``, ``updated``, ``value(...)`` and the rest."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.example, name)


def worked_example(spec: Any, values: Mapping[str, Any] | None = None, steps: int = 10_000,
                   params: Sequence[str] | None = None, digits: int = 6) -> Lesson:
    """explain's worked example of ``spec`` (a path or a dict), as an object a notebook displays.

    The options are explain's: a values file's content, the steps to run, the parameters to show
    and the significant digits.
    """
    check_digits(digits, "digits")
    return Lesson(_worked_example(analyze(spec).gradients, values, steps, params), digits)

"""The worked example as data: sections of titled groups of equations, and the numbers behind them.

Input: nothing but values; :func:`symgrad.explain.worked_example` fills them in.  Output: a
:class:`WorkedExample`, independent of the output format and the digits, which
:mod:`.render` writes as text, Markdown or HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy as sp

from ..formulas import Point
from ..spec import Spec
from .descent import Descent
from .equations import Node

#: Above this many parameters: the layer rules, and single chains only for ``params``.
LAYER_RULE_LIMIT = 300
#: Outputs listed one by one (error terms, values) up to this many.
OUTPUT_LIST_LIMIT = 20
ERROR_SYMBOL = sp.Symbol("E", real=True)  # the symbol evaluate() gives the example's error


@dataclass(frozen=True)
class Batch:
    """The spec's examples: the passes show the first; the error and dE/dp are the reduction over all.

    ``errors`` and ``gradients`` hold each example's outputs' loss and dE/dp, penalties not included.
    """

    points: tuple[Point, ...]
    reduction: str
    errors: tuple[float, ...]
    gradients: tuple[Mapping[str, float], ...]

    @property
    def several(self) -> bool:
        return len(self.points) > 1


@dataclass(frozen=True)
class Line:
    """One equation of the walk-through, with a short remark before and after it."""

    equation: Node
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class Group:
    title: str
    lines: tuple[Line, ...]
    text: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    text: str
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class WorkedExample:
    """Everything a walk-through shows, independent of the output format and the digits."""

    spec: Spec
    point: Point
    values: Mapping[sp.Symbol, float]    # every parameter, input, target, net, out, delta and E (penalty included)
    gradient: Mapping[str, float]        # dE/dp of every parameter, the penalty's derivative included
    updated: Mapping[str, float]         # the parameters after one step (all of them)
    error: float                         # E: the outputs' loss plus the penalty
    penalty: float                       # the layers' l1/l2 penalties (0 without any)
    first_step: Mapping[str, Mapping[str, float]]  # the optimizer's quantities of the first step, by name then parameter
    error_after_step: float
    steps: int
    descent: Descent | None              # the K steps (None when K = 0)
    layer_rules: bool
    shown: tuple[str, ...]               # the parameters whose chain and update are shown
    sections: tuple[Section, ...]

    def __repr__(self) -> str:
        return (f"WorkedExample({self.spec.name!r}, E={self.error!r}, after one step {self.error_after_step!r}, "
                f"steps={self.steps}, layer_rules={self.layer_rules})")

    def value(self, name: str) -> float:
        """The value of a symbol by its code name (``net_h1``, ``out_o1``, ``delta_o1``, ``E``: penalty included)."""
        for symbol, number in self.values.items():
            if symbol.name == name:
                return number
        raise KeyError(name)


"""Chain-rule inspection: dE/dp of one parameter as the factors the walk-throughs write.

Input: :class:`~symgrad.gradients.Gradients`.  Output: a :class:`ChainRule` per parameter
(its factors as SymPy expressions, the upstream sums behind a hidden unit, the penalty's
derivative), its one-line text, and per-layer formula templates for networks too big to list.
For Mazur's w5::

    dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5
           = (out_o1 - t_o1) * out_o1*(1 - out_o1) * out_h1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import sympy as sp

from ..errors import SpecError
from ..gradients import Gradients
from ..schema import suggest
from .printing import MULTIPLY, latex_factor, grouped_text, latex_name, to_text

@dataclass(frozen=True)
class Factor:
    """d``of``/d``wrt`` and its formula: one factor of a chain (``dout_o1/dnet_o1``)."""

    of: str
    wrt: str
    expr: sp.Expr

    @property
    def label(self) -> str:
        return f"d{self.of}/d{self.wrt}"

    @property
    def latex_label(self) -> str:
        return rf"\frac{{\partial {latex_name(self.of)}}}{{\partial {latex_name(self.wrt)}}}"


@dataclass(frozen=True)
class Path:
    """The product of factors through one unit that the parameter feeds."""

    unit: str
    factors: tuple[Factor, ...]


@dataclass(frozen=True)
class Upstream:
    """How a unit's first factor is itself a sum over every path to the loss.

    A hidden unit's dE/dout_j = sum_k dE/dnet_k * dnet_k/dout_j; a softmax output's
    dE/dnet_j = sum_k dE/dout_k * dout_k/dnet_j.  ``terms`` holds the pairs of that sum.
    """

    factor: Factor
    terms: tuple[tuple[Factor, Factor], ...]


@dataclass(frozen=True)
class ChainRule:
    """dE/dp as a sum over the units p feeds (one, unless p is a shared bias) of factor products."""

    parameter: str
    paths: tuple[Path, ...]
    upstream: tuple[Upstream, ...]
    total: sp.Expr  # for one example, the penalty included
    penalty: Factor | None = None  # d(l1/l2 penalty)/dp, when the parameter's layer has one

    def labels(self) -> str:
        text = " + ".join(MULTIPLY.join(f.label for f in path.factors) for path in self.paths)
        return text + (f" + {self.penalty.label}" if self.penalty else "")

    def formulas(self) -> str:
        text = " + ".join(MULTIPLY.join(grouped_text(f.expr) for f in path.factors) for path in self.paths)
        return text + (f" + {grouped_text(self.penalty.expr)}" if self.penalty else "")

    def text(self) -> str:
        """One line: the chain in labels, then in formulas."""
        return f"dE/d{self.parameter} = {self.labels()} = {self.formulas()}"

    def latex(self) -> str:
        labels = " + ".join(" ".join(f.latex_label for f in path.factors) for path in self.paths)
        formulas = " + ".join(r" \cdot ".join(latex_factor(f.expr) for f in path.factors) for path in self.paths)
        if self.penalty:
            labels += " + " + self.penalty.latex_label
            formulas += " + " + latex_factor(self.penalty.expr)
        return rf"\frac{{\partial E}}{{\partial {latex_name(self.parameter)}}} = {labels} = {formulas}"


def chain_rule(gradients: Gradients, name: str) -> ChainRule:
    """The chain rule behind dE/d``name``: every factor, as the walk-throughs write it."""
    if name not in gradients.model.parameters_by_name:
        known = sorted(gradients.model.parameters_by_name)
        raise SpecError("--param", f'"{name}" is not a parameter of this network' + suggest(name, known),
                        "use one of the names in PARAMETER_NAMES")
    derivative = gradients.parameter(name)
    paths = []
    upstream = []
    for unit, dnet_dp in derivative.terms:
        u = unit_derivative = gradients.unit(unit.name)
        net, out = f"net_{unit.name}", f"out_{unit.name}"
        if u.dout_dnet is None:  # softmax output: dE/dnet_j is a sum over every output
            factors = (Factor("E", net, u.delta),)
            upstream.append(Upstream(factors[0], tuple(
                (Factor("E", f"out_{k.name}", g), Factor(f"out_{k.name}", net, d)) for k, g, d in u.jacobian)))
        else:
            factors = (Factor("E", out, u.dE_dout), Factor(out, net, u.dout_dnet))
            if unit_derivative.paths:
                upstream.append(Upstream(factors[0], tuple(
                    (Factor("E", f"net_{k.name}", k.delta), Factor(f"net_{k.name}", out, w)) for k, w in u.paths)))
        paths.append(Path(unit.name, factors + (Factor(net, name, dnet_dp),)))
    penalty = Factor("penalty", name, derivative.penalty) if derivative.penalty != 0 else None
    return ChainRule(name, tuple(paths), tuple(upstream), derivative.expr + derivative.penalty, penalty)


def formula_texts(gradients: Gradients, names: Iterable[str] | None = None) -> dict[str, str]:
    """``{name: "dE/dname = ... = ..."}`` for the given (default: every) parameter."""
    chosen = list(names) if names is not None else [p.name for p in gradients.model.spec.parameters]
    return {name: chain_rule(gradients, name).text() for name in chosen}


def layer_formula_templates(gradients: Gradients) -> list[dict[str, Any]]:
    """Per layer, dE/dp as a format string in ``{p}`` (parameter), ``{u}`` (unit), ``{x}`` (input)
    and ``{following}`` (the next layer's name pattern), for networks too large for a table.

    The generated modules fill these in on demand, so FORMULAS costs nothing until it is read.
    """
    from ..gradients import A, T, Z

    unit = {A: sp.Symbol("out_{u}"), T: sp.Symbol("t_{u}"), Z: sp.Symbol("net_{u}")}
    spec = gradients.model.spec
    result = []
    parameter = sp.Symbol("{p}", real=True)
    for layer, rule in zip(spec.layers, gradients.layer_rules()):
        penalty = sp.diff(sp.Float(layer.l2) * parameter ** 2 + sp.Float(layer.l1) * sp.Abs(parameter), parameter)
        weight_penalty = f" + {grouped_text(penalty)}" if penalty != 0 else ""
        bias_penalty = weight_penalty if layer.regularize_bias else ""
        if rule.delta is not None:
            delta = to_text(rule.delta.xreplace(unit))
        elif rule.softmax_h is not None:
            h = to_text(rule.softmax_h.xreplace(unit))
            delta = f"h_{{u}} - out_{{u}} * sum_k h_k, h_{{u}} = dE/dout_{{u}} * out_{{u}} = {h}"
        else:
            derivative = grouped_text(rule.derivative.xreplace(unit))
            delta = f"(sum_k delta_k * W[k,{{u}}]) * {derivative}  (k over the next layer's units)"
        result.append({
            "units": layer.units,
            "inputs": None,
            "delta": "delta_{u} = " + delta,
            "weight": "dE/d{p} = delta_{u} * {x}" + weight_penalty,
            "bias": ("dE/d{p} = delta_{u}" if layer.bias_mode == "per_unit" else
                     "dE/d{p} = sum_u delta_u over the layer") + bias_penalty,
        })
    return result


"""Stage 3 (differentiate): a :class:`Model` -> :class:`Gradients`, dE/dp for every parameter, by the chain rule.

SymPy differentiates only local expressions: the loss with respect to each output, each
activation with respect to its net input, each net input with respect to a weight, a bias or an
upstream output.  The chain rule then assembles, per unit, its delta

    delta_j = dE/dout_j * dout_j/dnet_j,   dE/dout_j = sum_k delta_k * dnet_k/dout_j (hidden units)

and, per parameter, dE/dp = sum over the units p feeds of delta_j * dnet_j/dp.  Every factor is
kept, so a formula can be shown as the walk-throughs show it, and substituting the intermediates
back gives the closed form.  Unit and parameter derivatives are computed on demand and cached.

For wide layers the same rules are stated once per layer (:class:`LayerRule`), in template
symbols ``z`` (net input), ``a`` (output), ``t`` (target) and ``logp`` (log of a softmax output),
which the emitters turn into matrix code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from . import rules
from .model import Model, ModelLayer, Unit
from .rules import A, LOGP, T, Z  # noqa: F401  (template symbols of the per-layer rules; explain imports them here)
from .spec import Parameter


@dataclass(frozen=True)
class UnitDerivative:
    """How the loss depends on one unit: the factors of its delta.

    For a hidden unit, ``paths`` lists every downstream unit k with dnet_k/dout_j (its weight);
    for a softmax output, ``jacobian`` lists every output k with dout_k/dnet_j.
    """

    unit: Unit
    dE_dout: sp.Expr
    paths: tuple[tuple[Unit, sp.Expr], ...]
    dout_dnet: sp.Expr | None
    jacobian: tuple[tuple[Unit, sp.Expr, sp.Expr], ...]  # (k, dE/dout_k, dout_k/dnet_j)
    delta: sp.Expr


@dataclass(frozen=True)
class ParameterDerivative:
    """dE/dp = sum over ``terms`` of delta_j * dnet_j/dp (one term unless the bias is shared)."""

    parameter: Parameter
    symbol: sp.Symbol
    terms: tuple[tuple[Unit, sp.Expr], ...]
    penalty: sp.Expr = sp.S.Zero  # d(regularization)/dp, added once per batch

    @property
    def expr(self) -> sp.Expr:
        """dE/dp for one example, in the units' delta symbols (without the penalty)."""
        return sp.Add(*(unit.delta * dnet_dp for unit, dnet_dp in self.terms))


@dataclass(frozen=True)
class LayerRule:
    """One layer's elementwise rules in the template symbols z, a, t, logp.

    ``forward``: a = f(z) (None for softmax).  ``derivative``: da/dz (hidden and elementwise
    output layers).  For the output layer: ``loss`` is one output's loss in a stable form,
    ``delta`` its dE/dz (elementwise activations), or for softmax ``softmax_h`` = dE/da * a, from
    which delta = h - a * sum(h).
    """

    index: int
    activation: str
    forward: sp.Expr | None
    derivative: sp.Expr | None
    loss: sp.Expr | None = None
    delta: sp.Expr | None = None
    softmax_h: sp.Expr | None = None


@dataclass(frozen=True)
class Gradients:
    model: Model
    _cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"Gradients({self.model.spec!r})"

    # -- per unit -----------------------------------------------------------------------------
    def unit(self, name: str) -> UnitDerivative:
        key = ("unit", name)
        if key not in self._cache:
            self._cache[key] = self._derive_unit(self.model.units_by_name[name])
        return self._cache[key]

    def _derive_unit(self, unit: Unit) -> UnitDerivative:
        layer = self.model.layers[unit.layer]
        if unit.is_output and layer.activation == "softmax":
            jacobian = tuple(
                (other, sp.diff(self.model.example_loss, other.out),
                 rules.softmax_jacobian(other.out, unit.out, other is unit or other.j == unit.j))
                for other in layer.units)
            delta = rules.simplest_product(sp.Add(*(g * d for _, g, d in jacobian)))
            return UnitDerivative(unit, sp.diff(self.model.example_loss, unit.out), (), None, jacobian, delta)
        dout_dnet = rules.activation_derivative(layer.spec.activation, unit.net, unit.out)
        if unit.is_output:
            dE_dout = sp.diff(self.model.example_loss, unit.out)
            paths: tuple[tuple[Unit, sp.Expr], ...] = ()
        else:
            following = self.model.layers[unit.layer + 1]
            paths = tuple((k, sp.diff(following.net_expr(k.j), unit.out)) for k in following.units)
            dE_dout = sp.Add(*(k.delta * dnet_k for k, dnet_k in paths))
        delta = rules.simplest_product(dE_dout * dout_dnet) if unit.is_output else dE_dout * dout_dnet
        return UnitDerivative(unit, dE_dout, paths, dout_dnet, (), delta)

    # -- per parameter ------------------------------------------------------------------------
    def parameter(self, name: str) -> ParameterDerivative:
        key = ("parameter", name)
        if key not in self._cache:
            parameter = self.model.parameters_by_name[name]
            layer = self.model.layers[parameter.layer]
            symbol = self.model.parameter_symbol(name)
            fed = layer.units if parameter.j < 0 else (layer.units[parameter.j],)
            terms = tuple((unit, sp.diff(layer.net_expr(unit.j), symbol)) for unit in fed)
            penalty = sp.diff(self.model.penalty(name), symbol)
            self._cache[key] = ParameterDerivative(parameter, symbol, terms, penalty)
        return self._cache[key]

    def parameters(self) -> tuple[ParameterDerivative, ...]:
        return tuple(self.parameter(p.name) for p in self.model.spec.parameters)

    def units_backward(self) -> tuple[UnitDerivative, ...]:
        """Every unit's derivative, output layer first: the order a backward pass computes them."""
        return tuple(self.unit(u.name) for layer in reversed(self.model.layers) for u in layer.units)

    # -- closed forms -------------------------------------------------------------------------
    def substitutions(self) -> dict[sp.Symbol, sp.Expr]:
        """Each intermediate symbol -> its defining expression (one level)."""
        key = ("substitutions",)
        if key not in self._cache:
            subs: dict[sp.Symbol, sp.Expr] = {}
            for layer in self.model.layers:
                if layer.activation == "softmax":
                    subs[layer.lse] = sp.log(sp.Add(*(sp.exp(u.net) for u in layer.units)))
                for unit in layer.units:
                    subs[unit.net] = layer.net_expr(unit.j)
                    subs[unit.out] = layer.out_expr(unit.j)
                    subs[unit.log_out] = unit.net - layer.lse
            for derivative in self.units_backward():
                subs[derivative.unit.delta] = derivative.delta
            self._cache[key] = subs
        return self._cache[key]

    def closed_form(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` in inputs, targets and parameters only: every intermediate substituted away."""
        subs = self.substitutions()
        for _ in range(4 * len(self.model.layers) + 4):
            replaced = expr.xreplace(subs)
            if replaced == expr:
                return expr
            expr = replaced
        return expr

    # -- per layer ----------------------------------------------------------------------------
    def layer_rules(self) -> tuple[LayerRule, ...]:
        key = ("layer_rules",)
        if key not in self._cache:
            self._cache[key] = tuple(self._layer_rule(layer) for layer in self.model.layers)
        return self._cache[key]

    def _layer_rule(self, layer: ModelLayer) -> LayerRule:
        name = layer.activation
        if name == "softmax":
            forward = derivative = None
        else:
            forward = rules.activation_function(layer.spec.activation)(Z)
            derivative = rules.activation_derivative(layer.spec.activation, Z, A)
        if not layer.is_output:
            return LayerRule(layer.index, name, forward, derivative)
        term = self.model.loss_term(A, T)
        dE_da = sp.diff(term, A)
        loss = term.xreplace(rules.stable_log_rewrites(name, Z, A, LOGP))
        if name == "softmax":
            return LayerRule(layer.index, name, None, None, loss=loss, softmax_h=rules.simplest_product(dE_da * A))
        return LayerRule(layer.index, name, forward, derivative, loss=loss,
                         delta=rules.simplest_product(dE_da * derivative))


def differentiate(model: Model) -> Gradients:
    """The derivatives of ``model``'s loss; computed lazily, per unit and per parameter."""
    return Gradients(model)

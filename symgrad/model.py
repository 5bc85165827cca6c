"""Stage 2: a :class:`Spec` -> a symbolic :class:`Model` with named intermediates per unit.

Every unit gets the symbols the walk-throughs use: ``net_h1`` (its net input), ``out_h1`` (its
output) and ``delta_h1`` (dE/dnet_h1); every output unit a target ``t_o1``.  A unit's local
expressions are small (``net_h1 = w1*i1 + w2*i2 + b1``, ``out_h1 = sigmoid(net_h1)``), which is
what keeps differentiation linear in the network's size (DESIGN.md section 2).

Symbols are made on demand and cached, so a 784-256-10 model costs nothing until somebody asks
about one of its 203,530 parameters.  A SymPy symbol's name is its name in generated code, made
by :func:`symgrad.naming.code_name` alone: roles get distinct prefixes, so names from the spec can never clash
with each other or with the generated code's own identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import sympy as sp

from . import rules
from .naming import Role, code_name, display_name  # noqa: F401  (display_name: formulas and explain import it here)
from .spec import Layer, Parameter, Spec


@lru_cache(maxsize=None)
def _symbol(role: Role, name: str) -> sp.Symbol:
    return sp.Symbol(code_name(role, name), real=True)


@dataclass(frozen=True)
class Unit:
    """One neuron: where it sits and its symbols."""

    name: str
    layer: int
    j: int
    is_output: bool

    @property
    def net(self) -> sp.Symbol:
        return _symbol("net", self.name)

    @property
    def out(self) -> sp.Symbol:
        return _symbol("out", self.name)

    @property
    def delta(self) -> sp.Symbol:
        return _symbol("delta", self.name)

    @property
    def target(self) -> sp.Symbol:
        return _symbol("target", self.name)

    @property
    def log_out(self) -> sp.Symbol:
        return _symbol("log_out", self.name)


@dataclass(frozen=True)
class ModelLayer:
    index: int
    spec: Layer
    is_output: bool
    input_names: tuple[str, ...]  # the names feeding this layer: inputs or the previous layer's units
    input_role: Role               # "input" for the first layer, "out" after it

    @cached_property
    def units(self) -> tuple[Unit, ...]:
        return tuple(Unit(name, self.index, j, self.is_output) for j, name in enumerate(self.spec.units))

    @property
    def activation(self) -> str:
        return self.spec.activation.name

    def input_symbol(self, i: int) -> sp.Symbol:
        return _symbol(self.input_role, self.input_names[i])

    def weight(self, j: int, i: int) -> sp.Symbol:
        return _symbol("param", self.spec.weights[j][i])

    def bias(self, j: int) -> sp.Symbol | None:
        """The bias added to unit j, or None."""
        if self.spec.bias_mode == "none":
            return None
        return _symbol("param", self.spec.biases[0 if self.spec.bias_mode == "shared" else j])

    def net_expr(self, j: int) -> sp.Expr:
        """net_j = sum_i W[j][i] * input_i + b_j."""
        total = sp.Add(*(self.weight(j, i) * self.input_symbol(i) for i in range(self.spec.n_in)))
        bias = self.bias(j)
        return total + bias if bias is not None else total

    @cached_property
    def lse(self) -> sp.Symbol:
        """log(sum(exp(net))) of a softmax layer, computed stably in the forward pass."""
        return _symbol("lse", self.spec.units[0])

    def out_expr(self, j: int) -> sp.Expr:
        """out_j as a function of the net inputs (softmax: exp(net_j - lse))."""
        unit = self.units[j]
        if self.activation == "softmax":
            return sp.exp(unit.net - self.lse)
        activation = rules.activation_function(self.spec.activation)
        return activation(unit.net)


@dataclass(frozen=True)
class Model:
    spec: Spec
    layers: tuple[ModelLayer, ...] = field(repr=False)

    def __repr__(self) -> str:
        return f"Model({self.spec!r})"

    @property
    def output_layer(self) -> ModelLayer:
        return self.layers[-1]

    @cached_property
    def inputs(self) -> tuple[sp.Symbol, ...]:
        return tuple(_symbol("input", name) for name in self.spec.inputs)

    @cached_property
    def targets(self) -> tuple[sp.Symbol, ...]:
        return tuple(unit.target for unit in self.output_layer.units)

    @cached_property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        return tuple(_symbol("param", p.name) for p in self.spec.parameters)

    def parameter_symbol(self, name: str) -> sp.Symbol:
        return _symbol("param", name)

    @cached_property
    def units_by_name(self) -> dict[str, Unit]:
        return {unit.name: unit for layer in self.layers for unit in layer.units}

    @cached_property
    def parameters_by_name(self) -> dict[str, Parameter]:
        return {p.name: p for p in self.spec.parameters}

    def loss_term(self, o: sp.Expr, t: sp.Expr) -> sp.Expr:
        """One output's share of the per-example loss (mse's 1/K and label smoothing included)."""
        spec = self.spec
        smoothing = spec.loss.label_smoothing
        if smoothing:  # PyTorch's label smoothing: the target becomes (1 - s) t + s/K
            t = (1 - sp.Float(smoothing)) * t + sp.Float(smoothing) / spec.n_outputs
        return rules.loss_output_scale(spec.loss.name, spec.n_outputs) * rules.loss_term(spec.loss, o, t)

    def penalty(self, name: str) -> sp.Expr:
        """The regularization term this parameter adds to the loss (0 when its layer has none)."""
        parameter = self.parameters_by_name[name]
        layer = self.spec.layers[parameter.layer]
        if parameter.kind == "bias" and not layer.regularize_bias:
            return sp.S.Zero
        return rules.penalty_term(layer, self.parameter_symbol(name))

    @cached_property
    def example_loss(self) -> sp.Expr:
        """The loss of one example in the output symbols and targets: what dE/dout differentiates."""
        return sp.Add(*(self.loss_term(unit.out, unit.target) for unit in self.output_layer.units))

    @cached_property
    def stable_example_loss(self) -> sp.Expr:
        """The same loss with its logarithms taken from the logits (what the code computes)."""
        layer = self.output_layer
        replacements: dict[sp.Expr, sp.Expr] = {}
        for unit in layer.units:
            log_out = unit.log_out if layer.activation == "softmax" else None
            replacements.update(rules.stable_log_rewrites(layer.activation, unit.net, unit.out, log_out))
        return self.example_loss.xreplace(replacements)


def build_model(spec: Spec) -> Model:
    """Give every unit of ``spec`` its symbols and local expressions."""
    layers = []
    names, role = spec.inputs, "input"
    for k, layer in enumerate(spec.layers):
        layers.append(ModelLayer(k, layer, k == len(spec.layers) - 1, names, role))
        names, role = layer.units, "out"
    return Model(spec, tuple(layers))

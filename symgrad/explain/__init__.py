"""The explain stage: a step-by-step worked example of backpropagation for any spec.

Like the hand-written walk-throughs symgrad grew out of, at the spec's initial values and its
example (or those of a values file)::

    network diagram -> forward pass, neuron by neuron -> each output's error, the penalties and
    the total -> dE/dp for every parameter by the chain rule (plus the penalty's derivative), as
    a formula and with numbers -> the optimizer's first step from a fresh state -> the error
    after the step and after K steps (the optimizer's state carried from step to step)

:func:`worked_example` computes it all once (values with SymPy's arithmetic through
:func:`symgrad.formulas.evaluate`; the optimizer's steps, the first one and the K steps alike, with the float64 update rules of
:mod:`.descent`);
:func:`render` writes it as plain text, Markdown with LaTeX, or HTML with MathML and an inline
SVG diagram (no JavaScript, nothing fetched), through the Jinja2 templates beside this file.
Networks with more than :data:`LAYER_RULE_LIMIT` parameters get each layer's rule instead of
every parameter's chain, and the full chain of the parameters asked for by name.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import sympy as sp

from ..errors import SpecError
from ..formulas import Point, chain_rule, evaluate, point_from_spec, value_of
from ..gradients import Gradients, differentiate
from ..model import Model, build_model
from ..spec import parse_spec
from .descent import Network
from .document import ERROR_SYMBOL, LAYER_RULE_LIMIT, OUTPUT_LIST_LIMIT, Group, Line, Section, WorkedExample
from .render import markdown_escape, render
from .sections import backward_section, error_section, forward_section, network_section
from .steps import update_section

__all__ = ["Group", "LAYER_RULE_LIMIT", "Line", "MAX_STEPS", "OUTPUT_LIST_LIMIT", "Section", "WorkedExample",
           "explain", "markdown_escape", "render", "worked_example"]

MAX_STEPS = 10_000_000
FORMATS = ("txt", "md", "html")


def explain(spec_source: Any, format: str = "txt", values: Mapping[str, Any] | None = None, steps: int = 10_000,
            digits: int = 6, params: Sequence[str] | None = None) -> str:
    """The worked example of ``spec_source`` (a path or a dict) as ``format`` text."""
    if format not in FORMATS:
        raise SpecError("--format", f'unknown format "{format}"', "use txt, md or html")
    if not 1 <= digits <= 17:
        raise SpecError("--digits", f"{digits} is out of range", "use 1 to 17")
    gradients = differentiate(build_model(parse_spec(spec_source)))
    return render(worked_example(gradients, values, steps, params), format, digits)


def worked_example(gradients: Gradients, values: Mapping[str, Any] | None = None, steps: int = 10_000,
                   params: Sequence[str] | None = None) -> WorkedExample:
    model = gradients.model
    spec = model.spec
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise SpecError("--steps", f"{steps!r} is out of range", f"use 0 to {MAX_STEPS}")
    point = point_from_spec(gradients, values)
    layer_rules = spec.n_parameters > LAYER_RULE_LIMIT
    for name in params or ():
        chain_rule(gradients, name)  # an unknown name is a SpecError with suggestions
    shown = tuple(dict.fromkeys(params)) if params else (() if layer_rules else spec.parameter_names)

    network = Network(gradients)
    descent = network.descend(point.parameters, point.inputs, point.targets, max(steps, 1))
    theta = network.theta(point.parameters)
    penalty, _ = network.penalty(theta)
    if layer_rules:  # SymPy arithmetic on every unit of a big network is slow: the float64 loop's values
        numbers, gradient = _values_from_network(network, model, point)
    else:
        numbers = evaluate(gradients, point)
        derivatives = {p.name: gradients.parameter(p.name) for p in spec.parameters}
        gradient = {name: value_of(d.expr + d.penalty, numbers) for name, d in derivatives.items()}
    outputs_error = numbers[ERROR_SYMBOL]
    numbers[ERROR_SYMBOL] = outputs_error + penalty
    chains = {name: chain_rule(gradients, name) for name in shown}

    # The first step: the same update rule as the K steps, from a fresh state, on the gradient shown.
    names = spec.parameter_names
    new_theta, quantities = network.optimizer.step(
        theta, _array([gradient[name] for name in names]), network.optimizer.fresh_state())
    updated = dict(zip(names, map(float, new_theta)))
    first_step = {key: dict(zip(names, map(float, array))) for key, array in quantities.items()}
    after = descent.errors[1] if layer_rules else \
        evaluate(gradients, Point(updated, point.inputs, point.targets))[ERROR_SYMBOL] + network.penalty(new_theta)[0]

    sections = (
        network_section(spec, point),
        forward_section(model, numbers, layer_rules),
        error_section(model, numbers, outputs_error, point, layer_rules),
        backward_section(gradients, chains, numbers, layer_rules),
        update_section(spec, point, gradient, updated, first_step, shown, after,
                        descent if steps > 1 else None, steps),
    )
    return WorkedExample(spec, point, numbers, gradient, updated, numbers[ERROR_SYMBOL], penalty, first_step, after,
                         steps, descent if steps > 0 else None, layer_rules, shown, sections)


def _values_from_network(network: Network, model: Model,
                         point: Point) -> tuple[dict[sp.Symbol, float], dict[str, float]]:
    """The same symbol -> value map as :func:`evaluate`, and dE/dp by name (penalty included), from the
    float64 loop."""
    theta = network.theta(point.parameters)
    states, error, grad = network.backward(theta, _array(point.inputs), _array(point.targets))
    numbers: dict[sp.Symbol, float] = {model.parameter_symbol(p.name): point.parameters[p.name]
                                       for p in model.spec.parameters}
    numbers.update(zip(model.inputs, point.inputs))
    numbers.update(zip(model.targets, point.targets))
    for layer, state in zip(model.layers, states):
        for unit in layer.units:
            numbers[unit.net] = float(state.net[unit.j])
            numbers[unit.out] = float(state.out[unit.j])
            numbers[unit.delta] = float(state.delta[unit.j])
        if layer.activation == "softmax":
            numbers[layer.lse] = _log_sum_exp([numbers[u.net] for u in layer.units])
            numbers.update({u.log_out: numbers[u.net] - numbers[layer.lse] for u in layer.units})
    numbers[ERROR_SYMBOL] = error  # the outputs' loss; the caller adds the penalty
    grad = grad + network.penalty(theta)[1]
    return numbers, dict(zip(model.spec.parameter_names, map(float, grad)))


def _array(row: Sequence[float]):
    import numpy as np

    return np.asarray(row, dtype=np.float64)


def _log_sum_exp(nets: list[float]) -> float:
    largest = max(nets)
    return largest + math.log(sum(math.exp(n - largest) for n in nets))


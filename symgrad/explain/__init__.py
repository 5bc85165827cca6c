"""The explain stage: a step-by-step worked example of backpropagation for any spec.

Input: :class:`~symgrad.gradients.Gradients` and, optionally, a values file.  Output: text in
one of three formats.  Like the hand-written walk-throughs symgrad grew out of, at the spec's
initial values and its example (or those of a values file)::

    network diagram -> forward pass, neuron by neuron -> each output's error, the penalties and
    the total -> why each local derivative is what it is (the loss's and every activation's, by
    SymPy) -> each unit's delta and every dE/dp by the chain rule, as a formula and with numbers
    -> the same pass in matrix form -> the optimizer's first step from a fresh state -> the error
    after the step and after K steps (the optimizer's state carried from step to step)

Every symbol is defined where it first appears.  When the spec's example holds several
examples, every forward pass is shown (a table past a handful), and the error, each dE/dp and
the steps use the loss's reduction over all of them, their per-example values listed.
:func:`worked_example` computes it all once (values with SymPy's arithmetic through
:func:`symgrad.formulas.evaluate`, the optimizer's steps with :mod:`.descent`) into a
:mod:`.document` of sections (:mod:`.sections`, :mod:`.derivations`, :mod:`.matrices`,
:mod:`.steps`); :func:`render` (:mod:`.render`) writes it as plain text, Markdown with LaTeX, or
HTML with MathML and an inline SVG diagram.  Networks with more than :data:`LAYER_RULE_LIMIT`
parameters get each layer's rule instead of every parameter's chain, and the full chain of the
parameters asked for by name.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import sympy as sp

from ..errors import SpecError
from ..formulas import Point, chain_rule, check_digits, evaluate, points_from_spec, reduce_examples, value_of
from ..gradients import Gradients
from ..model import Model
from ..pipeline import analyze
from .descent import Descent, Network
from .document import ERROR_SYMBOL, LAYER_RULE_LIMIT, OUTPUT_LIST_LIMIT, Batch, Group, Line, Section, WorkedExample
from .matrices import matrix_section
from .render import markdown_escape, render
from .sections import backward_section, error_section, forward_section, network_section
from .steps import update_section

__all__ = ["Group", "LAYER_RULE_LIMIT", "Line", "MAX_STEPS", "OUTPUT_LIST_LIMIT", "Section", "WorkedExample",
           "check_digits", "explain", "markdown_escape", "render", "worked_example"]

MAX_STEPS = 10_000_000
#: explain's K steps run in float64 NumPy, about 5 ns per parameter and example: at most this many
#: parameter-example updates in all (about a second), fewer steps on a big network, with a note.
STEP_BUDGET = 200_000_000
FORMATS = ("txt", "md", "html")


def explain(spec_source: Any, format: str = "txt", values: Mapping[str, Any] | None = None, steps: int = 10_000,
            digits: int = 6, params: Sequence[str] | None = None) -> str:
    """The worked example of ``spec_source`` (a path or a dict) as ``format`` text."""
    if format not in FORMATS:
        raise SpecError("--format", f'unknown format "{format}"', "use txt, md or html")
    check_digits(digits)
    gradients = analyze(spec_source).gradients
    return render(worked_example(gradients, values, steps, params), format, digits)



def worked_example(gradients: Gradients, values: Mapping[str, Any] | None = None, steps: int = 10_000,
                   params: Sequence[str] | None = None) -> WorkedExample:
    model = gradients.model
    spec = model.spec
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise SpecError("--steps", f"{steps!r} is out of range", f"use 0 to {MAX_STEPS}")
    points = points_from_spec(gradients, values)
    point = points[0]
    reduction = spec.loss.reduction
    layer_rules = spec.n_parameters > LAYER_RULE_LIMIT
    for name in params or ():
        chain_rule(gradients, name)  # an unknown name is a SpecError with suggestions
    shown = tuple(dict.fromkeys(params)) if params else (() if layer_rules else spec.parameter_names)
    asked, steps = steps, min(steps, max(1, STEP_BUDGET // (spec.n_parameters * len(points))))

    network = Network(gradients)
    theta = network.theta(point.parameters)
    penalty, penalty_gradient = network.penalty(theta)
    names = spec.parameter_names
    if layer_rules:  # SymPy arithmetic on every unit of a big network is slow: the float64 loop's values
        results = [_values_from_network(network, model, p) for p in points]
        example_values = [at for at, _ in results]
        penalties = dict(zip(names, map(float, penalty_gradient)))
        example_gradients = [{name: g[name] - penalties[name] for name in names} for _, g in results]
        single = results[0][1]
    else:
        example_values = [evaluate(gradients, p) for p in points]
        derivatives = {p.name: gradients.parameter(p.name) for p in spec.parameters}
        example_gradients = [{name: value_of(d.expr, at) for name, d in derivatives.items()}
                             for at in example_values]
        penalties = {name: value_of(d.penalty, example_values[0]) for name, d in derivatives.items()}
        single = {name: value_of(d.expr + d.penalty, example_values[0]) for name, d in derivatives.items()}
    numbers = example_values[0]
    batch = Batch(points, reduction, tuple(v[ERROR_SYMBOL] for v in example_values), tuple(example_gradients))
    gradient = single if not batch.several else {
        name: reduce_examples([g[name] for g in example_gradients], reduction) + penalties[name] for name in names}
    outputs_error = numbers[ERROR_SYMBOL]
    numbers[ERROR_SYMBOL] = outputs_error + penalty
    error = numbers[ERROR_SYMBOL] if not batch.several else reduce_examples(batch.errors, reduction) + penalty
    chains = {name: chain_rule(gradients, name) for name in shown}

    with np.errstate(all="ignore"):  # a diverging run shows inf or nan in its errors, not warnings
        descent = _descend(network, points, max(steps, 1), reduction)
    # The first step: the same update rule as the K steps, from a fresh state, on the gradient shown.
    new_theta, quantities = network.optimizer.step(
        theta, _array([gradient[name] for name in names]), network.optimizer.fresh_state())
    updated = dict(zip(names, map(float, new_theta)))
    first_step = {key: dict(zip(names, map(float, array))) for key, array in quantities.items()}
    after = descent.errors[1] if layer_rules else reduce_examples(
        [evaluate(gradients, Point(updated, p.inputs, p.targets))[ERROR_SYMBOL] for p in points], reduction) \
        + network.penalty(new_theta)[0]

    sections = (
        network_section(spec, point, batch),
        forward_section(model, numbers, layer_rules, batch, example_values),
        error_section(model, numbers, outputs_error, point, layer_rules, batch, error),
        backward_section(gradients, chains, numbers, layer_rules, batch, gradient, penalties),
    ) + (() if layer_rules else (matrix_section(gradients, numbers, batch.several),)) + (
        update_section(spec, point, gradient, updated, first_step, shown, after,
                       descent if steps > 1 else None, steps, asked, len(points)),
    )
    return WorkedExample(spec, point, numbers, gradient, updated, error, penalty, first_step, after,
                         steps, descent if steps > 0 else None, layer_rules, shown, sections)


def _descend(network: Network, points: Sequence[Point], steps: int, reduction: str) -> Descent:
    """``steps`` optimizer steps on all the examples at once (the loss's reduction of their gradients)."""
    first = points[0]
    if len(points) == 1:
        return network.descend(first.parameters, first.inputs, first.targets, steps)
    theta = network.theta(first.parameters)
    rows = [(_array(p.inputs), _array(p.targets)) for p in points]
    state = network.optimizer.fresh_state()

    def batch_error(theta: np.ndarray) -> float:
        errors = [network.forward(theta, x, t)[1] for x, t in rows]
        return reduce_examples(errors, reduction) + network.penalty(theta)[0]

    errors = []
    for _ in range(steps):
        results = [network.backward(theta, x, t) for x, t in rows]
        penalty, penalty_grad = network.penalty(theta)
        errors.append(reduce_examples([error for _, error, _ in results], reduction) + penalty)
        total = np.sum([grad for _, _, grad in results], axis=0)
        theta, _ = network.optimizer.step(theta, (total / len(rows) if reduction == "mean" else total) + penalty_grad,
                                          state)
    errors.append(batch_error(theta))
    values, _ = network.forward(theta, *rows[0])
    return Descent(tuple(errors), dict(zip(network.spec.parameter_names, map(float, theta))),
                   tuple(float(v) for v in values[-1]))


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


def _array(row: Sequence[float]) -> np.ndarray:
    return np.asarray(row, dtype=np.float64)


def _log_sum_exp(nets: list[float]) -> float:
    largest = max(nets)
    return largest + math.log(sum(math.exp(n - largest) for n in nets))


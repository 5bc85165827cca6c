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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
import markupsafe
import sympy as sp

from ..emit import template_environment
from ..errors import SpecError
from ..formulas import Factor, Point, chain_rule, evaluate, format_number, point_from_spec, value_of
from ..gradients import A, T, Z, Gradients
from ..model import Model
from ..pipeline import analyze
from ..rules import stable_log_rewrites
from ..spec import Spec
from .descent import Descent, Network
from .diagram import layout
from .notation import (ALPHA, BETA1, BETA2, EPSILON, ERROR, ETA, LAMBDA, MU, NOTATIONS, PENALTY, Difference,
                       Equation, Formula, Fraction, Name, Node, Number, Partial, Product, Root, Square, Sum, marked,
                       per_parameter, product, quantity, subscripted, summed, total)

#: Above this many parameters: the layer rules, and single chains only for ``params``.
LAYER_RULE_LIMIT = 300
#: Outputs listed one by one (error terms, values) up to this many.
OUTPUT_LIST_LIMIT = 20
MAX_STEPS = 10_000_000
FORMATS = ("txt", "md", "html")

_TEMPLATES = Path(__file__).parent
ERROR_SYMBOL = sp.Symbol("E", real=True)  # the symbol evaluate() gives the example's error


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


def explain(spec_source: Any, format: str = "txt", values: Mapping[str, Any] | None = None, steps: int = 10_000,
            digits: int = 6, params: Sequence[str] | None = None) -> str:
    """The worked example of ``spec_source`` (a path or a dict) as ``format`` text."""
    if format not in FORMATS:
        raise SpecError("--format", f'unknown format "{format}"', "use txt, md or html")
    if not 1 <= digits <= 17:
        raise SpecError("--digits", f"{digits} is out of range", "use 1 to 17")
    gradients = analyze(spec_source).gradients
    return render(worked_example(gradients, values, steps, params), format, digits)


# -- computing the walk-through ----------------------------------------------------------------

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
        _network_section(spec, point),
        _forward_section(model, numbers, layer_rules),
        _error_section(model, numbers, outputs_error, point, layer_rules),
        _backward_section(gradients, chains, numbers, layer_rules),
        _update_section(spec, point, gradient, updated, first_step, shown, after,
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


def _describe_layer(spec: Spec, k: int) -> str:
    layer = spec.layers[k]
    role = "Output layer" if k == len(spec.layers) - 1 else f"Hidden layer {k + 1}"
    bias = {"shared": f"one shared bias {layer.biases[0]}" if layer.biases else "",
            "per_unit": "a bias per unit", "none": "no bias"}[layer.bias_mode]
    return f"{role}: {layer.n_out} {layer.activation.describe()} unit(s), {bias}"


def _network_section(spec: Spec, point: Point) -> Section:
    sizes = "-".join(str(n) for n in [spec.n_inputs] + [layer.n_out for layer in spec.layers])
    loss = spec.loss.name
    frozen = f" Frozen (never updated): {', '.join(spec.frozen)}." if spec.frozen else ""
    penalties = "".join(f" Layer {k + 1}'s penalty: {_describe_penalty(l1, l2)} over its "
                        f"{'weights and biases' if spec.layers[k].regularize_bias else 'weights'}."
                        for _, _, l1, l2, k in spec.penalized_slices())
    text = (f"A {sizes} network with {spec.n_parameters} parameters, loss {loss}, {_describe_optimizer(spec.optimizer)}."
            f"{penalties}{frozen} One example: inputs {_listing(spec.inputs, point.inputs)}; "
            f"targets {_listing(spec.layers[-1].units, point.targets)}.")
    small = spec.n_parameters <= LAYER_RULE_LIMIT
    layers = tuple(Group(_describe_layer(spec, k), tuple(
        Line(Equation((quantity(sp.Symbol(p.name)), Number(point.parameters[p.name]))),
             after="frozen" if p.name in spec.frozen else "")
        for p in spec.parameters if p.layer == k and small)) for k in range(len(spec.layers)))
    return Section("Network", text, layers)


def _plain_sgd(optimizer) -> bool:
    return optimizer.name == "sgd" and not optimizer.momentum and not optimizer.weight_decay


def _describe_optimizer(o) -> str:
    """``plain SGD with learning rate 0.5``, ``Adam with learning rate 0.01, betas (0.9, 0.999), eps 1e-08``."""
    if _plain_sgd(o):
        return f"plain SGD with learning rate {o.learning_rate!r}"
    options = [f"learning rate {o.learning_rate!r}"]
    if o.name == "rmsprop":
        options += [f"alpha {o.alpha!r}", f"eps {o.eps!r}"]
    if o.name in ("adam", "adamw"):
        options += [f"betas ({o.beta1!r}, {o.beta2!r})", f"eps {o.eps!r}"]
    if o.momentum:
        options.append(("Nesterov momentum" if o.nesterov else "momentum") + f" {o.momentum!r}"
                       + (f", dampening {o.dampening!r}" if o.dampening else ""))
    if o.weight_decay:
        options.append(f"{'decoupled ' if o.name == 'adamw' else ''}weight decay {o.weight_decay!r}")
    title = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}[o.name]
    return f"{title} with " + ", ".join(options)


def _describe_penalty(l1: float, l2: float) -> str:
    return " + ".join(([f"{l2!r}·Σp²"] if l2 else []) + ([f"{l1!r}·Σ|p|"] if l1 else []))


def _listing(names: Sequence[str], values: Sequence[float], limit: int = 10) -> str:
    """``x0 = 0.1, x1 = 0.2, ...``, the first and last few of a long list."""
    pairs = [f"{name} = {value!r}" for name, value in zip(names, values)]
    if len(pairs) <= limit:
        return ", ".join(pairs)
    return ", ".join(pairs[:5] + ["..."] + pairs[-2:]) + f" ({len(pairs)} in all)"


def _forward_section(model: Model, numbers: Mapping[sp.Symbol, float], layer_rules: bool) -> Section:
    groups = []
    for layer in model.layers:
        title = _describe_layer(model.spec, layer.index)
        if layer_rules:
            groups.append(Group(title, _layer_forward_rule(layer, numbers)))
            continue
        lines = []
        for unit in layer.units:
            lines.append(Line(_net_equation(layer, unit.j, numbers)))
            lines.append(Line(_out_equation(layer, unit, numbers)))
        groups.append(Group(title, tuple(lines)))
    text = ("Each unit adds up its weighted inputs and its bias (net), then applies its activation (out)."
            if not layer_rules else
            "Layer by layer, as vectors: net = W x + b, then the activation elementwise.")
    return Section("Forward pass", text, tuple(groups))


def _value(symbol: sp.Symbol, numbers: Mapping[sp.Symbol, float]) -> Number:
    return Number(numbers[symbol])


def _net_equation(layer, j: int, numbers: Mapping[sp.Symbol, float]) -> Equation:
    names = [product((quantity(layer.weight(j, i)), quantity(layer.input_symbol(i))))
             for i in range(layer.spec.n_in)]
    shown = [product((_value(layer.weight(j, i), numbers), _value(layer.input_symbol(i), numbers)), "times")
             for i in range(layer.spec.n_in)]
    bias = layer.bias(j)
    if bias is not None:
        names.append(quantity(bias))
        shown.append(_value(bias, numbers))
    unit = layer.units[j]
    return Equation((quantity(unit.net), total(names), total(shown), _value(unit.net, numbers)))


def _out_equation(layer, unit, numbers: Mapping[sp.Symbol, float]) -> Equation:
    if layer.activation == "softmax":
        expr = sp.exp(unit.net) / sp.Add(*(sp.exp(u.net) for u in layer.units))
    else:
        expr = layer.out_expr(unit.j)
    return Equation((quantity(unit.out), Formula(expr), Formula(expr, numbers), _value(unit.out, numbers)))


def _vector(base: str, k: int) -> Name:
    if base == "out" and k == 0:
        return Name("x", r"\mathbf{x}", "<mi mathvariant=\"bold\">x</mi>")
    return {"W": subscripted("W", str(k)), "b": subscripted("b", str(k)),
            "net": quantity(sp.Symbol(f"net_{k}")), "out": quantity(sp.Symbol(f"out_{k}")),
            "delta": quantity(sp.Symbol(f"delta_{k}"))}[base]


def _layer_forward_rule(layer, numbers: Mapping[sp.Symbol, float]) -> tuple[Line, ...]:
    k = layer.index + 1
    net = sp.Symbol(f"net_{k}")
    terms = [product((_vector("W", k), _vector("out", k - 1)), "juxt")]
    if layer.spec.bias_mode != "none":
        terms.append(_vector("b", k))
    activation = sp.Function("softmax")(net) if layer.activation == "softmax" else \
        layer.out_expr(0).xreplace({layer.units[0].net: net})
    lines = [Line(Equation((_vector("net", k), total(terms)))),
             Line(Equation((_vector("out", k), Formula(activation))),
                  after="elementwise" if layer.activation != "softmax" else "")]
    if layer.is_output and len(layer.units) <= OUTPUT_LIST_LIMIT:
        lines += [Line(Equation((quantity(u.out), _value(u.out, numbers)))) for u in layer.units]
    return tuple(lines)


def _error_section(model: Model, numbers: Mapping[sp.Symbol, float], outputs_error: float, point: Point,
                   layer_rules: bool) -> Section:
    layer = model.output_layer
    spec = model.spec
    penalty = numbers[ERROR_SYMBOL] - outputs_error
    penalty_line = _penalty_line(model, point, penalty)
    lines = []
    if len(layer.units) <= OUTPUT_LIST_LIMIT:
        names = []
        for unit in layer.units:
            term = model.loss_term(unit.out, unit.target)
            stable = term.xreplace(stable_log_rewrites(layer.activation, unit.net, unit.out,
                                                       unit.log_out if layer.activation == "softmax" else None))
            error = subscripted("E", unit.name)
            names.append((error, value_of(stable, numbers)))
            lines.append(Line(Equation((error, Formula(term), Formula(term, numbers), Number(names[-1][1])))))
        if penalty_line is not None:
            lines.append(penalty_line)
            names.append((PENALTY, penalty))
        lines.append(Line(Equation((ERROR, total(n for n, _ in names), total(Number(v) for _, v in names),
                                    Number(numbers[ERROR_SYMBOL])))))
    elif penalty_line is not None:
        lines.append(penalty_line)
        lines.append(Line(Equation((ERROR, total((Number(outputs_error), Number(penalty))),
                                    Number(numbers[ERROR_SYMBOL]))), before="The outputs' loss, plus the penalty:"))
    else:
        lines.append(Line(Equation((ERROR, Number(numbers[ERROR_SYMBOL])))))
    text = f"The loss ({spec.loss.name}) of this example: each output's share, then their sum."
    if penalty_line is not None:
        text += (" The layers' penalties are part of the loss: added once, after the batch's reduction "
                 "(for one example, simply added).")
    return Section("Error", text, (Group("", tuple(lines)),))


#: A layer's penalty lists its parameters' squares (or absolute values) up to this many.
PENALTY_LIST_LIMIT = 6


def _penalty_line(model: Model, point: Point, penalty: float) -> Line | None:
    """penalty = l2 · (w1² + ...) + l1 · (|w1| + ...) per layer, with numbers; None without penalties."""
    spec = model.spec
    slices = spec.penalized_slices()
    if not slices:
        return None
    names, numbers, sums = [], [], False
    for start, stop, l1, l2, k in slices:
        covered = spec.parameter_names[start:stop]
        symbols = [model.parameter_symbol(name) for name in covered]
        values = [point.parameters[name] for name in covered]
        listed = len(covered) <= PENALTY_LIST_LIMIT
        sums = sums or not listed
        for c, kind, expr, value in ((l2, "square", sp.Add(*(s ** 2 for s in symbols)), math.fsum(v * v for v in values)),
                                     (l1, "abs", sp.Add(*(sp.Abs(s) for s in symbols)), math.fsum(map(abs, values)))):
            if c:
                names.append(Product((Number(c), Formula(expr) if listed else summed(kind, k + 1))))
                numbers.append(Product((Number(c), Number(value)), "times"))
    return Line(Equation((PENALTY, total(names), total(numbers), Number(penalty)), aligned=True),
                before="The penalties, l2 · Σ p² + l1 · Σ |p| over the parameters each layer's "
                       "penalty covers" + (" (Σ_k: those of layer k)" if sums else "") + ":")


def _log_sum_exp(nets: list[float]) -> float:
    largest = max(nets)
    return largest + math.log(sum(math.exp(n - largest) for n in nets))


def _backward_section(gradients: Gradients, chains: Mapping[str, Any], numbers: Mapping[sp.Symbol, float],
                      layer_rules: bool) -> Section:
    model = gradients.model
    groups = []
    if layer_rules:
        groups.append(Group("The rule of each layer", _layer_backward_rules(gradients),
                            "\u2299 is the elementwise product; the superscript T transposes."))
    seen: set[str] = set()
    by_layer: dict[int, list[Line]] = {}
    for name, chain in chains.items():
        layer = model.parameters_by_name[name].layer
        by_layer.setdefault(layer, []).extend(_chain_lines(chain, numbers, seen))
    for k in sorted(by_layer, reverse=True):
        title = ("Output layer" if k == len(model.layers) - 1 else f"Hidden layer {k + 1}") + " parameters"
        groups.append(Group(title, tuple(by_layer[k])))
    text = ("For every parameter p, the chain rule from the error back to p: through the unit p feeds, "
            "and for a hidden unit through every unit after it."
            + (" A parameter that a penalty covers adds the penalty's derivative, dpenalty/dp = 2 · l2 · p "
               "+ l1 · sign(p)." if model.spec.penalized_slices() else "")
            if not layer_rules else
            f"{model.spec.n_parameters} parameters are too many to list; every parameter of a layer follows the "
            "same rule. Name parameters with --param to see their chains with numbers."
            + (" A penalty adds its derivative, 2 · l2 · p + l1 · sign(p), to every parameter it covers."
               if model.spec.penalized_slices() else ""))
    return Section("Backward pass", text, tuple(groups))


def _factor_value(factor: Factor, numbers: Mapping[sp.Symbol, float]) -> Number:
    return Number(value_of(factor.expr, numbers))


def _chain_lines(chain, numbers: Mapping[sp.Symbol, float], seen: set[str]) -> list[Line]:
    """dE/dp as labels, formulas, numbers and value; first each upstream sum it needs and has not had."""
    lines = []
    for upstream in chain.upstream:
        if upstream.factor.label in seen:
            continue
        seen.add(upstream.factor.label)
        terms = upstream.terms
        lines.append(Line(Equation((
            Partial(upstream.factor),
            total(Product((Partial(a), Partial(b))) for a, b in terms),
            total(Product((Formula(a.expr), Formula(b.expr))) for a, b in terms),
            total(Product((_factor_value(a, numbers), _factor_value(b, numbers)), "times") for a, b in terms),
            _factor_value(upstream.factor, numbers)), aligned=True),
            before=f"{upstream.factor.label}: a sum over every path to the error"))
    whole = Factor("E", chain.parameter, chain.total)
    penalty = (chain.penalty,) if chain.penalty is not None else ()
    lines.append(Line(Equation((
        Partial(whole),
        total([product(Partial(f) for f in path.factors) for path in chain.paths] + [Partial(f) for f in penalty]),
        total([product(Formula(f.expr) for f in path.factors) for path in chain.paths]
              + [Formula(f.expr) for f in penalty]),
        total([product((_factor_value(f, numbers) for f in path.factors), "times") for path in chain.paths]
              + [_factor_value(f, numbers) for f in penalty]),
        Number(value_of(chain.total, numbers))), aligned=True)))
    return lines


def _layer_backward_rules(gradients: Gradients) -> tuple[Line, ...]:
    model = gradients.model
    lines = []
    for rule, layer in reversed(list(zip(gradients.layer_rules(), model.layers))):
        k = layer.index + 1
        local = {Z: sp.Symbol(f"net_{k}"), A: sp.Symbol(f"out_{k}"), T: sp.Symbol("t")}
        delta = _vector("delta", k)
        if rule.delta is not None:
            lines.append(Line(Equation((delta, Partial(Factor("E", f"net_{k}", rule.delta)),
                                        Formula(rule.delta.xreplace(local)))), after="elementwise"))
        elif rule.softmax_h is not None:
            h = Name("h", "h", "<mi>h</mi>")
            lines.append(Line(Equation((h, Formula(rule.softmax_h.xreplace(local)))), after="elementwise"))
            sum_h = Name("sum(h)", r"\sum_i h_i", "<mrow><mo>\u2211</mo><mi>h</mi></mrow>")
            lines.append(Line(Equation((delta, Difference(h, Product((_vector("out", k), sum_h)))))))
        else:
            following = marked(_vector("W", k + 1), "T")
            lines.append(Line(Equation((delta, Product((
                Product((following, _vector("delta", k + 1)), "juxt"),
                Formula(rule.derivative.xreplace(local))), "odot")))))
        lines.append(Line(Equation((Partial(Factor("E", f"W{k}", sp.S.Zero)), total(
            (Product((delta, marked(_vector("out", k - 1), "T")), "juxt"),) + _layer_penalty(layer.spec, f"W{k}"))))))
        bias_penalty = layer.spec.regularize_bias
        if layer.spec.bias_mode == "per_unit":
            lines.append(Line(Equation((Partial(Factor("E", f"b{k}", sp.S.Zero)), total(
                (delta,) + _layer_penalty(layer.spec, f"b{k}", bias_penalty))))))
        elif layer.spec.bias_mode == "shared":
            shared = layer.spec.biases[0]
            lines.append(Line(Equation((Partial(Factor("E", shared, sp.S.Zero)), total((Name(
                f"sum(delta_{k})", rf"\sum_j \delta_{{{k},j}}",
                f"<mrow><mo>\u2211</mo><msub><mi>\u03b4</mi><mn>{k}</mn></msub></mrow>"),)
                + _layer_penalty(layer.spec, shared, bias_penalty))))))
    return tuple(lines)


def _layer_penalty(layer, name: str, covered: bool = True) -> tuple[Node, ...]:
    """The derivative of a layer's penalty in a parameter (or a layer's matrix) called ``name``, or nothing."""
    if not covered or not (layer.l1 or layer.l2):
        return ()
    symbol = sp.Symbol(name, real=True)
    return (Formula(sp.diff(sp.Float(layer.l2) * symbol ** 2 + sp.Float(layer.l1) * sp.Abs(symbol), symbol)),)


def _update_section(spec: Spec, point: Point, gradient: Mapping[str, float], updated: Mapping[str, float],
                    first_step: Mapping[str, Mapping[str, float]], shown: Iterable[str], after: float,
                    descent: Descent | None, steps: int) -> Section:
    lines = []
    for name in shown:
        symbol = quantity(sp.Symbol(name))
        if name in spec.frozen:
            lines.append(Line(Equation((marked(symbol, "+"), symbol, Number(point.parameters[name]))),
                              after="frozen: unchanged"))
            continue
        quantities = {key: values[name] for key, values in first_step.items()}
        lines += _step_lines(spec.optimizer, name, point.parameters[name], gradient[name], quantities, updated[name])
    groups = [Group("Every parameter at once", tuple(lines))] if lines else []
    results = [Line(Equation((ERROR, Number(after))), before="The error after this step:")]
    if descent is not None:
        outputs = ", ".join(f"{u} = {format_number(v, 6)} (target {t!r})"
                            for u, v, t in zip(spec.layers[-1].units, descent.outputs, point.targets))
        each = ("each one like this" if not spec.optimizer.stateful else
                "the optimizer's state carried from each step to the next")
        results.append(Line(Equation((ERROR, Number(descent.errors[-1]))),
                            before=f"The error after {steps} steps, {each}:",
                            after=f"outputs: {outputs}" if spec.n_outputs <= OUTPUT_LIST_LIMIT else ""))
    groups.append(Group("The error", tuple(results)))
    return Section("Update", _update_text(spec.optimizer), tuple(groups))


_SIMULTANEOUS = "Updates are simultaneous: every derivative above was taken at the parameters before the step."


def _update_text(o) -> str:
    """The optimizer's rule in words (PyTorch's documented one) and its constants."""
    if _plain_sgd(o):
        return f"Plain SGD, p\u207a = p \u2212 \u03b7 \u00b7 dE/dp with \u03b7 = {o.learning_rate!r}. {_SIMULTANEOUS}"
    g = "g = dE/dp" + (" + \u03bb\u00b7p" if o.weight_decay and o.name != "adamw" else "")
    constants = [f"\u03b7 = {o.learning_rate!r}"]
    if o.name == "sgd":
        if o.momentum:
            rule = (f"{g}; the momentum buffer b = \u03bc\u00b7b + (1 \u2212 \u03c4)\u00b7g, except on the first step, "
                    "where b = g; p\u207a = p \u2212 \u03b7\u00b7" + ("(g + \u03bc\u00b7b) (Nesterov)" if o.nesterov else "b"))
            constants += [f"\u03bc = {o.momentum!r}", f"\u03c4 = {o.dampening!r}"]
            fresh = "no buffer yet, so b = g"
        else:
            rule, fresh = f"{g}; p\u207a = p \u2212 \u03b7\u00b7g", ""
        title = "SGD (torch.optim.SGD)"
    elif o.name == "rmsprop":
        rule = (f"{g}; v = \u03b1\u00b7v + (1 \u2212 \u03b1)\u00b7g\u00b2; " +
                ("b = \u03bc\u00b7b + g/(\u221av + \u03b5); p\u207a = p \u2212 \u03b7\u00b7b" if o.momentum else
                 "p\u207a = p \u2212 \u03b7\u00b7g/(\u221av + \u03b5)"))
        constants += [f"\u03b1 = {o.alpha!r}", f"\u03b5 = {o.eps!r}"] + ([f"\u03bc = {o.momentum!r}"] if o.momentum else [])
        fresh = "v = 0" + (" and b = 0" if o.momentum else "")
        title = "RMSprop (torch.optim.RMSprop)"
    else:
        decay = "first p \u2190 p\u00b7(1 \u2212 \u03b7\u00b7\u03bb); then " if o.name == "adamw" else ""
        rule = (f"{decay}{g}; m = \u03b2\u2081\u00b7m + (1 \u2212 \u03b2\u2081)\u00b7g; v = \u03b2\u2082\u00b7v + "
                "(1 \u2212 \u03b2\u2082)\u00b7g\u00b2; m\u0302 = m/(1 \u2212 \u03b2\u2081\u1d57), v\u0302 = v/(1 \u2212 \u03b2\u2082\u1d57) "
                "at step t; p\u207a = p \u2212 \u03b7\u00b7m\u0302/(\u221av\u0302 + \u03b5)")
        constants += [f"\u03b2\u2081 = {o.beta1!r}", f"\u03b2\u2082 = {o.beta2!r}", f"\u03b5 = {o.eps!r}"]
        fresh = "m = v = 0, t = 1"
        title = "Adam (torch.optim.Adam)" if o.name == "adam" else "AdamW (torch.optim.AdamW)"
    if o.weight_decay:
        constants.append(f"\u03bb = {o.weight_decay!r}")
    start = f" Below, its first step, from a fresh state ({fresh})." if fresh else ""
    return f"{title}, as PyTorch documents it: {rule}; with {', '.join(constants)}.{start} {_SIMULTANEOUS}"


def _step_lines(o, name: str, value: float, derivative: float, q: Mapping[str, float], new: float) -> list[Line]:
    """One parameter's first step: the optimizer's quantities, then p\u207a, as formulas and with numbers."""
    p = quantity(sp.Symbol(name))
    lines = []
    g, g_number = Partial(Factor("E", name, sp.S.Zero)), Number(derivative)
    if o.weight_decay and o.name != "adamw":  # coupled weight decay: part of the gradient
        coupled = per_parameter("g", name)
        lines.append(Line(Equation((coupled, Sum((g, Product((LAMBDA, p)))),
                                    Sum((g_number, Product((Number(o.weight_decay), Number(value)), "times"))),
                                    Number(q["g"])))))
        g, g_number = coupled, Number(q["g"])

    def define(name_node: Node, formula: Node, numbers: Node, result: float) -> tuple[Node, Number]:
        lines.append(Line(Equation((name_node, formula, numbers, Number(result)))))
        return name_node, Number(result)

    def one_minus(constant: Node, number: float) -> tuple[Node, Number]:
        return Difference(Number(1), constant), Number(1 - number)

    decayed = decayed_number = None
    if o.name == "sgd":
        step, step_number = g, g_number
        if o.momentum:  # the buffer's first value is the gradient itself
            b, b_number = per_parameter("b", name), Number(q["buffer"])
            lines.append(Line(Equation((b, g, b_number))))
            step, step_number = b, b_number
            if o.nesterov:
                step = Sum((g, Product((MU, b))))
                step_number = Sum((g_number, Product((Number(o.momentum), b_number), "times")))
    elif o.name == "rmsprop":
        alpha, alpha_number = one_minus(ALPHA, o.alpha)
        v, v_number = define(per_parameter("v", name), Product((alpha, Square(g))),
                             Product((alpha_number, Square(g_number)), "times"), q["square_avg"])
        step = Fraction(g, Sum((Root(v), EPSILON)))
        step_number = Fraction(g_number, Sum((Root(v_number), Number(o.eps))))
        if o.momentum:
            step, step_number = define(per_parameter("b", name), step, step_number, q["buffer"])
    else:
        beta1, beta1_number = one_minus(BETA1, o.beta1)
        beta2, beta2_number = one_minus(BETA2, o.beta2)
        m, m_number = define(per_parameter("m", name), Product((beta1, g)), Product((beta1_number, g_number), "times"),
                             q["exp_avg"])
        v, v_number = define(per_parameter("v", name), Product((beta2, Square(g))),
                             Product((beta2_number, Square(g_number)), "times"), q["exp_avg_sq"])
        m_hat, m_hat_number = define(per_parameter("m", name, hat=True), Fraction(m, beta1),
                                     Fraction(m_number, beta1_number), q["exp_avg_hat"])
        v_hat, v_hat_number = define(per_parameter("v", name, hat=True), Fraction(v, beta2),
                                     Fraction(v_number, beta2_number), q["exp_avg_sq_hat"])
        step = Fraction(m_hat, Sum((Root(v_hat), EPSILON)))
        step_number = Fraction(m_hat_number, Sum((Root(v_hat_number), Number(o.eps))))
        if o.name == "adamw":  # decoupled weight decay: the parameter shrinks first
            decayed = Product((p, Difference(Number(1), Product((ETA, LAMBDA)))))
            decayed_number = Product((Number(value), Difference(Number(1), Product(
                (Number(o.learning_rate), Number(o.weight_decay)), "times"))), "times")
    lines.append(Line(Equation((
        marked(p, "+"),
        Difference(decayed or p, Product((ETA, step))),
        Difference(decayed_number or Number(value), Product((Number(o.learning_rate), step_number), "times")),
        Number(new)))))
    return lines


# -- rendering ---------------------------------------------------------------------------------

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

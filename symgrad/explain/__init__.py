"""The explain stage: a step-by-step worked example of backpropagation for any spec.

Like the hand-written walk-throughs symgrad grew out of, at the spec's initial values and its
example (or those of a values file)::

    network diagram -> forward pass, neuron by neuron -> each output's error and the total ->
    dE/dp for every parameter by the chain rule, as a formula and with numbers -> the SGD update
    -> the error after the step and after K steps

:func:`worked_example` computes it all once (values with SymPy's arithmetic through
:func:`symgrad.formulas.evaluate`; the K steps with the float64 loop of :mod:`.descent`);
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
from ..gradients import A, T, Z, Gradients, differentiate
from ..model import Model, build_model
from ..rules import stable_log_rewrites
from ..spec import Spec, parse_spec
from .descent import Descent, Network
from .diagram import layout
from .notation import (ERROR, ETA, NOTATIONS, Difference, Equation, Formula, Name, Node, Number, Partial,
                       Product, marked, product, quantity, subscripted, total)

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
    values: Mapping[sp.Symbol, float]    # every parameter, input, target, net, out, delta and E
    gradient: Mapping[str, float]        # dE/dp of every parameter
    updated: Mapping[str, float]         # the parameters after one step (all of them)
    error: float
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
        """The value of a symbol by its code name (``net_h1``, ``out_o1``, ``delta_o1``, ``E``)."""
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
    gradients = differentiate(build_model(parse_spec(spec_source)))
    return render(worked_example(gradients, values, steps, params), format, digits)


# -- computing the walk-through ----------------------------------------------------------------

def worked_example(gradients: Gradients, values: Mapping[str, Any] | None = None, steps: int = 10_000,
                   params: Sequence[str] | None = None) -> WorkedExample:
    model = gradients.model
    spec = model.spec
    _check_explainable(spec)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise SpecError("--steps", f"{steps!r} is out of range", f"use 0 to {MAX_STEPS}")
    point = point_from_spec(gradients, values)
    layer_rules = spec.n_parameters > LAYER_RULE_LIMIT
    for name in params or ():
        chain_rule(gradients, name)  # an unknown name is a SpecError with suggestions
    shown = tuple(dict.fromkeys(params)) if params else (() if layer_rules else spec.parameter_names)

    network = Network(gradients)
    descent = network.descend(point.parameters, point.inputs, point.targets, max(steps, 1))
    if layer_rules:  # SymPy arithmetic on every unit of a big network is slow: the float64 loop's values
        numbers, gradient = _values_from_network(network, model, point)
    else:
        numbers = evaluate(gradients, point)
        gradient = {p.name: value_of(gradients.parameter(p.name).expr, numbers) for p in spec.parameters}
    chains = {name: chain_rule(gradients, name) for name in shown}
    updated = {p.name: _updated(spec, p.name, point.parameters[p.name], gradient[p.name]) for p in spec.parameters}
    after = descent.errors[1] if layer_rules else \
        evaluate(gradients, Point(updated, point.inputs, point.targets))[ERROR_SYMBOL]

    sections = (
        _network_section(spec, point),
        _forward_section(model, numbers, layer_rules),
        _error_section(model, numbers),
        _backward_section(gradients, chains, numbers, layer_rules),
        _update_section(spec, point, gradient, updated, shown, after, descent if steps > 1 else None, steps),
    )
    return WorkedExample(spec, point, numbers, gradient, updated, numbers[ERROR_SYMBOL], after, steps,
                         descent if steps > 0 else None, layer_rules, shown, sections)


def _check_explainable(spec: Spec) -> None:
    """The walk-through shows plain SGD on the per-example loss; say so rather than show wrong numbers."""
    optimizer = spec.optimizer
    options = [option for option in ("momentum", "weight_decay") if getattr(optimizer, option, 0)]
    if optimizer.name != "sgd" or options:
        shown = optimizer.name if optimizer.name != "sgd" else "sgd with " + " and ".join(options)
        raise SpecError("$.optimizer", f"explain shows plain SGD steps, not {shown}",
                        'use {"name": "sgd", "learning_rate": ...} to see a worked example')
    for k, layer in enumerate(spec.layers):
        for penalty in ("l1", "l2"):
            if getattr(layer, penalty, 0):
                raise SpecError(f"$.layers[{k}].{penalty}", "explain does not show penalty terms yet",
                                f"remove {penalty} to see a worked example of the plain loss")


def _updated(spec: Spec, name: str, value: float, derivative: float) -> float:
    return value if name in spec.frozen else value - spec.optimizer.learning_rate * derivative


def _values_from_network(network: Network, model: Model,
                         point: Point) -> tuple[dict[sp.Symbol, float], dict[str, float]]:
    """The same symbol -> value map as :func:`evaluate`, and dE/dp by name, from the float64 loop."""
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
    numbers[ERROR_SYMBOL] = error
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
    text = (f"A {sizes} network with {spec.n_parameters} parameters, loss {loss}, plain SGD with learning rate "
            f"{spec.optimizer.learning_rate!r}.{frozen} One example: inputs {_listing(spec.inputs, point.inputs)}; "
            f"targets {_listing(spec.layers[-1].units, point.targets)}.")
    small = spec.n_parameters <= LAYER_RULE_LIMIT
    layers = tuple(Group(_describe_layer(spec, k), tuple(
        Line(Equation((quantity(sp.Symbol(p.name)), Number(point.parameters[p.name]))),
             after="frozen" if p.name in spec.frozen else "")
        for p in spec.parameters if p.layer == k and small)) for k in range(len(spec.layers)))
    return Section("Network", text, layers)


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


def _error_section(model: Model, numbers: Mapping[sp.Symbol, float]) -> Section:
    layer = model.output_layer
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
        lines.append(Line(Equation((ERROR, total(n for n, _ in names), total(Number(v) for _, v in names),
                                    Number(numbers[ERROR_SYMBOL])))))
    else:
        lines.append(Line(Equation((ERROR, Number(numbers[ERROR_SYMBOL])))))
    text = f"The loss ({model.spec.loss.name}) of this example: each output's share, then their sum."
    return Section("Error", text, (Group("", tuple(lines)),))


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
            if not layer_rules else
            f"{model.spec.n_parameters} parameters are too many to list; every parameter of a layer follows the "
            "same rule. Name parameters with --param to see their chains with numbers.")
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
    lines.append(Line(Equation((
        Partial(whole),
        total(product(Partial(f) for f in path.factors) for path in chain.paths),
        total(product(Formula(f.expr) for f in path.factors) for path in chain.paths),
        total(product((_factor_value(f, numbers) for f in path.factors), "times") for path in chain.paths),
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
        lines.append(Line(Equation((Partial(Factor("E", f"W{k}", sp.S.Zero)),
                                    Product((delta, marked(_vector("out", k - 1), "T")), "juxt")))))
        if layer.spec.bias_mode == "per_unit":
            lines.append(Line(Equation((Partial(Factor("E", f"b{k}", sp.S.Zero)), delta))))
        elif layer.spec.bias_mode == "shared":
            shared = layer.spec.biases[0]
            lines.append(Line(Equation((Partial(Factor("E", shared, sp.S.Zero)), Name(
                f"sum(delta_{k})", rf"\sum_j \delta_{{{k},j}}",
                f"<mrow><mo>\u2211</mo><msub><mi>\u03b4</mi><mn>{k}</mn></msub></mrow>")))))
    return tuple(lines)


def _update_section(spec: Spec, point: Point, gradient: Mapping[str, float], updated: Mapping[str, float],
                    shown: Iterable[str], after: float, descent: Descent | None, steps: int) -> Section:
    rate = spec.optimizer.learning_rate
    lines = []
    for name in shown:
        symbol = quantity(sp.Symbol(name))
        new = marked(symbol, "+")
        if name in spec.frozen:
            lines.append(Line(Equation((new, symbol, Number(point.parameters[name]))), after="frozen: unchanged"))
            continue
        lines.append(Line(Equation((
            new, Difference(symbol, Product((ETA, Partial(Factor("E", name, sp.S.Zero))))),
            Difference(Number(point.parameters[name]), Product((Number(rate), Number(gradient[name])), "times")),
            Number(updated[name])))))
    groups = [Group("Every parameter at once", tuple(lines))] if lines else []
    results = [Line(Equation((ERROR, Number(after))), before="The error after this step:")]
    if descent is not None:
        outputs = ", ".join(f"{u} = {format_number(v, 6)} (target {t!r})"
                            for u, v, t in zip(spec.layers[-1].units, descent.outputs, point.targets))
        results.append(Line(Equation((ERROR, Number(descent.errors[-1]))),
                            before=f"The error after {steps} steps, each one like this:",
                            after=f"outputs: {outputs}" if spec.n_outputs <= OUTPUT_LIST_LIMIT else ""))
    groups.append(Group("The error", tuple(results)))
    text = (f"Plain SGD, p\u207a = p \u2212 \u03b7 \u00b7 dE/dp with \u03b7 = {rate!r}. Updates are simultaneous: "
            "every derivative above was taken at the parameters before the step.")
    return Section("Update", text, tuple(groups))


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

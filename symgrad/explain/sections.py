"""The worked example's sections before the update: network, forward pass, error, backward pass.

Input: the model (or its gradients) and the values of every symbol at the example.  Output:
a :class:`~.document.Section` each, its equations as :mod:`.equations` trees, with formulas
and numbers side by side; big networks get each layer's rule in matrix form instead.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import sympy as sp

from ..formulas import Factor, Point, value_of
from ..gradients import A, Gradients, T, Z
from ..model import Model
from ..naming import code_name
from ..optimizers import describe
from ..rules import stable_log_rewrites
from ..spec import Spec
from .derivations import derivations_group
from .document import ERROR_SYMBOL, LAYER_RULE_LIMIT, OUTPUT_LIST_LIMIT, Batch, Group, Line, Section, Table
from .equations import (
    ERROR,
    PENALTY,
    Difference,
    Equation,
    Formula,
    Fraction,
    Name,
    Node,
    Number,
    Partial,
    Product,
    Sum,
    marked,
    product,
    quantity,
    share,
    subscripted,
    summed,
    total,
)
from .printers import text_number


def _describe_layer(spec: Spec, k: int) -> str:
    layer = spec.layers[k]
    role = "Output layer" if k == len(spec.layers) - 1 else f"Hidden layer {k + 1}"
    bias = {"shared": f"one shared bias {layer.biases[0]}" if layer.biases else "",
            "per_unit": "a bias per unit", "none": "no bias"}[layer.bias_mode]
    return f"{role}: {layer.n_out} {layer.activation.describe()} unit(s), {bias}"


def network_section(spec: Spec, point: Point, batch: Batch) -> Section:
    sizes = "-".join(str(n) for n in [spec.n_inputs] + [layer.n_out for layer in spec.layers])
    loss = spec.loss.name
    frozen = f" Frozen (never updated): {', '.join(spec.frozen)}." if spec.frozen else ""
    penalties = "".join(f" Layer {k + 1}'s penalty: {_describe_penalty(l1, l2)} over its "
                        f"{'weights and biases' if spec.layers[k].regularize_bias else 'weights'}."
                        for _, _, l1, l2, k in spec.penalized_slices())
    text = (f"A {sizes} network with {spec.n_parameters} parameters, loss {loss}, {describe(spec.optimizer)}."
            f"{penalties}{frozen} {_examples_shown(batch)}: inputs {_listing(spec.inputs, point.inputs)}; "
            f"targets {_targets(spec, point)}.")
    if batch.several:
        text += (f" The error, every dE/dp and the update below are the {batch.reduction} over all "
                 f"{len(batch.points)} examples (the loss's reduction), the penalties added once.")
    text += (f" Notation: {_names(spec.inputs)} {'is the input' if spec.n_inputs == 1 else 'are the inputs'}; "
             f"{_names(['t_' + u for u in spec.layers[-1].units])} the target{'s' if spec.n_outputs > 1 else ''} "
             "(what each output unit should give); below, each weight w connects a unit (or input) to a unit of the "
             "next layer and each bias b is added to a unit's net input; η is the learning rate.")
    small = spec.n_parameters <= LAYER_RULE_LIMIT
    layers = tuple(Group(_describe_layer(spec, k), tuple(
        Line(Equation((quantity(sp.Symbol(p.name)), Number(point.parameters[p.name]))),
             after="frozen" if p.name in spec.frozen else "")
        for p in spec.parameters if p.layer == k and small)) for k in range(len(spec.layers)))
    return Section("Network", text, layers)


def _targets(spec: Spec, point: Point) -> str:
    """``t_o1 = 0.01, t_o2 = 0.99``: an example's targets by the names the equations use."""
    return _listing([code_name("target", unit) for unit in spec.layers[-1].units], point.targets)


def _names(names: Sequence[str], limit: int = 6) -> str:
    """``i1, i2`` or ``x0, x1, ..., x29`` for a long list."""
    names = list(names)
    return ", ".join(names if len(names) <= limit else names[:2] + ["...", names[-1]])


def _examples_shown(batch: Batch) -> str:
    if not batch.several:
        return "One example"
    return (f"The spec's example holds {len(batch.points)} examples; the forward and backward passes below show "
            "example 1")


def _reduction(values: Sequence[float], batch: Batch) -> Node:
    """(v1 + v2 + ...)/n or v1 + v2 + ..., listed up to a handful of examples."""
    if len(values) > EXAMPLE_LIST_LIMIT:
        return Name(f"{batch.reduction} over the {len(values)} examples", rf"\text{{{batch.reduction} over the "
                    rf"{len(values)} examples}}", f"<mtext>{batch.reduction} over the {len(values)} examples</mtext>")
    terms = Sum(tuple(Number(v) for v in values))
    return Fraction(terms, Number(len(values))) if batch.reduction == "mean" else terms


def batch_error_line(batch: Batch, penalty: float, error: float) -> Line:
    """E over every example: the reduction of the per-example errors, plus the penalty once."""
    reduced = _reduction(batch.errors, batch)
    shown = Sum((reduced, Number(penalty))) if penalty else reduced
    return Line(Equation((ERROR, shown, Number(error))),
                before=f"Over all {len(batch.points)} examples, the {batch.reduction} of each example's error "
                       "(the loss's reduction)" + (", plus the penalty once:" if penalty else ":"))


def batch_gradient_group(batch: Batch, shown: Sequence[str], penalties: Mapping[str, float],
                         gradient: Mapping[str, float]) -> Group:
    """dE/dp over every example: the reduction of the per-example values, plus the penalty's derivative."""
    lines = []
    for name in shown:
        reduced = _reduction([g[name] for g in batch.gradients], batch)
        sides = Sum((reduced, Number(penalties[name]))) if penalties.get(name) else reduced
        lines.append(Line(Equation((Partial(Factor("E", name, sp.S.Zero)), sides, Number(gradient[name])))))
    text = ("The chains above are example 1's; each example has its own, and the step uses their "
            f"{batch.reduction}" + (", plus the penalty's derivative." if any(penalties.get(n) for n in shown) else "."))
    table = None
    if len(batch.points) > EXAMPLE_LIST_LIMIT:  # the per-example values the reductions do not list
        if len(shown) <= GRADIENT_COLUMNS:
            table = Table(("example",) + tuple(f"∂E/∂{n}" for n in shown),
                          tuple((str(k),) + tuple(g[n] for n in shown) for k, g in enumerate(batch.gradients, start=1)))
        elif len(batch.points) <= GRADIENT_COLUMNS:
            table = Table(("parameter",) + tuple(f"example {k}" for k in range(1, len(batch.points) + 1)),
                          tuple((f"∂E/∂{n}",) + tuple(g[n] for g in batch.gradients) for n in shown))
        else:
            text += (" python -m symgrad formulas SPEC --at initial lists every example's value of every dE/dp "
                     "(too many here for a table).")
        text += " Each example's values (penalties not included):" if table else ""
    return Group(f"Over all {len(batch.points)} examples ({batch.reduction})", tuple(lines), text, table)


#: A table of the examples' dE/dp has at most this many columns (parameters, or else examples).
GRADIENT_COLUMNS = 12


def _describe_penalty(l1: float, l2: float) -> str:
    return " + ".join(([f"{l2!r}·Σp²"] if l2 else []) + ([f"{l1!r}·Σ|p|"] if l1 else []))


def _listing(names: Sequence[str], values: Sequence[float], limit: int = 10) -> str:
    """``x0 = 0.1, x1 = 0.2, ...``, the first and last few of a long list."""
    pairs = [f"{name} = {text_number(repr(value))}" for name, value in zip(names, values)]
    if len(pairs) <= limit:
        return ", ".join(pairs)
    return ", ".join(pairs[:5] + ["..."] + pairs[-2:]) + f" ({len(pairs)} in all)"


def forward_section(model: Model, numbers: Mapping[sp.Symbol, float], layer_rules: bool, batch: Batch,
                    examples: Sequence[Mapping[sp.Symbol, float]]) -> Section:
    groups = []
    for layer in model.layers:
        title = _describe_layer(model.spec, layer.index)
        if layer_rules:
            groups.append(Group(title, _layer_forward_rule(layer, numbers)))
            continue
        lines = []
        bias = ", plus its bias" if layer.spec.bias_mode != "none" else ""
        for unit in layer.units:
            before = (f"net_{unit.name}, the net input of {unit.name} (its inputs times their weights{bias}), and "
                      f"out_{unit.name}, its output ({layer.spec.activation.describe()} of net_{unit.name}):"
                      if unit.j == 0 else f"{unit.name}'s net input net_{unit.name} and output out_{unit.name}:")
            lines.append(Line(_net_equation(layer, unit.j, numbers), before=before))
            lines.append(Line(_out_equation(layer, unit, numbers)))
        groups.append(Group(title, tuple(lines)))
    text = ("Each unit adds up its weighted inputs and its bias (net), then applies its activation (out)."
            if not layer_rules else
            "Layer by layer, as vectors: net = W x + b, then the activation elementwise.")
    if batch.several:
        text += " Example 1 first; then " + ("each other example the same way." if not layer_rules and len(
            batch.points) <= EXAMPLE_LIST_LIMIT else "every example in a table.")
        groups += _other_examples(model, batch, examples, layer_rules)
    return Section("Forward pass", text, tuple(groups))


def _other_examples(model: Model, batch: Batch, examples: Sequence[Mapping[sp.Symbol, float]],
                    layer_rules: bool) -> list[Group]:
    """Examples 2, 3, ...: their forward passes (a handful) or one table of every example."""
    spec = model.spec
    if not layer_rules and len(batch.points) <= EXAMPLE_LIST_LIMIT:
        return [Group(f"Example {k}: inputs {_listing(spec.inputs, point.inputs)}; targets "
                      f"{_targets(spec, point)}",
                      tuple(Line(equation) for layer in model.layers for unit in layer.units
                            for equation in (_net_equation(layer, unit.j, values), _out_equation(layer, unit, values))))
                for k, (point, values) in enumerate(zip(batch.points[1:], examples[1:]), start=2)]
    outputs = model.output_layer.units
    inputs = list(spec.inputs) if spec.n_inputs <= TABLE_COLUMNS else []
    listed = list(outputs) if len(outputs) <= TABLE_COLUMNS else []
    header = ("example",) + tuple(inputs) + tuple(code_name("out", u.name) for u in listed) + tuple(
        code_name("target", u.name) for u in listed) + ("E",)
    rows = tuple((str(k),) + tuple(point.inputs[:len(inputs)]) + tuple(values[u.out] for u in listed)
                 + tuple(point.targets[:len(listed)]) + (error,)
                 for k, (point, values, error) in enumerate(zip(batch.points, examples, batch.errors), start=1))
    shown = "" if inputs and listed else " (the inputs and outputs are too many for columns: each example's E)"
    return [Group(f"All {len(batch.points)} examples", (), f"Each example's inputs, outputs, targets and error E{shown}.",
                  Table(header, rows))]


#: A table of the examples lists inputs and outputs as columns up to this many each.
TABLE_COLUMNS = 8


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
            "net": quantity(sp.Symbol(code_name("net", k))), "out": quantity(sp.Symbol(code_name("out", k))),
            "delta": quantity(sp.Symbol(code_name("delta", k)))}[base]


def _layer_forward_rule(layer, numbers: Mapping[sp.Symbol, float]) -> tuple[Line, ...]:
    k = layer.index + 1
    net = sp.Symbol(code_name("net", k))
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


def error_section(model: Model, numbers: Mapping[sp.Symbol, float], outputs_error: float, point: Point,
                  layer_rules: bool, batch: Batch, batch_error: float) -> Section:
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
            lines.append(Line(Equation((error, Formula(term), Formula(term, numbers), Number(names[-1][1]))),
                              before=f"E_{unit.name}, output {unit.name}'s share of the error (its output "
                                     f"out_{unit.name} against its target t_{unit.name}):"))
        if penalty_line is not None:
            lines.append(penalty_line)
            names.append((PENALTY, penalty))
        lines.append(Line(Equation((ERROR, total(n for n, _ in names), total(Number(v) for _, v in names),
                                    Number(numbers[ERROR_SYMBOL]))),
                          before="E, the error of the example: the number that training makes small."))
    elif penalty_line is not None:
        lines.append(penalty_line)
        lines.append(Line(Equation((ERROR, total((Number(outputs_error), Number(penalty))),
                                    Number(numbers[ERROR_SYMBOL]))), before="The outputs' loss, plus the penalty:"))
    else:
        lines.append(Line(Equation((ERROR, Number(numbers[ERROR_SYMBOL])))))
    if batch.several:
        lines.append(batch_error_line(batch, penalty, batch_error))
    text = (f"The loss ({spec.loss.name}) of {'example 1' if batch.several else 'this example'}: each output's "
            "share, then their sum.")
    if penalty_line is not None:
        text += (" The layers' penalties are part of the loss: added once, after the batch's reduction "
                 "(for one example, simply added).")
    return Section("Error", text, (Group("", tuple(lines)),))


#: The per-example values of a reduction are listed up to this many examples.
EXAMPLE_LIST_LIMIT = 6
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


def backward_section(gradients: Gradients, chains: Mapping[str, Any], numbers: Mapping[sp.Symbol, float],
                     layer_rules: bool, batch: Batch, gradient: Mapping[str, float],
                     penalties: Mapping[str, float]) -> Section:
    model = gradients.model
    groups = []
    if layer_rules:
        groups.append(Group("The rule of each layer", _layer_backward_rules(gradients),
                            "\u2299 is the elementwise product; the superscript T transposes."))
    else:
        groups.append(derivations_group(model))
    seen: set[str] = set()
    by_layer: dict[int, list[Line]] = {}
    layer_of = {name: model.parameters_by_name[name].layer for name in chains}
    for name in sorted(chains, key=lambda name: -layer_of[name]):  # backwards: the output layer's deltas first
        by_layer.setdefault(layer_of[name], []).extend(_chain_lines(chains[name], gradients, numbers, seen))
    for k in sorted(by_layer, reverse=True):
        title = ("Output layer" if k == len(model.layers) - 1 else f"Hidden layer {k + 1}") + " parameters"
        groups.append(Group(title, tuple(by_layer[k])))
    text = ("For every parameter p, the chain rule from the error back to p: through the unit p feeds, "
            "and for a hidden unit through every unit after it. Each unit's error signal δ = ∂E/∂net "
            "is computed once, output layer first, and every parameter feeding the unit reuses it: "
            "∂E/∂p = δ · ∂net/∂p (the delta rule)."
            + (" A parameter that a penalty covers adds the penalty's derivative, dpenalty/dp = 2 · l2 · p "
               "+ l1 · sign(p)." if model.spec.penalized_slices() else "")
            if not layer_rules else
            f"{model.spec.n_parameters} parameters are too many to list; every parameter of a layer follows the "
            "same rule. Name parameters with --param to see their chains with numbers."
            + (" A penalty adds its derivative, 2 · l2 · p + l1 · sign(p), to every parameter it covers."
               if model.spec.penalized_slices() else ""))
    if batch.several and chains:
        groups.append(batch_gradient_group(batch, tuple(chains), penalties, gradient))
    return Section("Backward pass", text, tuple(groups))


def _factor_value(factor: Factor, numbers: Mapping[sp.Symbol, float]) -> Number:
    return Number(value_of(factor.expr, numbers))


def _chain_lines(chain, gradients: Gradients, numbers: Mapping[sp.Symbol, float], seen: set[str]) -> list[Line]:
    """dE/dp as labels, the delta rule, formulas, numbers and value; first the lines of each unit it feeds
    that have not been shown (its delta and, for a hidden unit, the per-path pieces of dE/dout)."""
    lines: list[Line] = []
    for path in chain.paths:
        lines += _unit_lines(gradients, path.unit, numbers, seen)
    whole = Factor("E", chain.parameter, chain.total)
    penalty = (chain.penalty,) if chain.penalty is not None else ()
    model = gradients.model
    delta_rule = total([product((quantity(model.units_by_name[path.unit].delta), Formula(path.factors[-1].expr)))
                        for path in chain.paths] + [Partial(f) for f in penalty])
    lines.append(Line(Equation((
        Partial(whole),
        total([product(Partial(f) for f in path.factors) for path in chain.paths] + [Partial(f) for f in penalty]),
        delta_rule,
        total([product(Formula(f.expr) for f in path.factors) for path in chain.paths]
              + [Formula(f.expr) for f in penalty]),
        total([product((_factor_value(f, numbers) for f in path.factors), "times") for path in chain.paths]
              + [_factor_value(f, numbers) for f in penalty]),
        Number(value_of(chain.total, numbers))), aligned=True)))
    return lines


def _delta_definition(name: str) -> str:
    return (f"δ_{name} = ∂E/∂net_{name}, the error signal of unit {name}: how fast E changes with "
            f"{name}'s net input (delta_{name} in the formulas that check reads)")


def _unit_lines(gradients: Gradients, name: str, numbers: Mapping[sp.Symbol, float], seen: set[str]) -> list[Line]:
    """Unit ``name``'s delta, once: for a hidden unit, first each following unit's share of dE/dout (the
    tutorials' dE_o1/dout_h1 = delta_o1 * w5) and their sum."""
    if name in seen:
        return []
    seen.add(name)
    model = gradients.model
    unit = model.units_by_name[name]
    derivative = gradients.unit(name)
    net, out = code_name("net", name), code_name("out", name)
    delta = quantity(unit.delta)
    if derivative.dout_dnet is None:  # softmax output: delta is a sum over every output
        terms = [(Factor("E", code_name("out", k.name), g), Factor(code_name("out", k.name), net, d)) for k, g, d in derivative.jacobian]
        return [Line(Equation((
            delta, Partial(Factor("E", net, derivative.delta)),
            total(Product((Partial(a), Partial(b))) for a, b in terms),
            total(Product((Formula(a.expr), Formula(b.expr))) for a, b in terms),
            total(Product((_factor_value(a, numbers), _factor_value(b, numbers)), "times") for a, b in terms),
            Number(numbers[unit.delta])), aligned=True),
            before=_delta_definition(name) + "; net_" + name + " moves every softmax output, so a sum over them:")]
    lines: list[Line] = []
    if derivative.paths:
        for k, _ in derivative.paths:  # the deltas this unit's share needs come first
            lines += _unit_lines(gradients, k.name, numbers, seen)
        shares = [share(k.name, out) for k, _ in derivative.paths]
        for (k, weight), shown in zip(derivative.paths, shares):
            into = (Factor("E", code_name("net", k.name), k.delta), Factor(code_name("net", k.name), out, weight))
            before = (f"{out} feeds {', '.join(u.name for u, _ in derivative.paths)}, so it changes E along each of "
                      "them. " if k is derivative.paths[0][0] else "") + f"Its share through {k.name} (E_{k.name}):"
            lines.append(Line(Equation((
                shown, Product(tuple(Partial(f) for f in into)), Product((quantity(k.delta), Formula(weight))),
                Product((Number(numbers[k.delta]), Number(value_of(weight, numbers))), "times"),
                Number(numbers[k.delta] * value_of(weight, numbers)))), before=before))
        pieces = [numbers[k.delta] * value_of(w, numbers) for k, w in derivative.paths]
        lines.append(Line(Equation((Partial(Factor("E", out, derivative.dE_dout)), total(shares),
                                    total(Number(p) for p in pieces), Number(value_of(derivative.dE_dout, numbers)))),
                          before="The shares add up:"))
    dE_dout, dout_dnet = Factor("E", out, derivative.dE_dout), Factor(out, net, derivative.dout_dnet)
    lines.append(Line(Equation((
        delta, Partial(Factor("E", net, derivative.delta)), Product((Partial(dE_dout), Partial(dout_dnet))),
        Product((Formula(dE_dout.expr), Formula(dout_dnet.expr))),
        Product((_factor_value(dE_dout, numbers), _factor_value(dout_dnet, numbers)), "times"),
        Number(numbers[unit.delta])), aligned=True), before=_delta_definition(name) + ":"))
    return lines


def _layer_backward_rules(gradients: Gradients) -> tuple[Line, ...]:
    model = gradients.model
    lines = []
    for rule, layer in reversed(list(zip(gradients.layer_rules(), model.layers))):
        k = layer.index + 1
        local = {Z: sp.Symbol(code_name("net", k)), A: sp.Symbol(code_name("out", k)), T: sp.Symbol("t")}
        delta = _vector("delta", k)
        if rule.delta is not None:
            lines.append(Line(Equation((delta, Partial(Factor("E", code_name("net", k), rule.delta)),
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


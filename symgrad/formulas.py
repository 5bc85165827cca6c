"""Inspecting derivatives: every dE/dp as its chain-rule factors, its closed form, and its value.

This is the third way people use symgrad (checking a hand-derived gradient, or learning how
backpropagation assembles one).  For Mazur's w5::

    dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5
           = (out_o1 - t_o1) * out_o1*(1 - out_o1) * out_h1

:func:`chain_rule` gives the factors as SymPy expressions, :func:`evaluate` the value of every
intermediate at given numbers, and the printers here write formulas as plain text or LaTeX
with the names the spec uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from . import rules
from .gradients import Gradients
from .errors import SpecError
from .model import display_name
from .schema import suggest

MULTIPLY = " * "


class TextPrinter(StrPrinter):
    """Plain text with the spec's names (``w5``, ``out_o1``) and the rule table's spellings."""

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return display_name(expr)

    def _print_Function(self, expr: sp.Function) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is None:
            return super()._print_Function(expr)
        return spelling.text.format(*(self._print(arg) for arg in expr.args))

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))


class TexPrinter(LatexPrinter):
    """LaTeX with subscripted unit names: out_{o1}, net_{h1}, \\delta_{o1}."""

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return latex_name(display_name(expr))

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is None or type(expr) in (sp.exp, sp.log, sp.tanh):
            return super()._print_Function(expr, exp)
        text = spelling.latex.format(*(self._print(arg) for arg in expr.args))
        return f"{text}^{{{exp}}}" if exp else text


def latex_name(name: str) -> str:
    for prefix, shown in (("net_", r"\mathrm{net}"), ("out_", r"\mathrm{out}"), ("delta_", r"\delta"),
                          ("t_", "t"), ("logp_", r"\log \mathrm{out}"), ("lse_", r"\mathrm{lse}")):
        if name.startswith(prefix):
            return f"{shown}_{{{_tex_escape(name[len(prefix):])}}}"
    return r"\mathrm{" + _tex_escape(name) + "}"


def _tex_escape(text: str) -> str:
    return text.replace("_", r"\_")


def to_text(expr: sp.Expr) -> str:
    return TextPrinter().doprint(expr)


def to_latex(expr: sp.Expr) -> str:
    return TexPrinter().doprint(expr)


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
        formulas = " + ".join(r" \cdot ".join(_latex_factor(f.expr) for f in path.factors) for path in self.paths)
        if self.penalty:
            labels += " + " + self.penalty.latex_label
            formulas += " + " + _latex_factor(self.penalty.expr)
        return rf"\frac{{\partial E}}{{\partial {latex_name(self.parameter)}}} = {labels} = {formulas}"


def _latex_factor(expr: sp.Expr) -> str:
    text = to_latex(expr)
    return rf"\left({text}\right)" if isinstance(expr, sp.Add) else text


def grouped_text(expr: sp.Expr) -> str:
    """``expr`` as text, in parentheses when it is a sum (so it can stand as a factor)."""
    text = to_text(expr)
    return f"({text})" if isinstance(expr, sp.Add) or text.startswith("-") else text


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


# -- values at numbers -------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """Where to evaluate: parameter values by name, one example's inputs and targets."""

    parameters: Mapping[str, float]
    inputs: Sequence[float]
    targets: Sequence[float]


def evaluate(gradients: Gradients, point: Point) -> dict[sp.Symbol, float]:
    """The value of every parameter, input, target and intermediate (net, out, delta) at ``point``.

    Computed with SymPy's own arithmetic on the formulas, independently of any generated code.
    """
    model = gradients.model
    values: dict[sp.Symbol, sp.Expr] = {}
    for p in model.spec.parameters:
        values[model.parameter_symbol(p.name)] = sp.Float(point.parameters[p.name])
    values.update({s: sp.Float(v) for s, v in zip(model.inputs, point.inputs)})
    values.update({s: sp.Float(v) for s, v in zip(model.targets, point.targets)})
    for layer in model.layers:
        for unit in layer.units:
            values[unit.net] = layer.net_expr(unit.j).xreplace(values)
        if layer.activation == "softmax":
            nets = [values[u.net] for u in layer.units]
            largest = max(nets)
            values[layer.lse] = largest + sp.log(sp.Add(*(sp.exp(n - largest) for n in nets)))
        for unit in layer.units:
            values[unit.out] = sp.Float(layer.out_expr(unit.j).xreplace(values))
            if layer.activation == "softmax":
                values[unit.log_out] = values[unit.net] - values[layer.lse]
    values[sp.Symbol("E", real=True)] = model.stable_example_loss.xreplace(values)
    for derivative in gradients.units_backward():
        values[derivative.unit.delta] = derivative.delta.xreplace(values)
    return {symbol: float(value) for symbol, value in values.items()}


def value_of(expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> float:
    result = expr.xreplace({s: sp.Float(values[s]) for s in expr.free_symbols if s in values})
    try:
        return float(result)
    except TypeError as error:
        raise ValueError(f"cannot evaluate {to_text(expr)}: {to_text(result)} is not a number") from error


def format_number(value: float, digits: int = 6) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.{digits}g}"


def point_from_spec(gradients: Gradients, overrides: Mapping[str, Any] | None = None) -> Point:
    """The spec's initial values and example, with ``overrides`` (a VALUES.json document) on top.

    ``overrides`` may hold ``parameters`` (by name), ``inputs`` and ``targets``.
    """
    from .initialize import initial_parameters

    spec = gradients.model.spec
    if overrides is not None and not isinstance(overrides, Mapping):
        raise SpecError("$", f"the values file holds a JSON {type(overrides).__name__}, not an object",
                        'write {"parameters": {...}, "inputs": [...], "targets": [...]}')
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {"parameters", "inputs", "targets"})
    if unknown:
        raise SpecError(f"$.{unknown[0]}", f'unknown key "{unknown[0]}" in the values file',
                        "the keys allowed are: parameters, inputs, targets")
    parameters = dict(zip(spec.parameter_names, (float(v) for v in initial_parameters(spec))))
    given = overrides.get("parameters", {})
    if not isinstance(given, dict):
        raise SpecError("$.parameters", "expected an object of parameter values by name", 'e.g. {"w1": 0.15}')
    for key, value in given.items():
        if key not in parameters:
            raise SpecError(f"$.parameters.{key}", f'"{key}" is not a parameter of this network',
                            "use names from PARAMETER_NAMES")
        parameters[key] = _finite(value, f"$.parameters.{key}")
    example_inputs = spec.example.inputs[0] if spec.example else None
    example_targets = spec.example.targets[0] if spec.example else None
    inputs = _row(overrides.get("inputs", example_inputs), spec.n_inputs, "inputs")
    targets = _row(overrides.get("targets", example_targets), spec.n_outputs, "targets")
    return Point(parameters, inputs, targets)


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(where, f"expected a finite number, got {value!r}", "use an ordinary number")
    return float(value)


def _row(value: Any, width: int, key: str) -> tuple[float, ...]:
    if value is None:
        raise SpecError(f"$.{key}", f"no {key} to evaluate at",
                        f'add "example": {{"inputs": [...], "targets": [...]}} to the spec, or "{key}" to the values file')
    if not isinstance(value, (list, tuple)) or len(value) != width:
        raise SpecError(f"$.{key}", f"expected a list of {width} number(s)", f"give one number per {key[:-1]}")
    return tuple(_finite(v, f"$.{key}[{i}]") for i, v in enumerate(value))


def layer_formula_templates(gradients: Gradients) -> list[dict[str, Any]]:
    """Per layer, dE/dp as a format string in ``{p}`` (parameter), ``{u}`` (unit), ``{x}`` (input)
    and ``{following}`` (the next layer's name pattern), for networks too large for a table.

    The generated modules fill these in on demand, so FORMULAS costs nothing until it is read.
    """
    from .gradients import A, T, Z

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


def formulas_report(spec_source: Any, params: Sequence[str] | None = None, expanded: bool = False,
                    latex: bool = False, at: bool = False, values: Mapping[str, Any] | None = None,
                    digits: int = 6) -> str:
    """What ``python -m symgrad formulas`` prints: each dE/dp as labels, formulas, and values."""
    from .pipeline import analyze

    analysis = analyze(spec_source)
    spec, gradients = analysis.spec, analysis.gradients
    if params is None and spec.n_parameters > 1000:
        return _layer_report(gradients)
    names = list(params) if params else list(spec.parameter_names)
    numbers = None
    lines: list[str] = []
    if at:
        point = point_from_spec(gradients, values)
        numbers = evaluate(gradients, point)
        shown = ", ".join(format_number(v, digits) for v in point.inputs)
        wanted = ", ".join(format_number(v, digits) for v in point.targets)
        lines.append(f"# values at inputs [{shown}], targets [{wanted}]; E = "
                     f"{format_number(numbers[sp.Symbol('E', real=True)], digits)} for this example")
    for name in names:
        chain = chain_rule(gradients, name)
        lines += _latex_chain(chain, gradients, expanded) if latex else \
            _text_chain(chain, gradients, expanded, numbers, digits)
    return "\n".join(lines) + "\n"


def _text_chain(chain: ChainRule, gradients: Gradients, expanded: bool,
                numbers: Mapping[sp.Symbol, float] | None, digits: int) -> list[str]:
    head = f"dE/d{chain.parameter} = "
    pad = " " * (len(head) - 2) + "= "
    lines = [head + chain.labels(), pad + chain.formulas()]
    if numbers is not None:
        shown = " + ".join(MULTIPLY.join(format_number(value_of(f.expr, numbers), digits) for f in path.factors)
                           for path in chain.paths)
        if chain.penalty:
            shown += " + " + format_number(value_of(chain.penalty.expr, numbers), digits)
        lines.append(pad + shown)
        lines.append(pad + format_number(value_of(chain.total, numbers), digits))
    for upstream in chain.upstream:
        head = f"  where {upstream.factor.label} = "
        pad = " " * (len(head) - 2) + "= "
        lines.append(head + " + ".join(f"{a.label} * {b.label}" for a, b in upstream.terms))
        lines.append(pad + " + ".join(f"{grouped_text(a.expr)} * {grouped_text(b.expr)}" for a, b in upstream.terms))
        if numbers is not None:
            lines.append(pad + " + ".join(f"{format_number(value_of(a.expr, numbers), digits)} * "
                                          f"{format_number(value_of(b.expr, numbers), digits)}"
                                          for a, b in upstream.terms))
            lines.append(pad + format_number(value_of(upstream.factor.expr, numbers), digits))
    if expanded:
        lines.append(f"  closed form: dE/d{chain.parameter} = {to_text(gradients.closed_form(chain.total))}")
    return lines


def _latex_chain(chain: ChainRule, gradients: Gradients, expanded: bool) -> list[str]:
    lines = [f"$$ {chain.latex()} $$"]
    for upstream in chain.upstream:
        terms = " + ".join(f"{a.latex_label} {b.latex_label}" for a, b in upstream.terms)
        lines.append(f"$$ {upstream.factor.latex_label} = {terms} = {to_latex(upstream.factor.expr)} $$")
    if expanded:
        closed = to_latex(gradients.closed_form(chain.total))
        lines.append(rf"$$ \frac{{\partial E}}{{\partial {latex_name(chain.parameter)}}} = {closed} $$")
    return lines


def _layer_report(gradients: Gradients) -> str:
    spec = gradients.model.spec
    lines = [f"# {spec.name} has {spec.n_parameters} parameters: the rule of each layer "
             "(ask for single parameters with --param NAME)"]
    for k, template in enumerate(layer_formula_templates(gradients), start=1):
        lines.append(f"layer {k} ({spec.layers[k - 1].activation.describe()}, {len(template['units'])} units):")
        lines.append("  " + template["delta"].format(u="u"))
        lines.append("  " + template["weight"].format(p=f"W{k}[u,i]", u="u", x="in_i"))
        lines.append("  " + template["bias"].format(p=f"b{k}[u]", u="u"))
    return "\n".join(lines) + "\n"

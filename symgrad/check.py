"""Judging a hand-derived dE/dp: is the learner's formula the derivative, and if not, where not?

A formula in the vocabulary that ``formulas`` and ``explain`` print (parameter and input names,
``net_U``, ``out_U``, ``delta_U``, ``t_U``, numbers, ``+ - * / ** ^``, the whitelist functions
and ``step``/``leaky_step``) is read by the safe parser, every intermediate is replaced by its definition, and the
result is compared with symgrad's dE/dp as functions of the parameters, inputs and targets:
symbolically where a cheap expansion settles it, and always at the spec's own numbers and at
random points evaluated to 50 digits, so a wrong formula is never called correct.  When the
formula is a product, the chain-rule factor that it gets wrong is named.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import sympy as sp

from . import rules
from .errors import SpecError
from .expression import FUNCTIONS
from .formulas import ChainRule, chain_rule, format_number, to_text
from .gradients import Gradients
from .model import display_name
from .naming import code_name
from .schema import suggest

#: Digits of the high-precision evaluation, and the relative difference still counted as equal.
DIGITS = 50
TOLERANCE = sp.Float("1e-30", DIGITS)
RANDOM_POINTS = 12
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: What ``formulas`` prints beyond the spec's function whitelist: the kinks' derivatives.
DERIVATIVE_FUNCTIONS = {
    "step": (1, lambda x: 1.0 if x > 0 else 0.0, rules.Step),
    "leaky_step": (2, lambda x, slope: 1.0 if x > 0 else slope, rules.LeakyStep),
}


@dataclass(frozen=True)
class Verdict:
    """The judgement: ``correct`` decides the exit status; ``lines`` say why."""

    correct: bool
    lines: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(self.lines) + "\n"


def vocabulary(gradients: Gradients) -> dict[str, sp.Symbol]:
    """Every name a formula may use -> its symbol (names that mean two things are left out)."""
    model = gradients.model
    spec = model.spec
    entries: list[tuple[str, sp.Symbol]] = [(p.name, model.parameter_symbol(p.name)) for p in spec.parameters]
    entries += list(zip(spec.inputs, model.inputs))
    for unit in model.units_by_name.values():
        entries += [(code_name(role, unit.name), symbol)
                    for role, symbol in (("net", unit.net), ("out", unit.out), ("delta", unit.delta))]
        if unit.is_output:
            entries.append((code_name("target", unit.name), unit.target))
    names: dict[str, sp.Symbol] = {}
    ambiguous = set()
    for name, symbol in entries:
        if name in names and names[name] != symbol:
            ambiguous.add(name)
        names.setdefault(name, symbol)
    for name in ambiguous:
        del names[name]
    return names


def read_formula(text: str, gradients: Gradients) -> sp.Expr:
    """The learner's formula as SymPy, through the whitelist parser; unknown names suggest a fix."""
    names = vocabulary(gradients)
    text = text.replace("^", "**")
    for match in _NAME.finditer(text):
        word = match.group()
        if word not in names and word not in FUNCTIONS and word not in DERIVATIVE_FUNCTIONS:
            same_letters = [name for name in names if name.lower() == word.lower()]
            hint = f' (did you mean "{same_letters[0]}"?)' if same_letters else suggest(word, list(names))
            raise SpecError("FORMULA", f'unknown name "{word}" at position {match.start()}' + hint,
                            "use parameter and input names, net_U, out_U, delta_U and t_U for a unit U, "
                            "numbers and the functions " + ", ".join([*FUNCTIONS, *DERIVATIVE_FUNCTIONS]))
    return rules.formula_expr(text, names, "FORMULA", DERIVATIVE_FUNCTIONS)


def _example_points(gradients: Gradients) -> list[dict[sp.Symbol, sp.Expr]]:
    """One point per example of the spec (none without one), at its initial values, as exact rationals."""
    from .initialize import initial_parameters

    model = gradients.model
    spec = model.spec
    if spec.example is None:
        return []
    rational = lambda v: sp.nsimplify(float(v), rational=True)  # noqa: E731
    parameters = {s: rational(v) for s, v in zip(model.parameters, initial_parameters(spec))}
    return [{**parameters, **{s: rational(v) for s, v in zip(model.inputs, inputs)},
             **{s: rational(v) for s, v in zip(model.targets, targets)}}
            for inputs, targets in zip(spec.example.inputs, spec.example.targets)]


def _points(gradients: Gradients, count: int, seed: int) -> list[dict[sp.Symbol, sp.Expr]]:
    """The spec's own numbers first (when it has an example), then random ones, as exact rationals."""
    model = gradients.model
    spec = model.spec
    points = _example_points(gradients)[:1]
    rng = np.random.default_rng(seed)
    on_simplex = spec.loss.name == "cross_entropy"  # softmax's delta o - t holds where the targets sum to 1
    for _ in range(count):
        thousandths = rng.integers(-1500, 1500, len(model.parameters))
        point = {s: sp.Rational(int(v), 1000) for s, v in zip(model.parameters, thousandths)}
        thousandths = rng.integers(-2000, 2000, len(model.inputs))
        point.update({s: sp.Rational(int(v), 1000) for s, v in zip(model.inputs, thousandths)})
        if on_simplex:
            weights = rng.integers(1, 1000, len(model.targets))
            targets = [sp.Rational(int(w), int(weights.sum())) for w in weights]
        else:
            targets = [sp.Rational(int(v), 1000) for v in rng.integers(0, 1000, len(model.targets))]
        point.update(dict(zip(model.targets, targets)))
        points.append(point)
    return points


def _at(gradients: Gradients, point: dict[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    """``point`` plus every intermediate (net, out, lse, log_out, delta) to DIGITS digits, layer by layer,
    so that each rule function is applied to a number."""
    model = gradients.model
    values = {symbol: sp.Float(value, DIGITS) for symbol, value in point.items()}
    for layer in model.layers:
        for unit in layer.units:
            values[unit.net] = layer.net_expr(unit.j).xreplace(values).evalf(DIGITS)
        if layer.activation == "softmax":
            values[layer.lse] = sp.log(sp.Add(*(sp.exp(values[u.net]) for u in layer.units))).evalf(DIGITS)
        for unit in layer.units:
            values[unit.out] = layer.out_expr(unit.j).xreplace(values).evalf(DIGITS)
            values[unit.log_out] = (values[unit.net] - values[layer.lse]).evalf(DIGITS) \
                if layer.activation == "softmax" else sp.log(values[unit.out]).evalf(DIGITS)
    for derivative in gradients.units_backward():
        values[derivative.unit.delta] = derivative.delta.xreplace(values).evalf(DIGITS)
    return values


def _value(expr: sp.Expr, values: dict[sp.Symbol, sp.Expr]) -> sp.Float:
    value = expr.xreplace(values).evalf(DIGITS)
    if not value.is_number or value.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or not value.is_real:
        raise ValueError("not a finite number")
    return value


def _equal(a: sp.Expr, b: sp.Expr) -> bool:
    return abs(a - b) <= TOLERANCE * max(1, abs(a), abs(b))


def _show_point(point: dict[sp.Symbol, sp.Expr], used: set[sp.Symbol], digits: int) -> str:
    shown = [f"{display_name(s)} = {format_number(float(v), digits)}"
             for s, v in point.items() if s in used]
    return ", ".join(shown[:24]) + (", ..." if len(shown) > 24 else "")


def check_formula(gradients: Gradients, parameter: str, text: str, digits: int = 6, seed: int = 0) -> Verdict:
    """Whether ``text`` is dE/d``parameter`` for one example (the spec's penalty included)."""
    chain = chain_rule(gradients, parameter)  # unknown parameters: a user error with "did you mean"
    formula = read_formula(text, gradients)
    shown = " ".join(text.split())
    used = gradients.closed_form(formula).free_symbols | gradients.closed_form(chain.total).free_symbols
    symbolic = sp.expand(gradients.closed_form(formula - chain.total)) == 0
    for index, point in enumerate(_points(gradients, RANDOM_POINTS, seed)):
        values = _at(gradients, point)
        try:
            mine = _value(formula, values)
        except (ValueError, TypeError):
            return Verdict(False, (f"incorrect: {shown} is not dE/d{parameter}",
                                   f"  it is not a finite number at {_show_point(point, used, digits)}"))
        expected = _value(chain.total, values)
        if not _equal(mine, expected):
            where = "the spec's values" if index == 0 and gradients.model.spec.example is not None else "a random point"
            lines = [f"incorrect: {shown} is not dE/d{parameter}",
                     f"  at {where}: {_show_point(point, used, digits)}",
                     f"  yours = {format_number(float(mine), digits)}, dE/d{parameter} = "
                     f"{format_number(float(expected), digits)}"]
            lines += _factor_diagnosis(chain, formula, values, digits)
            lines.append(f"  the chain rule: {chain.text()}")
            return Verdict(False, tuple(lines))
    how = "symbolically and" if symbolic else ""
    return Verdict(True, (f"correct: {shown} = dE/d{parameter}",
                          f"  equal {how} at {RANDOM_POINTS + (gradients.model.spec.example is not None)} points "
                          f"evaluated to {DIGITS} digits".replace("  at", " at")))


def _factor_diagnosis(chain: ChainRule, formula: sp.Expr, values: dict[sp.Symbol, sp.Expr],
                      digits: int) -> list[str]:
    """For a product over a single path: which of the chain's factors the formula gets wrong.

    The formula's factors are matched, as sub-products, against runs of the chain's factors
    (``delta_o1`` stands for dE/dout_o1 * dout_o1/dnet_o1); a chain factor left unmatched is named.
    """
    if len(chain.paths) != 1 or chain.penalty is not None or not isinstance(formula, sp.Mul):
        return []
    mine = [(arg, _value(arg, values)) for arg in sp.Mul.make_args(formula)]
    factors = chain.paths[0].factors
    factor_values = [_value(f.expr, values) for f in factors]
    remaining = list(range(len(mine)))
    unmatched: list[int] = []
    start = 0
    while start < len(factors):
        for stop in range(len(factors), start, -1):  # the longest run of chain factors first
            target = sp.Mul(*factor_values[start:stop])
            found = next((subset for size in range(1, len(remaining) + 1)
                          for subset in itertools.combinations(remaining, size)
                          if _equal(sp.Mul(*(mine[i][1] for i in subset)), target)), None)
            if found is not None:
                remaining = [i for i in remaining if i not in found]
                start = stop
                break
        else:
            unmatched.append(start)
            start += 1
    lines = [f"  the factor {factors[k].label} = {to_text(factors[k].expr)} "
             f"(= {format_number(float(factor_values[k]), digits)} here) is missing or wrong in yours"
             for k in unmatched]
    if not unmatched and remaining:
        extra = sp.Mul(*(mine[i][0] for i in remaining))
        lines.append(f"  every factor of the chain is there, but yours also multiplies by {to_text(extra)}")
    return lines


def _tolerance_of(number: str) -> tuple[float, float]:
    """The value typed and half a unit in its last digit (0.0822 -> 0.00005)."""
    try:
        decimal = Decimal(number.strip())
    except InvalidOperation:
        raise SpecError("--value", f'"{number}" is not a number', "write a decimal number such as 0.0822") from None
    exponent = decimal.as_tuple().exponent if decimal.is_finite() else 0
    if not decimal.is_finite() or not -300 <= exponent <= 300 or not abs(decimal) < Decimal("1e300"):
        raise SpecError("--value", f'"{number[:40]}" is not a finite number of ordinary size',
                        "write a decimal number such as 0.0822")
    return float(decimal), 0.5 * 10.0 ** exponent


def check_value(gradients: Gradients, parameter: str, number: str, digits: int = 6) -> Verdict:
    """Whether ``number`` is dE/d``parameter`` at the spec's initial values and example(s), within
    the rounding of the digits typed (the loss's reduction over the examples, the penalty included)."""
    chain_rule(gradients, parameter)
    spec = gradients.model.spec
    if spec.example is None:
        raise SpecError("$.example", "--value needs the spec's example to evaluate at",
                        'add "example": {"inputs": [...], "targets": [...]} to the spec, or check a formula instead')
    value, half_unit = _tolerance_of(number)
    derivative = gradients.parameter(parameter)
    points = [_at(gradients, point) for point in _example_points(gradients)]
    values = [_value(derivative.expr, point) for point in points]
    total = sp.Add(*values) / (len(values) if spec.loss.reduction == "mean" else 1)
    exact = float(total + _value(derivative.penalty, points[0]))  # the penalty: once, in the parameters alone
    over = len(values) > 1 and f" ({spec.loss.reduction} over {len(values)} examples)" or ""
    error = abs(value - exact)
    if error <= half_unit * (1 + 1e-9):
        significant = len(Decimal(number.strip()).normalize().as_tuple().digits)
        return Verdict(True, (f"correct: dE/d{parameter} = {number.strip()} at the spec's values{over}, "
                              f"to the {significant} significant digit{'s' if significant > 1 else ''} given",
                              f"  the exact value is {format_number(exact, max(digits, 10))}"))
    lines = [f"incorrect: dE/d{parameter} is {format_number(exact, max(digits, 10))} at the spec's values{over}, "
             f"not {number.strip()}"]
    if error <= 2 * half_unit:
        lines.append("  close: check how you rounded the last digit")
    lines.append(f"  the chain rule: {chain_rule(gradients, parameter).text()}")
    return Verdict(False, tuple(lines))

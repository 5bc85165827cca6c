"""Evaluation: the value of every intermediate of the chain rule at given numbers.

Input: :class:`~symgrad.gradients.Gradients` and a :class:`Point` (parameter values, one
example's inputs and targets; :func:`point_from_spec` reads them from the spec and a values
file).  Output: ``{symbol: float}`` for every parameter, input, target, net, out, delta and E,
computed with SymPy's arithmetic, independently of any generated code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import sympy as sp

from ..errors import SpecError
from ..gradients import Gradients
from .printing import to_text

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
            out = layer.out_expr(unit.j).xreplace(values)
            number = _finite_number(out, unit.out)
            values[unit.out] = sp.Float(out if out.is_Number else number)
            if layer.activation == "softmax":
                values[unit.log_out] = values[unit.net] - values[layer.lse]
    values[sp.Symbol("E", real=True)] = model.stable_example_loss.xreplace(values)
    for derivative in gradients.units_backward():
        values[derivative.unit.delta] = derivative.delta.xreplace(values)
    return {symbol: _finite_number(value, symbol) for symbol, value in values.items()}


def value_of(expr: sp.Expr, values: Mapping[sp.Symbol, float]) -> float:
    result = expr.xreplace({s: sp.Float(values[s]) for s in expr.free_symbols if s in values})
    return _finite_number(result, expr)


def _finite_number(value: sp.Expr, what: sp.Expr) -> float:
    """``value`` as a float, or a user error: the spec's formulas overflow (or are undefined) at these numbers."""
    try:
        number = float(value)
    except (TypeError, OverflowError):
        number = math.nan
    if math.isfinite(number):
        return number
    problem = "too large for a float" if math.isinf(number) else "not a finite number"
    raise SpecError("--at", f"{to_text(what)} is {problem} at these values ({to_text(value)[:80]})",
                    "use smaller initial values or inputs (the spec's initial and example, or the --at values "
                    "file), or a formula that grows more slowly")


def points_from_spec(gradients: Gradients, overrides: Mapping[str, Any] | None = None) -> tuple[Point, ...]:
    """Every example of the spec at its initial values, with ``overrides`` (a VALUES.json document) on top.

    ``overrides`` may hold ``parameters`` (by name), ``inputs`` and ``targets``; inputs or targets
    there make one example (the other half from the spec's example, when it holds exactly one).
    """
    from ..initialize import initial_parameters

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
    examples = list(zip(spec.example.inputs, spec.example.targets)) if spec.example else [(None, None)]
    if "inputs" in overrides or "targets" in overrides:
        if len(examples) > 1 and not ("inputs" in overrides and "targets" in overrides):
            given_half, half = ("inputs", "targets") if "inputs" in overrides else ("targets", "inputs")
            raise SpecError(f"$.{half}", f"the values file gives one example's {given_half} but not its {half}, "
                            f"and the spec's example holds {len(examples)} examples",
                            f'add "{half}" to the values file')
        examples = [(overrides.get("inputs", examples[0][0]), overrides.get("targets", examples[0][1]))]
    return tuple(Point(parameters, _row(inputs, spec.n_inputs, "inputs"), _row(targets, spec.n_outputs, "targets"))
                 for inputs, targets in examples)


def point_from_spec(gradients: Gradients, overrides: Mapping[str, Any] | None = None) -> Point:
    """The one example of :func:`points_from_spec`; an error when there are several (none is dropped silently)."""
    points = points_from_spec(gradients, overrides)
    if len(points) > 1:
        raise SpecError("$.example", f"holds {len(points)} examples where one is needed",
                        "use points_from_spec for all of them, or give one example")
    return points[0]


def reduce_examples(values: Sequence[float], reduction: str) -> float:
    """The loss's reduction over a batch: the mean or the sum of the per-example values."""
    total = math.fsum(values)
    return total / len(values) if reduction == "mean" else total


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


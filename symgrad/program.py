"""Stage 4 (optimize): :class:`Gradients` -> a :class:`Program`, the optimized form the emitters print.

Two forms, chosen by size (DESIGN.md section 3):

* :class:`ScalarProgram` for tutorial-size networks: straight-line assignments per example,
  one named value per unit (``net_h1``, ``out_h1``, ``delta_h1``), with common subexpressions
  of each layer's deltas pulled out by ``sympy.cse`` so every shared factor is computed once.
  Every assignment carries its operation count.
* :class:`VectorProgram` for everything larger: per layer, the elementwise rules of
  :class:`LayerRule` plus the matrix products of backpropagation.  Its size does not grow with
  the layer widths, so generated code stays small and compiles fast.

Both describe one example; the emitters add the loop or vectorization over the batch and the
batch reduction (mean or sum).  :func:`complete` attaches what the emitters print beside the
computation (the formula texts, the C form), so an emitter reads one self-sufficient program and
never calls back into earlier stages; :func:`preferred_backends` is the auto-backend policy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Union

import sympy as sp

from .gradients import Gradients, LayerRule
from .spec import Spec

#: Networks with at most this many parameters get straight-line (scalar) code.
SCALAR_LIMIT = 64

#: Straight-line C is never printed for more parameters than this: a larger scalar program
#: (``form="scalar"`` forced on a big network) gets a vector form for C (docs/c-backend.md).
C_SCALAR_MAX = 400

#: backend="auto" prefers C up to this many parameters, NumPy above, by dtype (docs/c-backend.md).
AUTO_C_MAX_PARAMETERS = {"float32": 10_000, "float64": 5_000}

Form = Literal["auto", "scalar", "vector"]


@dataclass(frozen=True)
class Assignment:
    target: sp.Symbol
    expr: sp.Expr
    comment: str = ""

    @property
    def ops(self) -> int:
        return int(sp.count_ops(self.expr))


@dataclass(frozen=True)
class Block:
    """A titled run of assignments: one layer's forward pass, or one layer's deltas."""

    title: str
    assignments: tuple[Assignment, ...]

    @property
    def ops(self) -> int:
        return sum(a.ops for a in self.assignments)


@dataclass(frozen=True)
class GradientEntry:
    """dE/dp for one example, as a sum of (delta, dnet/dp) products; its position in theta."""

    name: str
    index: int
    terms: tuple[tuple[sp.Symbol, sp.Expr], ...]
    expr: sp.Expr


@dataclass(frozen=True)
class ScalarProgram:
    spec: Spec
    inputs: tuple[sp.Symbol, ...]
    targets: tuple[sp.Symbol, ...]
    parameters: tuple[sp.Symbol, ...]
    forward: tuple[Block, ...]
    outputs: tuple[sp.Symbol, ...]
    loss: Assignment
    backward: tuple[Block, ...]
    gradient: tuple[GradientEntry, ...]
    form: str = "scalar"
    formulas: "Formulas | None" = None  # attached by complete()
    c_form: "Program | None" = None  # attached by complete(): what the C backend prints

    def __repr__(self) -> str:
        return f"ScalarProgram({self.spec.name!r}, ops={self.op_counts})"

    @property
    def op_counts(self) -> dict[str, int]:
        """Operations per example in each part (SymPy's count_ops)."""
        return {
            "forward": sum(b.ops for b in self.forward),
            "loss": self.loss.ops,
            "backward": sum(b.ops for b in self.backward),
            "gradient": sum(int(sp.count_ops(g.expr)) for g in self.gradient),
        }


@dataclass(frozen=True)
class LayerPlan:
    index: int
    units: tuple[str, ...]
    n_in: int
    n_out: int
    weight_offset: int
    bias_offset: int
    bias_mode: str
    rule: LayerRule
    bias_stop: int  # biases are theta[bias_offset:bias_stop]


@dataclass(frozen=True)
class VectorProgram:
    spec: Spec
    layers: tuple[LayerPlan, ...]
    form: str = "vector"
    formulas: "Formulas | None" = None  # attached by complete()
    c_form: "Program | None" = None  # attached by complete(): what the C backend prints

    def __repr__(self) -> str:
        return f"VectorProgram({self.spec.name!r}, ops={self.op_counts})"

    @property
    def op_counts(self) -> dict[str, int]:
        """Multiply-adds per example in the matrix products (the elementwise work is linear)."""
        forward = sum(p.n_in * p.n_out for p in self.layers)
        backward = sum(p.n_in * p.n_out * (2 if k else 1) for k, p in enumerate(self.layers))
        return {"forward": forward, "backward": backward}


Program = Union[ScalarProgram, VectorProgram]


@dataclass(frozen=True)
class Formulas:
    """FORMULAS of a generated module: a table of texts (scalar form), or per-layer templates
    (``symgrad.formulas.layer_formula_templates``) that the module fills in on demand."""

    kind: Literal["table", "layers"]
    texts: tuple[tuple[str, str], ...] = ()
    layers: tuple[dict[str, Any], ...] = ()


def complete(program: Program, gradients: Gradients) -> Program:
    """``program`` with its formula texts and its C form attached: what ``emit_package`` needs.

    The C form is the program itself, except that a scalar program of more than C_SCALAR_MAX
    parameters is printed in C as layer loops, which keeps every generated C function bounded.
    """
    from .formulas import formula_texts, layer_formula_templates

    if isinstance(program, ScalarProgram):
        formulas = Formulas("table", texts=tuple(formula_texts(gradients).items()))
        c_form = _vector_program(gradients) if program.spec.n_parameters > C_SCALAR_MAX else None
    else:
        formulas = Formulas("layers", layers=tuple(layer_formula_templates(gradients)))
        c_form = None
    done = replace(program, formulas=formulas)
    return replace(done, c_form=c_form or done)


def preferred_backends(program: Program, backends: tuple[str, ...]) -> list[str]:
    """The built backends, fastest first: what ``import <name>`` and ``backend="auto"`` take.

    C first while a network has at most AUTO_C_MAX_PARAMETERS parameters, NumPy first above
    (measurements in docs/c-backend.md).
    """
    limit = AUTO_C_MAX_PARAMETERS[program.spec.dtype]
    order = ("c", "numpy") if program.spec.n_parameters <= limit else ("numpy", "c")
    return [b for b in order if b in backends]


def choose_form(spec: Spec, form: Form = "auto") -> str:
    if form == "auto":
        return "scalar" if spec.n_parameters <= SCALAR_LIMIT else "vector"
    return form


def optimize(gradients: Gradients, form: Form = "auto") -> Program:
    """Lower ``gradients`` to the program the emitters print."""
    if choose_form(gradients.model.spec, form) == "scalar":
        return _scalar_program(gradients)
    return _vector_program(gradients)


def _scalar_program(gradients: Gradients) -> ScalarProgram:
    model = gradients.model
    forward: list[Block] = []
    for layer in model.layers:
        assignments: list[Assignment] = []
        for unit in layer.units:
            assignments.append(Assignment(unit.net, layer.net_expr(unit.j), f"net input of {unit.name}"))
        if layer.activation == "softmax":
            assignments += _softmax_assignments(layer, needs_log=layer.is_output
                                                and any(u.log_out in model.stable_example_loss.free_symbols
                                                        for u in layer.units))
        else:
            for unit in layer.units:
                assignments.append(Assignment(unit.out, layer.out_expr(unit.j),
                                              f"output of {unit.name} ({layer.spec.activation.describe()})"))
        kind = "output layer" if layer.is_output else f"hidden layer {layer.index + 1}"
        forward.append(Block(f"{kind}: {', '.join(layer.spec.units)}", tuple(assignments)))

    loss = Assignment(sp.Symbol("E", real=True), model.stable_example_loss,
                      f"{model.spec.loss.name} of one example")

    backward: list[Block] = []
    temporaries = sp.numbered_symbols("_c", real=True)
    for layer in reversed(model.layers):
        derivatives = [gradients.unit(unit.name) for unit in layer.units]
        shared, reduced = sp.cse([d.delta for d in derivatives], symbols=temporaries, order="none")
        assignments = [Assignment(symbol, expr, "shared factor") for symbol, expr in shared]
        for derivative, expr in zip(derivatives, reduced):
            assignments.append(Assignment(derivative.unit.delta, expr, f"dE/dnet_{derivative.unit.name}"))
        kind = "output layer" if layer.is_output else f"hidden layer {layer.index + 1}"
        backward.append(Block(f"{kind}: {', '.join(layer.spec.units)}", tuple(assignments)))

    entries = []
    for derivative in gradients.parameters():
        terms = tuple((unit.delta, dnet_dp) for unit, dnet_dp in derivative.terms)
        entries.append(GradientEntry(derivative.parameter.name, derivative.parameter.index, terms, derivative.expr))

    return ScalarProgram(
        spec=model.spec,
        inputs=model.inputs,
        targets=model.targets,
        parameters=model.parameters,
        forward=tuple(forward),
        outputs=tuple(u.out for u in model.output_layer.units),
        loss=loss,
        backward=tuple(backward),
        gradient=tuple(entries),
    )


def _softmax_assignments(layer, needs_log: bool) -> list[Assignment]:
    nets = [u.net for u in layer.units]
    largest = sp.Symbol(f"max_{layer.spec.units[0]}", real=True)
    result = [
        Assignment(largest, sp.Max(*nets), "largest net input (keeps exp from overflowing)"),
        Assignment(layer.lse, largest + sp.log(sp.Add(*(sp.exp(n - largest) for n in nets))),
                   "log of the softmax denominator"),
    ]
    for unit in layer.units:
        result.append(Assignment(unit.out, layer.out_expr(unit.j), f"output of {unit.name} (softmax)"))
    if needs_log:
        for unit in layer.units:
            result.append(Assignment(unit.log_out, unit.net - layer.lse, f"log of out_{unit.name}"))
    return result


def _vector_program(gradients: Gradients) -> VectorProgram:
    spec = gradients.model.spec
    plans = [LayerPlan(rule.index, layer.units, slots.n_in, slots.n_out, slots.weight_start, slots.bias_start,
                       slots.bias_mode, rule, slots.stop)
             for layer, slots, rule in zip(spec.layers, spec.layout.layers, gradients.layer_rules())]
    return VectorProgram(spec, tuple(plans))

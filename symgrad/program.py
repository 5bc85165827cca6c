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
never calls back into earlier stages; :func:`auto_policy` is the auto-backend policy.
"""

from __future__ import annotations

import math
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

#: What one training step costs each backend, in seconds, by the sizes of the step (measured with
#: tools/bench_mlp.py on the 2-core development machine with one BLAS thread, the busy-machine case;
#: README "Performance"): a fixed cost per call and per layer, then per parameter (the update), per
#: parameter of optimizer state, per multiply-add of the matrix products of each example, and per unit
#: of each example (an activation with exp/log/tanh in it costs "transcendental" more).  C runs
#: everything in compiled loops, so it pays nothing per call; NumPy pays Python's per-operation cost
#: once per step, then runs the products at BLAS speed.
STEP_COST: dict[str, dict[str, Any]] = {
    "c": {"call": 1e-6, "layer": 0.0, "parameter": {"float32": 0.1e-9, "float64": 0.2e-9}, "state": 0.3e-9,
          "multiply_add": {"float32": 0.053e-9, "float64": 0.094e-9}, "unit": 0.5e-9, "transcendental": 4e-9},
    "numpy": {"call": 25e-6, "layer": 8e-6, "parameter": {"float32": 0.3e-9, "float64": 0.5e-9}, "state": 1.5e-9,
              "multiply_add": {"float32": 0.0286e-9, "float64": 0.057e-9}, "unit": 2e-9, "transcendental": 1e-9},
}

#: backend="auto" serves batches of up to this many rows; a crossover beyond it is not worth a dispatcher.
AUTO_MAX_ROWS = 65_536

#: Activations whose elementwise work is a cheap comparison or nothing at all.
_CHEAP_ACTIVATIONS = frozenset({"relu", "leaky_relu", "linear"})

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


def complete(program: Program, gradients: Gradients, formulas: Formulas) -> Program:
    """``program`` with its formula texts (made by the driver, from symgrad.formulas) and its C
    form attached: what ``emit_package`` needs.

    The C form is the program itself, except that a scalar program of more than C_SCALAR_MAX
    parameters is printed in C as layer loops, which keeps every generated C function bounded.
    """
    too_big = isinstance(program, ScalarProgram) and program.spec.n_parameters > C_SCALAR_MAX
    done = replace(program, formulas=formulas)
    return replace(done, c_form=_vector_program(gradients) if too_big else done)


def formula_kind(program: Program) -> str:
    """How FORMULAS is given: a table of texts for a scalar program, per-layer templates for a vector one."""
    return "table" if isinstance(program, ScalarProgram) else "layers"


def step_seconds(program: VectorProgram, backend: str, rows: int) -> float:
    """The estimated seconds of one training step of ``program`` on ``rows`` examples (STEP_COST)."""
    spec = program.spec
    cost = STEP_COST[backend]
    dtype = spec.dtype
    layers = spec.layout.layers
    macs = sum(program.op_counts.values())  # forward and backward products of one example
    units = sum(s.n_out for s in layers)
    slow = sum(s.n_out for s, layer in zip(layers, spec.layers) if layer.activation.name not in _CHEAP_ACTIVATIONS)
    state = sum(length for part, _, length in spec.optimizer.state_layout(spec.n_parameters) if part != "epoch")
    fixed = cost["call"] + cost["layer"] * len(layers) + cost["parameter"][dtype] * spec.n_parameters \
        + cost["state"] * state
    per_row = cost["multiply_add"][dtype] * macs + cost["unit"] * units + cost["transcendental"] * slow
    return fixed + per_row * rows


def numpy_from_rows(program: Program) -> int | None:
    """backend="auto"'s rule: the fewest rows from which a step is estimated faster in NumPy than in C
    (1: NumPy at every size), or None when C is faster up to AUTO_MAX_ROWS rows.

    Straight-line (scalar) programs are tutorial-size networks: C always.
    """
    if isinstance(program, ScalarProgram):
        return None
    c_fixed = step_seconds(program, "c", 0)
    c_row = step_seconds(program, "c", 1) - c_fixed
    numpy_fixed = step_seconds(program, "numpy", 0)
    numpy_row = step_seconds(program, "numpy", 1) - numpy_fixed
    if numpy_row >= c_row:  # NumPy is never faster per row: C at any size
        return None
    rows = max(1, math.ceil((numpy_fixed - c_fixed) / (c_row - numpy_row)))
    return rows if rows <= AUTO_MAX_ROWS else None


def auto_policy(program: Program, backends: tuple[str, ...]) -> tuple[list[str], int | None]:
    """(the backend modules of a package, fastest first, "auto" first when it dispatches per call;
    NUMPY_FROM_ROWS for the auto module, else None).

    With both backends built: C alone first when it is estimated faster at every batch size up to
    AUTO_MAX_ROWS, NumPy alone when it is faster from one row, else "auto", a module that sends each
    call to C below numpy_from_rows rows and to NumPy from there (symgrad/emit/auto_backend.py.jinja).
    """
    if "c" not in backends or "numpy" not in backends:
        return [b for b in ("c", "numpy") if b in backends], None
    rows = numpy_from_rows(program)
    if rows is None:
        return ["c", "numpy"], None
    if rows <= 1:
        return ["numpy", "c"], None
    return ["auto", "c", "numpy"], rows


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

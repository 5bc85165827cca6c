"""The C backend: prints a :class:`Program` as a standalone C99 kernel plus a CPython extension.

Files of a generated package (``<name>`` is the spec's name)::

    <name>.h, <name>.c   the kernel: C99, only <math.h>; no malloc, no globals, no Python.
                         The caller owns every buffer (``<name>_scratch_size()`` says how many
                         reals the scratch buffer needs); parameter names, sizes and the frozen
                         flags are queryable from C.  forward, loss, gradient, step and the
                         whole training loop (``<name>_train``: every epoch and minibatch) are
                         kernel functions; step and train also update the optimizer state,
                         a caller-owned array of ``<name>_state_size()`` reals.
    c_backend.c          the extension glue: argument checks, then one kernel call.  forward,
                         loss, gradient and step are METH_FASTCALL functions; train releases
                         the GIL for all its epochs.
    c_backend.py         the generated-module contract (DESIGN.md section 5): the constants,
                         FORMULAS and initial values come from the NumPy module of the same
                         package (so the two cannot drift), the computations from the extension.
    _c_kernel<EXT>       the compiled extension (added by :mod:`symgrad.compiler`).

Straight-line code or loops.  A :class:`ScalarProgram` is printed as straight-line C per
example: every unit's net input, output and delta is a named local, and the chain rule reads
top to bottom.  A :class:`VectorProgram` is printed as loops over each layer's units with the
layer's elementwise rules inside, so its size does not depend on the widths.  Straight-line C
beats the loops only for small networks and makes gcc slow for big ones (DESIGN.md section 3);
measured here (gcc 12, Python's -O3 flags, sigmoid layers, train at batch 1, best of 5):

    network   params   straight-line: gcc s, ns/step   loops: gcc s, ns/step
    2-2-2         12          0.3 s,   63 ns            0.3 s,   70 ns
    4-8-4         76          0.3 s,  144 ns            0.2 s,  174 ns
    8-16-8       280          0.7 s,  456 ns            0.2 s,  553 ns
    16-32-10     874          3.4 s, 1739 ns            0.3 s, 1376 ns

so straight-line code pays while a network has a few hundred parameters and stops paying
before a thousand, while its compile time keeps growing.  The C backend follows the program's
form (``symgrad.program.SCALAR_LIMIT``) but never prints a straight-line function for more than
:data:`C_SCALAR_MAX` parameters: a larger scalar program (``form="scalar"`` forced on a big
network) is printed as loops instead, which keeps every generated function's size bounded.

Layer loops, fast.  The vector form works BLOCK examples at a time (activations of a block in
the scratch buffer) and, from TRANSPOSE_MIN examples on, copies each W to W^T once per call, so
every inner loop is an elementwise y[j] += c0*a0[j] + c1*a1[j] + ... over contiguous rows
(forward: rows of W^T; hidden deltas: rows of the next W; dE/dW: the block's input rows, each
dE/dW row staying in cache over the block).  No sum is reordered: a net input is still
((w0*x0 + w1*x1) + ...) + b, deltas sum over the next layer's units in order, dE/dW and the loss
(double) over the examples in batch order, so the loops vectorize without -ffast-math and
give the same bits as one example at a time.  float32 tanh is the kernel's own sg_tanhf
(computed in double, branch-free so it vectorizes, correctly rounded on every float sampled),
not glibc's tanhf, which took a third of a digits epoch.  digits 64-32-10 float32, one epoch
at batch 32 (1,797 examples): 5.5 ms before, 2.5 ms with blocks and W^T, 1.7 ms with
sg_tanhf and -fno-trapping-math, 1.3 ms with four terms per pass (JAX lax.scan: about 1.0 ms,
hand-written NumPy: 2.0 ms; tools/bench_mlp.py).

C or NumPy (``backend="auto"``, and what ``import <name>`` gives).  C's time per example
barely depends on the batch; NumPy's falls with it (BLAS).  train, one epoch of 1,024 random
examples, relu-softmax, C / NumPy time per epoch of 16 minibatches, compiled with -march=native
(symgrad.compiler; tools/bench_mlp.py section 3 shows current cases):

    float32    params   batch 32   batch 128        float64    params   batch 32   batch 128
    128-64-10   8,906     0.57       1.07           128-64-10   8,906     0.82       1.36
    160-96-10  16,426     0.76       1.35           160-96-10  16,426     1.08       1.75
    200-100-10 21,110     0.90       1.38           200-100-10 21,110     1.10       1.57
    256-96-10  25,642     1.03       1.57           256-96-10  25,642     1.34       2.21
    256-128-10 34,186     1.00       1.82           256-128-10 34,186     1.54       2.05

(Below about 5,000 parameters C is faster at every batch size from 1 to 128.)  C's time per
example hardly depends on the batch; NumPy's falls as batches grow, since its matrix products
spread their call overhead.  The rule: C up to :data:`AUTO_C_MAX_PARAMETERS` parameters (10,000
in float32, 5,000 in float64), NumPy above.  Between about 5,000 and 25,000 parameters the
faster backend depends on the batch size, which the package cannot know when it is imported;
the rule favours minibatches of about 32, and is at most about 1.4x off at batch 128.
Both backends stay importable as submodules, and ``backend="c"``/``"numpy"`` choose directly.

Optimizers and penalties.  Every optimizer of the spec (SGD with momentum, dampening, Nesterov
and weight decay; RMSprop; Adam; AdamW) is printed as the kernel's update, after PyTorch's
documented rules exactly as the NumPy backend's ``_update`` computes them (the same derived
constants, the same order of operations), so the two backends agree to rounding step after
step.  The optimizer state is one caller-owned array of ``<name>_state_size()`` reals with the
NumPy module's STATE_LAYOUT (``<name>_state_part()`` names its parts in C); plain SGD keeps none
and prints the same two-line update as before, so it costs nothing.  A layer's l1/l2 penalties
are added after the batch reduction (loss and gradient); label smoothing is part of the SymPy
loss already.

Arithmetic follows the NumPy backend operation for operation (the same stable sigmoid, the
same logits-based logarithms, the batch reduction applied to the summed gradient), so the
two agree to rounding.  ``"dtype": "float32"`` makes ``<name>_real`` a float and every
literal and libm call single precision (tanh: sg_tanhf above).

float32 precision.  float32 keeps about 7 significant digits, and a sum of many terms loses
about log2(terms) bits more when it is added one term after the other.  Where the kernel sums
many terms: the loss over the batch and the l1/l2 penalties are accumulated in double (exact
enough for any batch), then returned as double; net inputs (n_in terms), hidden deltas and
dE/dW, dE/db (one term per example of the batch) are accumulated in float32 in the order
documented above, so their relative error grows like n_in or the batch size times 6e-8 in the
worst case (1e-5 at a batch of 128 with 784 inputs; in practice far less, errors cancel).  That
is the same order of error as NumPy's float32 matmul (BLAS blocks of sums) and as JAX; train
in float64 when that matters.  In float64 C and NumPy agree to 1e-12 (tests).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import precedence

from ... import rules
from ...errors import BuildError, InternalError
from ...gradients import A, LOGP, T, Z, Gradients
from ...program import Program, ScalarProgram, VectorProgram, optimize
from .. import output_rules, provenance, scalar_names, template_environment

#: Straight-line C is never printed for more parameters than this (see the module docstring).
C_SCALAR_MAX = 400

#: backend="auto" prefers C up to this many parameters, NumPy above, by dtype (module docstring).
AUTO_C_MAX_PARAMETERS = {"float32": 10_000, "float64": 5_000}

#: Examples whose activations the vector-form kernel keeps at once (module docstring); 8, 16
#: and 32 measured within noise of each other on digits, 16 keeps a block's work in L1.
BLOCK = 16

#: Batches of at least this many examples transpose the weights first (module docstring).
TRANSPOSE_MIN = 2

#: The extension module's name inside a generated package.
EXTENSION = "_c_kernel"

_TEMPLATES = template_environment(Path(__file__).parent)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_LIBM = frozenset({"exp", "log", "tanh", "fabs", "sqrt", "pow", "fmax", "fmin", "log1p", "erf"})


class CCodePrinter(C99CodePrinter):
    """Prints expressions as C99 in the kernel's ``real`` type; refuses what it cannot spell.

    ``names`` renames symbols (the template symbols of layer rules become array elements).
    For float32, literals get an ``F`` suffix and libm calls their ``f`` variants, so nothing
    is silently computed in double.
    """

    def __init__(self, dtype: str, names: dict[sp.Symbol, str] | None = None) -> None:
        super().__init__({"strict": True, "math_macros": {}})  # M_PI and friends are not C99
        self.dtype = dtype
        self.single = dtype == "float32"
        self.names = names or {}
        self.helpers: set[str] = set()

    # -- names and numbers --------------------------------------------------------------------
    def _print_Symbol(self, expr: sp.Symbol) -> str:
        name = self.names.get(expr, expr.name)
        if expr not in self.names and not _IDENTIFIER.fullmatch(name):
            raise InternalError(f"the C printer got a symbol that is not an identifier: {name!r}")
        return name

    def literal(self, value: float) -> str:
        text = repr(float(value))
        if text in ("inf", "-inf", "nan"):
            raise BuildError(f"a formula contains the constant {text}, which C code cannot spell")
        return text + ("F" if self.single else "")

    def _print_Float(self, expr: sp.Float) -> str:
        return self.literal(float(expr))

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"({self.literal(expr.p)}/{self.literal(expr.q)})"

    def _print_Half(self, expr: sp.Rational) -> str:
        return self.literal(0.5)

    def _print_Integer(self, expr: sp.Integer) -> str:
        return str(int(expr))

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return self.libm("exp") + "(1)"

    def libm(self, name: str) -> str:
        return name + ("f" if self.single else "")

    # -- functions: the rule table's C spelling --------------------------------------------------
    def _print(self, expr: Any, **kwargs: Any) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is not None:
            if spelling.c_helper:
                self.helpers.add(spelling.c_helper)
            text = spelling.c.format(*(self._print(arg) for arg in expr.args))
            head, _, rest = text.partition("(")
            if head == "tanh" and self.single:
                # float32: the kernel's own tanh, correctly rounded and vectorizable (kernel.c.jinja)
                self.helpers.add("sg_tanhf")
                return "sg_tanhf(" + rest
            return (self.libm(head) + "(" + rest) if head in _LIBM else text
        return super()._print(expr, **kwargs)

    def _print_Pow(self, expr: sp.Pow) -> str:
        base, exponent = expr.args
        if exponent.is_Integer and 1 < abs(int(exponent)) <= 3:
            # parenthesized whole, so that it stays one factor after a division sign
            factor = self.parenthesize(base, precedence(expr))
            product = "(" + "*".join([factor] * abs(int(exponent))) + ")"
            return product if exponent > 0 else f"({self.literal(1)}/{product})"
        if exponent == -1:
            return f"{self.literal(1)}/{self.parenthesize(base, 1000)}"
        if exponent == sp.S.Half:
            return f"{self.libm('sqrt')}({self._print(base)})"
        return f"{self.libm('pow')}({self._print(base)}, {self._print(exponent)})"

    def _print_Max(self, expr: sp.Max) -> str:
        text = self._print(expr.args[0])
        for arg in expr.args[1:]:
            text = f"{self.libm('fmax')}({text}, {self._print(arg)})"
        return text

    def _print_Min(self, expr: sp.Min) -> str:
        text = self._print(expr.args[0])
        for arg in expr.args[1:]:
            text = f"{self.libm('fmin')}({text}, {self._print(arg)})"
        return text

    def _print_erf(self, expr: sp.Expr) -> str:
        return f"{self.libm('erf')}({self._print(expr.args[0])})"

    def _print_Pi(self, expr: sp.Expr) -> str:
        return self.literal(float(sp.pi))  # M_PI is not C99


def preferred_backends(program: Program, backends: tuple[str, ...]) -> list[str]:
    """The built backends, fastest first: what ``import <name>`` and ``backend="auto"`` take.

    C first while a network has at most :data:`AUTO_C_MAX_PARAMETERS` parameters, NumPy first
    above (see the module docstring for the measurements behind the rule).
    """
    limit = AUTO_C_MAX_PARAMETERS[program.spec.dtype]
    order = ("c", "numpy") if program.spec.n_parameters <= limit else ("numpy", "c")
    return [b for b in order if b in backends]


def emit_c(program: Program, initial: np.ndarray, gradients: Gradients) -> dict[str, bytes]:
    """``<name>.h``, ``<name>.c``, ``c_backend.c`` and ``c_backend.py`` for ``program``.

    The package must also hold the NumPy module (``numpy_backend.py``), whose constants and
    FORMULAS the C module re-exports.
    """
    spec = program.spec
    if not _PARAMETER_NAME.fullmatch(spec.name):
        raise InternalError(f"spec name {spec.name!r} is not a C identifier")
    if isinstance(program, ScalarProgram) and spec.n_parameters > C_SCALAR_MAX:
        program = optimize(gradients, "vector")
    printer = CCodePrinter(spec.dtype)
    try:
        if isinstance(program, ScalarProgram):
            body = _scalar_context(program, printer)
        elif isinstance(program, VectorProgram):
            body = _vector_context(program, printer)
        else:
            raise InternalError(f"the C emitter got a {type(program).__name__}")
    except sp.printing.codeprinter.PrintMethodNotImplementedError as error:
        raise BuildError(f"the C backend cannot print a formula of this spec ({error}); "
                         "build with --backend numpy") from None
    context = {
        "meta": provenance(program),
        "spec": spec,
        "name": spec.name,
        "guard": f"SYMGRAD_{spec.name.upper()}_H",
        "real": "float" if spec.dtype == "float32" else "double",
        "f": "f" if spec.dtype == "float32" else "",
        "F": "F" if spec.dtype == "float32" else "",
        "dtype": spec.dtype,
        "npy_type": "NPY_FLOAT32" if spec.dtype == "float32" else "NPY_FLOAT64",
        "n_inputs": spec.n_inputs,
        "n_outputs": spec.n_outputs,
        "n_parameters": spec.n_parameters,
        "learning_rate": printer.literal(spec.optimizer.learning_rate),
        "optimizer": _optimizer_context(spec, printer),
        "penalties": _penalties_context(spec, printer),
        "mean": spec.loss.reduction == "mean",
        "names": _parameter_name_table(program),
        "frozen": [spec.parameter_names.index(name) for name in spec.frozen],
        "trainable_runs": _trainable_runs(spec),
        "helpers": sorted(printer.helpers | ({"sg_sign"} if any(l1 for _, _, l1, _, _ in spec.penalized_slices())
                                              else set())),
        "extension": EXTENSION,
        **body,
    }
    for name in context["helpers"]:
        if not name.startswith("sg_"):
            raise InternalError(f"unknown C helper {name!r}")
    files = {
        f"{spec.name}.h": _TEMPLATES.get_template("kernel.h.jinja").render(context),
        f"{spec.name}.c": _TEMPLATES.get_template("kernel.c.jinja").render(context),
        "c_backend.c": _TEMPLATES.get_template("c_backend.c.jinja").render(context),
        "c_backend.py": _TEMPLATES.get_template("c_backend.py.jinja").render(context),
    }
    return {path: text.encode() for path, text in files.items()}


def _optimizer_context(spec, printer: CCodePrinter) -> dict[str, Any]:
    """The optimizer's rule and its constants (:meth:`Optimizer.constants`) as C literals."""
    opt = spec.optimizer
    layout = opt.state_layout(spec.n_parameters)
    constants = {name: printer.literal(value) if value is not None else None
                 for name, value in opt.constants().items()}
    return {
        "name": opt.name,
        "stateful": opt.stateful,
        "nesterov": opt.nesterov,
        "doc": opt.rule.doc,
        "state_layout": layout,
        "state_size": sum(length for _, _, length in layout),
        **constants,
    }


def _penalties_context(spec, printer: CCodePrinter) -> list[dict[str, Any]]:
    """Each layer's l1/l2 penalty over its theta range, with the constants the NumPy backend uses."""
    double = CCodePrinter("float64").literal  # refuses inf and nan, like every literal
    penalties = []
    for start, stop, l1, l2, k in spec.penalized_slices():
        penalties.append({"start": start, "stop": stop, "layer": k + 1,
                          # the loss is accumulated in double; the gradient in the kernel's real
                          "l1": double(l1) if l1 else None, "l2": double(l2) if l2 else None,
                          "l1_real": printer.literal(l1) if l1 else None,
                          "two_l2": printer.literal(2 * l2) if l2 else None})
    return penalties


def _trainable_runs(spec) -> list[tuple[int, int]]:
    """[start, stop) ranges of theta that the optimizer updates (everything but the frozen)."""
    frozen = sorted(spec.parameter_names.index(name) for name in spec.frozen)
    runs, start = [], 0
    for index in frozen + [spec.n_parameters]:
        if index > start:
            runs.append((start, index))
        start = index + 1
    return runs


def _parameter_name_table(program: Program) -> dict[str, Any]:
    """How ``<name>_parameter_name`` finds a name: a table of the names, or, for a layer whose
    names symgrad generated, the pattern W{k}_{j}_{i} / b{k}_{j} filled in at run time."""
    from ..numpy import name_groups

    spec = program.spec
    groups = []
    offset = 0
    for group in name_groups(spec):
        if "pattern" in group:
            loops = group["loops"]
            count = int(np.prod([n for _, n in loops]))
            # W{k}_{j}_{i} -> the letter and layer number before the indices
            head = group["pattern"].split("_{")[0]
            if not _PARAMETER_NAME.fullmatch(head):
                raise InternalError(f"unexpected name pattern {group['pattern']!r}")
            groups.append({"start": offset, "stop": offset + count, "head": head,
                           "inner": loops[1][1] if len(loops) == 2 else 0})
        else:
            names = group["names"]
            for name in names:
                if not _PARAMETER_NAME.fullmatch(name):
                    raise InternalError(f"parameter name {name!r} is not an identifier")
            count = len(names)
            groups.append({"start": offset, "stop": offset + count, "names": names})
        offset += count
    if offset != spec.n_parameters:
        raise InternalError("parameter name groups do not cover theta")
    return {"groups": groups, "numbered": any("head" in g for g in groups)}


def _scalar_context(program: ScalarProgram, printer: CCodePrinter) -> dict[str, Any]:
    gradient = []
    for entry in program.gradient:
        products = [printer.doprint(delta) if dnet_dp == 1 else f"{printer.doprint(delta)}*{printer.doprint(dnet_dp)}"
                    for delta, dnet_dp in entry.terms]
        gradient.append({"index": entry.index, "name": entry.name,
                         "local": "dE_" + printer.doprint(program.parameters[entry.index]),
                         "expr": " + ".join(products) if products else printer.literal(0)})
    statements = sum(len(b.assignments) for b in program.forward + program.backward) + len(gradient)
    return {
        "form": "scalar",
        **scalar_names(program, printer),
        "gradient": gradient,
        "statements": statements,
        "scratch": 0,
    }


def _vector_context(program: VectorProgram, printer: CCodePrinter) -> dict[str, Any]:
    layers = []
    offset = 0
    for plan in program.layers:
        k = plan.index + 1
        rule = plan.rule
        names = {Z: f"z{k}[j]", A: f"a{k}[j]", T: "t[j]", LOGP: "logp"}
        local = CCodePrinter(printer.dtype, names)
        layer: dict[str, Any] = {
            "k": k,
            "n_in": plan.n_in,
            "n_out": plan.n_out,
            "w_start": plan.weight_offset,
            "b_start": plan.bias_offset,
            "bias_mode": plan.bias_mode,
            "input": "x" if plan.index == 0 else f"a{plan.index}",
            "activation": rule.activation,
            "units": ", ".join(plan.units[:4]) + (", ..." if len(plan.units) > 4 else ""),
            "forward": local.doprint(rule.forward) if rule.forward is not None else None,
            "derivative": local.doprint(rule.derivative) if rule.derivative is not None else None,
            # work layout: Z, A, D of each layer for a block of examples, one after the other
            "z_offset": offset,
            "a_offset": offset + BLOCK * plan.n_out,
            "d_offset": offset + 2 * BLOCK * plan.n_out,
        }
        offset += 3 * BLOCK * plan.n_out
        if rule.activation == "softmax":
            layer["s_offset"] = offset  # largest net input and log(sum of exp) of each example
            offset += 2 * BLOCK
        layer.update(output_rules(rule, local))
        printer.helpers |= local.helpers
        layers.append(layer)
    for layer in layers:  # W^T of every layer, after the blocks' activations
        layer["wt_offset"] = offset
        offset += layer["n_in"] * layer["n_out"]
    return {"form": "vector", "layers": layers, "scratch": offset, "statements": 0,
            "block": BLOCK, "transpose_min": TRANSPOSE_MIN}

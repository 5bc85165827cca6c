"""The C backend: prints a :class:`Program` as a standalone C99 kernel plus a CPython extension.

Files of a generated package (``<name>`` is the spec's name)::

    <name>.h, <name>.c   the kernel: C99, only <math.h>; no malloc, no globals, no Python; the
                         caller owns every buffer.  forward, loss, gradient, step and the whole
                         training loop (``<name>_train``) are kernel functions.
    c_backend.c          the extension glue: argument checks, then one kernel call.
    c_backend.py         the generated-module contract (DESIGN.md section 5): constants, FORMULAS
                         and initial values from the NumPy module of the same package.
    _c_kernel<EXT>       the compiled extension (added by :mod:`symgrad.compiler`).

A :class:`ScalarProgram` is printed as straight-line C per example (named locals, the chain rule
top to bottom), a :class:`VectorProgram` as loops over each layer's units, BLOCK examples at a
time.  The optimizer's update follows the table in :mod:`symgrad.optimizers` operation for
operation as the NumPy backend does, so the two agree to rounding.  Why these choices, and the
measurements behind BLOCK, TRANSPOSE_MIN and the C/NumPy policy: docs/c-backend.md.
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
from ...layout import name_groups
from ...naming import gradient_local
from ...optimizers import epoch_index
from ...program import SCALAR_LIMIT, Program, ScalarProgram, VectorProgram
from ...rules import LOGP, A, T, Z
from ...templates import template_environment
from ..common import output_rules, provenance, scalar_names
from . import float_math

#: Examples whose activations the vector-form kernel keeps at once (docs/c-backend.md): 32 is
#: 2 % faster than 16 on digits, but doubles the block's work space, which an exported kernel
#: pays in a small device's RAM (digits: 8 KB more to predict); 16 it is.
BLOCK = 16

#: Bytes to which each row of a transposed weight matrix W^T is padded (with zeros): the tiled
#: matrix loops then run over whole vectors of any width up to 512 bits, and each tile handles
#: TILE_VECTORS such rows' worth of outputs.
PAD_BYTES = 64
TILE_VECTORS = 2

#: Batches of at least this many examples transpose the weights first (module docstring).
TRANSPOSE_MIN = 2

#: The extension module's name inside a generated package.
EXTENSION = "_c_kernel"

_TEMPLATES = template_environment(Path(__file__).parent)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_LIBM = frozenset({"exp", "log", "tanh", "fabs", "sqrt", "pow", "fmax", "fmin", "log1p", "erf"})
#: the math functions the templates call by name (context ``math``)
_TEMPLATE_MATH = ("exp", "log", "log1p", "sqrt", "pow", "fabs")


class CCodePrinter(C99CodePrinter):
    """Prints expressions as C99 in the kernel's ``real`` type; refuses what it cannot spell.

    ``names`` renames symbols (the template symbols of layer rules become array elements).
    For float32, literals get an ``F`` suffix and every function is float-only: the kernel's
    own (float_math.h) where libm's result could differ between targets, else libm's exact ``f``
    variants (sqrtf, fabsf, fmaxf, fminf), so nothing is computed in double.
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
        """The C function for libm's ``name`` in this kernel's type."""
        if not self.single:
            return name
        return float_math.REPLACES.get(name, name + "f")

    # -- functions: the rule table's C spelling --------------------------------------------------
    def _print(self, expr: Any, **kwargs: Any) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is not None:
            if spelling.c_helper:
                self.helpers.add(spelling.c_helper)
            text = spelling.c.format(*(self._print(arg) for arg in expr.args))
            head, _, rest = text.partition("(")
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


def emit_c(program: Program, initial: np.ndarray) -> dict[str, bytes]:
    """``<name>.h``, ``<name>.c``, ``c_backend.c`` and ``c_backend.py`` for ``program`` (its C form).

    The package must also hold the NumPy module (``numpy_backend.py``), whose constants and
    FORMULAS the C module re-exports.
    """
    spec = program.spec
    if not _PARAMETER_NAME.fullmatch(spec.name):
        raise InternalError(f"spec name {spec.name!r} is not a C identifier")
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
    real_size = 4 if spec.dtype == "float32" else 8
    optimizer = _optimizer_context(spec, printer)
    predict_work = body["layers"][0]["wt_offset"] if body["form"] == "vector" else 0
    context = {
        "meta": provenance(program),
        "spec": spec,
        "name": spec.name,
        "NAME": spec.name.upper(),
        "real_size": real_size,
        "math": {name: printer.libm(name) for name in _TEMPLATE_MATH},
        "budget": memory_budget(spec.n_parameters, optimizer["state_size"], spec.n_parameters + body["scratch"],
                                predict_work, real_size),
        "predict_work": predict_work,
        "float_math": "",
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
        "schedule": spec.optimizer.schedule,
        "epoch_index": epoch_index(optimizer["state_layout"]),
        "optimizer": optimizer,
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
    kernel = _TEMPLATES.get_template("kernel.c.jinja").render(context)
    if spec.dtype == "float32":  # paste in the float-only math the kernel calls (float_math.py)
        context["float_math"] = float_math.source_for(kernel)
        kernel = _TEMPLATES.get_template("kernel.c.jinja").render(context)
    files = {
        f"{spec.name}.h": _TEMPLATES.get_template("kernel.h.jinja").render(context),
        f"{spec.name}.c": kernel,
        "c_backend.c": _TEMPLATES.get_template("c_backend.c.jinja").render(context),
        "c_backend.py": _TEMPLATES.get_template("c_backend.py.jinja").render(context),
    }
    return {path: text.encode() for path, text in files.items()}


def memory_budget(n_parameters: int, state: int, scratch: int, predict: int, real_size: int) -> list[dict[str, Any]]:
    """What a device needs to train and to predict, in reals and bytes (the header's comment,
    and what ``export`` prints); the data buffers come on top."""
    items = [("parameters (theta)", n_parameters), ("optimizer state", state),
             ("scratch of step and train, any batch size", scratch),
             ("to train: theta + state + scratch", n_parameters + state + scratch),
             ("to predict only: theta + predict work", n_parameters + predict)]
    return [{"what": what, "reals": reals, "bytes": reals * real_size} for what, reals in items]


def _optimizer_context(spec, printer: CCodePrinter) -> dict[str, Any]:
    """The optimizer's rule and its constants (:meth:`Optimizer.constants`) as C literals."""
    opt = spec.optimizer
    layout = opt.state_layout(spec.n_parameters)
    constants = {name: printer.literal(value) if value is not None else None
                 for name, value in opt.constants().items()}
    return {
        "name": opt.name,
        "decoupled_weight_decay": printer.literal(opt.weight_decay) if opt.name == "adamw" else None,
        "stateful": opt.stateful,
        "nesterov": opt.nesterov,
        "doc": opt.rule.doc,
        "state_layout": layout,
        "state_size": sum(length for _, _, length in layout),
        **constants,
    }


def _penalties_context(spec, printer: CCodePrinter) -> list[dict[str, Any]]:
    """Each layer's l1/l2 penalty over its theta range, with the constants the NumPy backend uses."""
    penalties = []
    for start, stop, l1, l2, k in spec.penalized_slices():
        penalties.append({"start": start, "stop": stop, "layer": k + 1,
                          "l1": bool(l1), "l2": bool(l2),
                          "l1_real": printer.literal(l1) if l1 else None,
                          "l2_real": printer.literal(l2) if l2 else None,
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
    names symgrad generated, its head (W{k} or b{k}) and the indices filled in at run time."""
    spec = program.spec
    groups = []
    offset = 0
    for group in name_groups(spec.layers):
        if "head" in group:
            loops = group["loops"]
            count = int(np.prod([n for _, n in loops]))
            groups.append({"start": offset, "stop": offset + count, "head": group["head"],
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
                         "local": gradient_local(printer.doprint(program.parameters[entry.index])),
                         "expr": " + ".join(products) if products else printer.literal(0)})
    statements = sum(len(b.assignments) for b in program.forward + program.backward) + len(gradient)
    return {
        "form": "scalar",
        # the training loop with theta in registers prints the example's statements twice more; only
        # for the networks that get the scalar form by default (a larger one, forced, would compile
        # several times slower: 280 parameters, 0.8 s -> 3.3 s)
        "register_loop": program.spec.n_parameters <= SCALAR_LIMIT,
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
    pad = PAD_BYTES // (4 if printer.dtype == "float32" else 8)
    for layer in layers:  # W^T of every layer (rows padded to whole vectors), after the blocks' activations
        n_pad = -(-layer["n_out"] // pad) * pad
        layer["n_pad"] = n_pad
        # the tiles' widths: TILE_VECTORS padded vectors each, and one narrower tile at the end if needed
        layer["chunks"] = [(start, min(TILE_VECTORS * pad, n_pad - start))
                           for start in range(0, n_pad, TILE_VECTORS * pad)]
        layer["wt_offset"] = offset
        offset += layer["n_in"] * n_pad
    for layer in layers:  # backward tiles run over unpadded rows (of W and of the inputs): whole tiles only
        layer["d_chunks"], layer["d_tail"] = _full_chunks(layer["n_out"], pad)
        layer["g_chunks"], layer["g_tail"] = _full_chunks(layer["n_in"], pad)
    for layer in layers:  # each kind of tile as a loop over the wide ones and at most one narrow one
        for key in ("chunks", "d_chunks", "g_chunks"):
            layer[key + "_loop"] = _tile_loop(layer[key], TILE_VECTORS * pad)
    tiles = sorted({width for layer in layers for _, width in layer["chunks"]}
                   | {width for layer in layers[:-1] for _, width in layer["d_chunks"]})
    outers = sorted({width for layer in layers for _, width in layer["g_chunks"]})
    return {"form": "vector", "layers": layers, "scratch": offset, "statements": 0,
            "block": BLOCK, "transpose_min": TRANSPOSE_MIN, "tile_widths": tiles, "outer_widths": outers}


def _full_chunks(n: int, pad: int) -> tuple[list[tuple[int, int]], int]:
    """Tiles (start, width) of TILE_VECTORS*pad, then one of pad, that fit in n values; and where the
    rest (done without tiles) starts."""
    chunks, start = [], 0
    while start + TILE_VECTORS * pad <= n:
        chunks.append((start, TILE_VECTORS * pad))
        start += TILE_VECTORS * pad
    if start + pad <= n:
        chunks.append((start, pad))
        start += pad
    return chunks, start


def _tile_loop(chunks: list[tuple[int, int]], wide: int) -> dict[str, Any]:
    """The template's view of a row of tiles: the wide ones as a loop (``end``: where it stops, 0 for
    none) and the narrow one after them (``tail``: (start, width) or None).  One call site per tile
    width keeps the kernel small and quick to compile (784-256-10 has 25 tiles per row of dE/dW1)."""
    end = sum(width for _, width in chunks if width == wide)
    tail = next(((start, width) for start, width in chunks if width != wide), None)
    return {"end": end, "wide": wide, "tail": tail}

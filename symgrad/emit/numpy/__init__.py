"""The NumPy backend: prints a :class:`Program` as a Python module that needs only NumPy.

Scalar programs become straight-line code over whole columns (one array per unit, one entry
per example), so the module reads like the walk-through it came from.  Vector programs become
matrix products per layer.  Either way there is no Python loop over examples or units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ... import rules
from ...errors import InternalError
from ...layout import name_groups
from ...naming import code_name
from ...optimizers import epoch_index
from ...program import Program, ScalarProgram, VectorProgram
from ...rules import LOGP, A, T, Z
from ...templates import template_environment
from ..common import output_rules, provenance, scalar_names

#: Above this many parameters the initial values go to initial.npy instead of the source.
INLINE_INITIAL_LIMIT = 1024

_TEMPLATES = template_environment(Path(__file__).parent)


class NumPyCodePrinter(NumPyPrinter):
    """Prints expressions as NumPy code; refuses (strict) anything it has no spelling for.

    ``names`` renames symbols (template symbols of layer rules become array names).
    """

    def __init__(self, names: dict[sp.Symbol, str] | None = None) -> None:
        super().__init__({"strict": True})
        self.names = names or {}
        self.helpers: set[str] = set()

    def _print(self, expr: Any, **kwargs: Any) -> str:
        spelling = rules.SPELLINGS.get(type(expr))
        if spelling is not None:
            if spelling.numpy_helper:
                self.helpers.add(spelling.numpy_helper)
            return spelling.numpy.format(*(self._print(arg) for arg in expr.args))
        return super()._print(expr, **kwargs)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr, expr.name)

    def _module_format(self, fqn: str, register: bool = True) -> str:
        # Generated modules import numpy as np (constants such as numpy.pi come through here).
        return "np." + fqn[len("numpy."):] if fqn.startswith("numpy.") else super()._module_format(fqn, register)

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exponent = expr.args
        if exponent == -1:
            return f"1/{self.parenthesize(base, 1000)}"
        if exponent.is_Integer and exponent < 0:
            return f"1/{self.parenthesize(base, 1000)}**{-exponent}"
        if exponent == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exponent == -sp.Rational(1, 2):
            return f"1/np.sqrt({self._print(base)})"
        return super()._print_Pow(expr, rational)

    def _print_Max(self, expr: sp.Max) -> str:
        return self._nested("np.maximum", expr.args)

    def _print_Min(self, expr: sp.Min) -> str:
        return self._nested("np.minimum", expr.args)

    def _nested(self, function: str, args: tuple[sp.Expr, ...]) -> str:
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{function}({text}, {self._print(arg)})"
        return text


def emit_numpy(program: Program, initial: np.ndarray) -> dict[str, bytes]:
    """``numpy_backend.py`` (and ``initial.npy`` for large networks) for ``program``."""
    spec = program.spec
    dtype = np.dtype(spec.dtype)
    files: dict[str, bytes] = {}
    inline = spec.n_parameters <= INLINE_INITIAL_LIMIT
    if not inline:
        files["initial.npy"] = _npy_bytes(initial.astype(dtype))
    printer = NumPyCodePrinter()
    if isinstance(program, ScalarProgram):
        body = _scalar_context(program, printer)
    elif isinstance(program, VectorProgram):
        body = _vector_context(program, printer)
    else:
        raise InternalError(f"the NumPy emitter got a {type(program).__name__}")
    frozen = set(spec.frozen)
    layout = spec.optimizer.state_layout(spec.n_parameters)
    context = {
        "meta": provenance(program),
        "spec": spec,
        "dtype": spec.dtype,
        "parameter_names": spec.parameter_names,
        "name_groups": name_groups(spec.layers),
        "frozen": spec.frozen,
        "trainable_mask": [0 if name in frozen else 1 for name in spec.parameter_names] if frozen else None,
        "initial": [repr(float(v)) for v in initial.astype(dtype)] if inline else None,
        "opt": spec.optimizer,
        "constants": spec.optimizer.constants(),
        "plain_sgd": spec.optimizer.plain,
        "penalties": [{"start": a, "stop": b, "l1": l1, "l2": l2, "layer": k + 1}
                      for a, b, l1, l2, k in spec.penalized_slices()],
        "optimizer_options": spec.optimizer.option_values(),
        "optimizer_doc": spec.optimizer.rule.doc,
        "state_layout": layout,
        "state_size": sum(length for _, _, length in layout),
        "schedule": spec.optimizer.schedule,
        "epoch_index": epoch_index(layout),
        "mean": spec.loss.reduction == "mean",
        "helpers": sorted(printer.helpers),
        "formulas": {"kind": program.formulas.kind, "texts": dict(program.formulas.texts),
                     "layers": program.formulas.layers},
        # each layer's inputs as FORMULAS names them: the network's inputs, then the units' outputs
        "formula_inputs": [spec.inputs] + [[code_name("out", u) for u in layer.units] for layer in spec.layers[:-1]],
        **body,
    }
    files["numpy_backend.py"] = _TEMPLATES.get_template("module.py.jinja").render(context).encode()
    return files


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _scalar_context(program: ScalarProgram, printer: NumPyCodePrinter) -> dict[str, Any]:
    gradient_lines = []
    for entry in program.gradient:
        reductions = []
        for delta, dnet_dp in entry.terms:
            if dnet_dp == 1:
                reductions.append(f"{printer.doprint(delta)}.sum()")
            else:
                reductions.append(f"np.dot({printer.doprint(delta)}, {printer.doprint(dnet_dp)})")
        gradient_lines.append({"index": entry.index, "expr": " + ".join(reductions), "name": entry.name,
                               "formula": " + ".join(f"{printer.doprint(d)}*{printer.doprint(x)}"
                                                     if x != 1 else printer.doprint(d) for d, x in entry.terms)})
    return {
        "form": "scalar",
        **scalar_names(program, printer),
        **_broadcast_constants(program, printer),
        "gradient": gradient_lines,
    }


def _broadcast_constants(program: ScalarProgram, printer: NumPyCodePrinter) -> dict[str, Any]:
    """The forward and backward blocks and the loss, where a value that does not depend on the
    example (a constant activation, a zero derivative) is made a column like every other value,
    so that sums over the batch count it once per example."""
    per_example = set(program.inputs) | set(program.targets)

    def column(target: sp.Symbol | None, expr: sp.Expr) -> str:
        text = printer.doprint(expr)
        if expr.free_symbols & per_example:
            per_example.add(target)
            return text
        per_example.add(target)
        return f"np.full(X.shape[0], {text}, dtype=DTYPE)"

    def blocks(parts):
        return [{"title": block.title,
                 "lines": [{"target": printer.doprint(a.target), "expr": column(a.target, a.expr), "comment": a.comment}
                           for a in block.assignments]}
                for block in parts]

    forward = blocks(program.forward)
    return {"forward": forward, "loss": column(None, program.loss.expr), "backward": blocks(program.backward)}


def _vector_context(program: VectorProgram, printer: NumPyCodePrinter) -> dict[str, Any]:
    layers = []
    for plan in program.layers:
        k = plan.index + 1
        rule = plan.rule
        names = {Z: f"z{k}", A: f"a{k}", T: "Tt", LOGP: f"logp{k}"}  # Tt: T.T, one example per column
        local = NumPyCodePrinter(names)
        layer: dict[str, Any] = {
            "k": k,
            "n_in": plan.n_in,
            "n_out": plan.n_out,
            "w_start": plan.weight_offset,
            "w_stop": plan.bias_offset,
            "bias_mode": plan.bias_mode,
            "b_start": plan.bias_offset,
            "b_stop": plan.bias_stop,
            "input": "Xt" if plan.index == 0 else f"a{plan.index}",
            "activation": rule.activation,
            # a hidden relu layer keeps a in z's buffer: its derivative only asks z > 0, which is a > 0
            "relu_in_place": rule.activation == "relu" and plan.index < len(program.layers) - 1,
            "units": ", ".join(plan.units[:4]) + (", ..." if len(plan.units) > 4 else ""),
            "forward": _elementwise(local, rule.forward, f"z{k}"),
            "derivative": local.doprint(rule.derivative) if rule.derivative is not None else None,
        }
        layer.update(output_rules(rule, local))
        for key in ("loss", "delta", "softmax_h"):  # a constant must still be one value per example and unit
            expr = getattr(rule, key)
            if layer.get(key) is not None and expr is not None and not expr.free_symbols:
                layer[key] = _elementwise(local, expr, f"z{k}")
        printer.helpers |= local.helpers
        layers.append(layer)
    counts = program.op_counts  # multiply-adds per example in the products: what BLAS threads could share
    return {"form": "vector", "layers": layers, "multiply_adds": counts["forward"] + counts["backward"]}


def _elementwise(printer: NumPyCodePrinter, expr: sp.Expr | None, like: str) -> str | None:
    """An elementwise rule as NumPy; a constant one (``{"expr": "3"}``) as an array shaped like ``like``."""
    if expr is None:
        return None
    text = printer.doprint(expr)
    return text if expr.free_symbols else f"np.full_like({like}, {text})"

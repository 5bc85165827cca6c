"""A spec and theta -> an ONNX inference graph equal to the generated module's ``forward``.

Input ``X`` (examples, inputs) and output ``Y`` (examples, outputs) in the spec's dtype, with
a free batch dimension.  Each layer is one ``Gemm`` (``X W^T + b``; a shared bias is a scalar
that Gemm broadcasts) and its activation lowered to standard operators (softmax is ``Softmax``
on the last axis).  softplus is built from Relu/Abs/Exp/Log, which every runtime has in both
dtypes.  The bytes are deterministic: the same spec and theta give the same file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import SpecError
from ..spec import Spec
from ..version import __version__
from .lowering import activation_expr, lower
from .parameters import checked_theta, layer_arrays

#: The ONNX operator set the graph uses (Softmax on one axis needs 13; 17 is widely supported).
OPSET = 17


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise SpecError("--target onnx", "the ONNX export needs the onnx package, which is not installed",
                        "install it with pip install 'symgrad[onnx]'") from None
    return onnx


class _GraphTarget:
    """The operations of :mod:`symgrad.interop.lowering` as ONNX nodes; a value is (name, constant)."""

    def __init__(self, onnx: Any, dtype: np.dtype, prefix: str) -> None:
        self.onnx, self.dtype, self.prefix = onnx, dtype, prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, what: str) -> str:
        self._count += 1
        return f"{self.prefix}_{what}_{self._count}"

    def constant(self, value: float) -> tuple[str, float]:
        name = self._name("const")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.array(value, dtype=self.dtype), name))
        return name, value

    def node(self, op: str, inputs: list[str], **attributes: Any) -> tuple[str, None]:
        output = self._name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], **attributes))
        return output, None

    def apply(self, operation: str, *args: tuple[str, Any]) -> tuple[str, Any]:
        names = [name for name, _ in args]
        if operation == "softplus":  # relu(x) + log(1 + exp(-|x|)): no overflow, and both dtypes everywhere
            x = names[0]
            decay = self.node("Exp", [self.node("Neg", [self.node("Abs", [x])[0]])[0]])[0]
            tail = self.node("Log", [self.node("Add", [self.constant(1.0)[0], decay])[0]])[0]
            return self.node("Add", [self.node("Relu", [x])[0], tail])
        if operation == "leaky_relu":  # x > 0 ? x : slope*x; LeakyRelu's alpha attribute is only a float32
            x, slope = names
            positive = self.node("Greater", [x, self.constant(0.0)[0]])[0]
            return self.node("Where", [positive, x, self.node("Mul", [slope, x])[0]])
        simple = {"add": "Add", "mul": "Mul", "pow": "Pow", "reciprocal": "Reciprocal", "sqrt": "Sqrt", "exp": "Exp",
                  "log": "Log", "tanh": "Tanh", "abs": "Abs", "erf": "Erf", "sign": "Sign", "maximum": "Max",
                  "minimum": "Min", "sigmoid": "Sigmoid", "relu": "Relu"}
        return self.node(simple[operation], names)


def to_onnx(spec: Spec, theta: np.ndarray | None) -> bytes:
    onnx = _onnx()
    import sympy as sp

    dtype = np.dtype(spec.dtype)
    theta = checked_theta(spec, theta, "--init")
    element = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    target = _GraphTarget(onnx, dtype, "t")
    x = sp.Symbol("x", real=True)
    current = "X"
    for k, (layer, (weights, biases)) in enumerate(zip(spec.layers, layer_arrays(spec, theta))):
        inputs = [current, f"W{k}"]
        target.initializers.append(onnx.numpy_helper.from_array(weights.astype(dtype), f"W{k}"))
        if layer.bias_mode != "none":
            target.initializers.append(onnx.numpy_helper.from_array(biases.astype(dtype), f"b{k}"))
            inputs.append(f"b{k}")
        target.nodes.append(onnx.helper.make_node("Gemm", inputs, [f"net{k}"], transB=1))
        if layer.activation.name == "softmax":
            current = target.node("Softmax", [f"net{k}"], axis=-1)[0]
        else:
            expression = activation_expr(layer.activation, x)
            current = f"net{k}" if expression == x else lower(expression, {x: (f"net{k}", None)}, target)[0]
    target.nodes.append(onnx.helper.make_node("Identity", [current], ["Y"]))
    graph = onnx.helper.make_graph(
        target.nodes, spec.name,
        [onnx.helper.make_tensor_value_info("X", element, ["batch", spec.n_inputs])],
        [onnx.helper.make_tensor_value_info("Y", element, ["batch", spec.n_outputs])],
        initializer=target.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="symgrad", producer_version=__version__,
                                   doc_string=f"forward pass of the symgrad spec {spec.name} ({spec.source_hash[:12]})")
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    onnx.helper.set_model_props(model, {"symgrad.spec_hash": spec.source_hash,
                                        "symgrad.parameter_names": ",".join(spec.parameter_names)})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)

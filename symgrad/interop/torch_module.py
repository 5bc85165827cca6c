"""A spec and theta -> a ``torch.nn.Module`` with the same outputs and gradients, and back.

Weights are one tensor per layer (unit j's row j, as in ``weights[j][i]``), a shared bias is
one scalar broadcast over the layer, so shared parameters stay shared under autograd.  A
tensor whose entries are all frozen is a buffer; one with some frozen entries is a parameter
whose frozen entries are taken from a buffer (``torch.where``), so they never receive a
gradient.  torch is imported here only, when the user calls :func:`symgrad.to_torch`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import SpecError
from ..spec import Spec, parse_spec
from .lowering import activation_expr, loss_parts, lower
from .parameters import checked_theta, layer_arrays


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SpecError("to_torch", "PyTorch is not installed",
                        "install it (pip install torch); symgrad never depends on it") from None
    return torch


def _spec(spec: Any) -> Spec:
    return spec if isinstance(spec, Spec) else parse_spec(spec)


class _TorchTarget:
    """The operations of :mod:`symgrad.interop.lowering` on torch tensors."""

    def __init__(self, torch: Any, dtype: Any) -> None:
        self.torch, self.dtype = torch, dtype

    def constant(self, value: float) -> Any:
        return self.torch.tensor(value, dtype=self.dtype)

    def apply(self, operation: str, *args: Any) -> Any:
        torch = self.torch
        if operation == "add":
            return args[0] + args[1]
        if operation == "mul":
            return args[0] * args[1]
        if operation == "pow":
            return torch.pow(args[0], args[1])
        if operation == "reciprocal":
            return torch.reciprocal(args[0])
        if operation == "softplus":  # log(1 + e^x) = logaddexp(0, x): exact gradient sigmoid(x) everywhere
            return torch.logaddexp(torch.zeros_like(args[0]), args[0])
        if operation == "leaky_relu":
            return torch.nn.functional.leaky_relu(args[0], float(args[1]))
        functions = {"sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "abs": torch.abs,
                     "erf": torch.erf, "sign": torch.sign, "maximum": torch.maximum, "minimum": torch.minimum,
                     "sigmoid": torch.sigmoid, "relu": torch.relu}
        return functions[operation](*args)


def _module_class(torch: Any) -> type:
    class SymgradNetwork(torch.nn.Module):
        """The spec's network in torch: ``forward(X)`` gives the outputs, ``loss(X, T)`` the spec's loss."""

        def __init__(self, spec: Spec, theta: np.ndarray) -> None:
            super().__init__()
            import sympy as sp

            from ..model import build_model

            self.spec = spec
            self.dtype = torch.float32 if spec.dtype == "float32" else torch.float64
            self._target = _TorchTarget(torch, self.dtype)
            self._x = sp.Symbol("x", real=True)
            self._activations = [None if layer.activation.name == "softmax"
                                 else activation_expr(layer.activation, self._x) for layer in spec.layers]
            self._loss = loss_parts(build_model(spec))
            frozen = np.isin(np.arange(spec.n_parameters), [p.index for p in spec.parameters if p.name in spec.frozen])
            for k, ((weights, biases), (mask_w, mask_b)) in enumerate(zip(layer_arrays(spec, theta),
                                                                      layer_arrays(spec, frozen))):
                for key, values, mask in ((f"weight_{k}", weights, mask_w), (f"bias_{k}", biases, mask_b)):
                    if values is None:
                        continue
                    tensor = torch.tensor(values, dtype=self.dtype)
                    if mask.all():
                        self.register_buffer(key, tensor)
                    else:
                        self.register_parameter(key, torch.nn.Parameter(tensor))
                        if mask.any():
                            self.register_buffer(f"{key}_frozen_mask", torch.tensor(mask))
                            self.register_buffer(f"{key}_frozen_values", tensor.clone())

        def as_theta(self, value_of: Callable[[str], Any]) -> np.ndarray:
            """Per-layer tensors laid out as theta: ``value_of(key)`` for each ``weight_k``/``bias_k``
            (``self.tensor`` gives the parameters, a tensor's ``.grad`` the gradient)."""
            theta = np.zeros(self.spec.n_parameters)
            for k, (weights, biases) in enumerate(layer_arrays(self.spec, theta)):
                weights[...] = value_of(f"weight_{k}")
                if biases is not None:
                    biases[...] = value_of(f"bias_{k}")
            return theta

        def tensor(self, key: str) -> Any:
            """A layer's weight or bias as used: frozen entries from their buffer."""
            value = getattr(self, key)
            mask = getattr(self, f"{key}_frozen_mask", None)
            return value if mask is None else torch.where(mask, getattr(self, f"{key}_frozen_values"), value)

        def logits(self, X: Any) -> tuple[Any, Any]:
            """(net input, output) of the last layer."""
            a = torch.as_tensor(X, dtype=self.dtype)
            net = a
            for k, layer in enumerate(self.spec.layers):
                net = a @ self.tensor(f"weight_{k}").T
                if layer.bias_mode != "none":
                    net = net + self.tensor(f"bias_{k}")
                if self._activations[k] is None:
                    a = torch.softmax(net, dim=1)
                else:
                    a = lower(self._activations[k], {self._x: net}, self._target)
            return net, a

        def forward(self, X: Any) -> Any:
            return self.logits(X)[1]

        def loss(self, X: Any, T: Any) -> Any:
            """The spec's loss over the batch (its reduction), penalties included."""
            net, out = self.logits(X)
            term, o, t, z, log_o = self._loss
            values = {o: out, t: torch.as_tensor(T, dtype=self.dtype), z: net}
            if self.spec.layers[-1].activation.name == "softmax":
                values[log_o] = torch.log_softmax(net, dim=1)
            per_example = lower(term, values, self._target).sum(dim=1)
            total = per_example.mean() if self.spec.loss.reduction == "mean" else per_example.sum()
            for k, layer in enumerate(self.spec.layers):
                tensors = [self.tensor(f"weight_{k}")]
                if layer.regularize_bias and layer.bias_mode != "none":
                    tensors.append(self.tensor(f"bias_{k}"))
                for tensor in tensors:
                    if layer.l2:
                        total = total + layer.l2 * (tensor ** 2).sum()
                    if layer.l1:
                        total = total + layer.l1 * tensor.abs().sum()
            return total

    return SymgradNetwork


def to_torch(spec: Any, theta: Any = None) -> Any:
    torch = _torch()
    resolved = _spec(spec)
    return _module_class(torch)(resolved, checked_theta(resolved, theta, "theta"))


def from_torch(spec: Any, module: Any) -> np.ndarray:
    """theta from a module made by :func:`to_torch`, or from a ``torch.nn.Sequential`` whose
    ``Linear`` layers have this spec's sizes (bias or not as the spec says; no shared bias)."""
    torch = _torch()
    resolved = _spec(spec)
    theta = np.zeros(resolved.n_parameters, dtype=np.float64)
    if hasattr(module, "as_theta") and hasattr(module, "tensor"):
        return module.as_theta(lambda key: module.tensor(key).detach().cpu().numpy()).astype(resolved.dtype)
    modules = module.modules() if isinstance(module, torch.nn.Module) else ()
    linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
    if len(linears) != len(resolved.layers):
        raise SpecError("from_torch", f"the module has {len(linears)} Linear layer(s), the spec {len(resolved.layers)}",
                        "pass a module made by symgrad.to_torch, or a Sequential of one Linear per layer")
    for k, (layer, linear) in enumerate(zip(resolved.layers, linears)):
        if tuple(linear.weight.shape) != (layer.n_out, layer.n_in):
            raise SpecError(f"$.layers[{k}]", f"Linear layer {k} has weight shape {tuple(linear.weight.shape)}, "
                            f"the spec {(layer.n_out, layer.n_in)}", "build the module with the spec's sizes")
        if (linear.bias is None) != (layer.bias_mode == "none") or layer.bias_mode == "shared":
            raise SpecError(f"$.layers[{k}].bias", f'Linear layer {k} cannot hold a "{layer.bias_mode}" bias',
                            "use per_unit biases with Linear(bias=True), none with Linear(bias=False)")
    for (weights, biases), linear in zip(layer_arrays(resolved, theta), linears):
        weights[...] = linear.weight.detach().cpu().numpy()
        if biases is not None:
            biases[...] = linear.bias.detach().cpu().numpy()
    return theta.astype(resolved.dtype)

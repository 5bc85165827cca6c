"""Taking a network elsewhere: an ONNX inference graph and a PyTorch module.

Both read the network from the resolved :class:`~symgrad.spec.Spec` (sizes, activations, bias
sharing, theta's order) and lower each activation's SymPy expression through one table of
elementwise operations (:mod:`symgrad.interop.lowering`), so a custom formula becomes ONNX
operators or torch functions, never text to evaluate.  ``onnx`` and ``torch`` are optional and
imported only when these functions are called.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def to_torch(spec: Any, theta: np.ndarray | None = None) -> Any:
    """A ``torch.nn.Module`` with the outputs of ``forward`` and the gradients of ``gradient``."""
    from .torch_module import to_torch as build

    return build(spec, theta)


def from_torch(spec: Any, module: Any) -> np.ndarray:
    """theta (in ``PARAMETER_NAMES`` order) read back from a module made by :func:`to_torch`."""
    from .torch_module import from_torch as read

    return read(spec, module)


def to_onnx(spec: Any, theta: np.ndarray | None = None) -> bytes:
    """The serialized ONNX model of ``forward`` for ``spec`` with parameters ``theta``."""
    from .onnx_graph import to_onnx as build

    return build(spec, theta)



__all__ = ["to_torch", "from_torch", "to_onnx"]

"""Shared references for the tests: paths, DESIGN.md's numbers, small spec factories, and independent references.

Test modules import these from here (``from helpers import make_spec``), never from another test
module or from conftest.  The references (a forward pass and loss written directly from DESIGN.md
section 4, and central finite differences) share no code with symgrad's pipeline: they are what
its output is checked against.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MAZUR = EXAMPLES / "mazur.json"

# DESIGN.md section 6: the 2-2-2 walk-through network under plain simultaneous SGD, float64.
E0 = 0.298371108760003
W5_AFTER_ONE = 0.358916479717885
W1_AFTER_ONE = 0.149780716132763
E1 = 0.291027773693599
E_AFTER_10000 = 3.51018778297886e-05
OUTPUTS_AFTER_10000 = (0.0159136204435506, 0.984064273514624)


_names = itertools.count()


def make_spec(sizes: list[int], activations: list[str | dict[str, Any]], loss: str | dict[str, Any] = "half_sse",
              bias: str = "per_unit", **extra: Any) -> dict[str, Any]:
    """A spec dict for a fully connected network with the given layer sizes (inputs first)."""
    spec: dict[str, Any] = {
        "name": f"net{next(_names)}",
        "inputs": sizes[0],
        "layers": [{"units": n, "activation": a, "bias": bias} for n, a in zip(sizes[1:], activations)],
        "loss": loss,
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
    }
    spec.update(extra)
    return spec


# -- an independent reference implementation ----------------------------------------------------

def _activate(name: str, z: np.ndarray, slope: float) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "softplus":
        return np.log1p(np.exp(z))
    if name == "linear":
        return z
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def unpack(spec: dict[str, Any], theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None, str, float]]:
    """(W, b broadcastable or None, activation, slope) per layer, from DESIGN.md's theta layout."""
    layers = []
    n_in = spec["inputs"] if isinstance(spec["inputs"], int) else len(spec["inputs"])
    offset = 0
    for layer in spec["layers"]:
        n_out = layer["units"] if isinstance(layer["units"], int) else len(layer["units"])
        W = theta[offset:offset + n_out * n_in].reshape(n_out, n_in)
        offset += n_out * n_in
        mode = layer.get("bias", "per_unit")
        mode = mode if isinstance(mode, str) else mode["mode"]
        count = {"per_unit": n_out, "shared": 1, "none": 0}[mode]
        b = theta[offset:offset + count] if count else None
        offset += count
        activation = layer["activation"]
        name = activation if isinstance(activation, str) else activation["name"]
        slope = 0.01 if isinstance(activation, str) else activation.get("slope", 0.01)
        layers.append((W, b, name, slope))
        n_in = n_out
    assert offset == theta.size
    return layers


def reference_forward(spec: dict[str, Any], theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    a = X
    for W, b, name, slope in unpack(spec, theta):
        z = a @ W.T + (b if b is not None else 0.0)
        a = _activate(name, z, slope)
    return a


def reference_loss(spec: dict[str, Any], theta: np.ndarray, X: np.ndarray, T: np.ndarray) -> float:
    o = reference_forward(spec, theta, X)
    loss = spec["loss"]
    name = loss if isinstance(loss, str) else loss["name"]
    reduction = "mean" if isinstance(loss, str) else loss.get("reduction", "mean")
    smoothing = 0.0 if isinstance(loss, str) else loss.get("label_smoothing", 0.0)
    T = (1 - smoothing) * T + smoothing / T.shape[1]
    per_example = {
        "half_sse": lambda: 0.5 * ((T - o) ** 2).sum(axis=1),
        "sse": lambda: ((T - o) ** 2).sum(axis=1),
        "mse": lambda: ((T - o) ** 2).mean(axis=1),
        "cross_entropy": lambda: -(T * np.log(o)).sum(axis=1),
        "binary_cross_entropy": lambda: -(T * np.log(o) + (1 - T) * np.log(1 - o)).sum(axis=1),
    }[name]()
    total = float(per_example.mean() if reduction == "mean" else per_example.sum())
    for (W, b, _, _), layer in zip(unpack(spec, theta), spec["layers"]):
        covered = [W.ravel()] + ([b] if b is not None and layer.get("regularize_bias") else [])
        values = np.concatenate(covered)
        total += layer.get("l2", 0.0) * float(np.sum(values ** 2))
        total += layer.get("l1", 0.0) * float(np.sum(np.abs(values)))
    return total


def central_differences(f: Callable[[np.ndarray], float], theta: np.ndarray,
                        indices: np.ndarray | None = None) -> np.ndarray:
    """d f / d theta[k] by central differences in float64, step scaled to each coordinate."""
    theta = theta.astype(np.float64)
    result = np.zeros_like(theta)
    for k in (range(theta.size) if indices is None else indices):
        h = 1e-6 * max(1.0, abs(theta[k]))
        plus, minus = theta.copy(), theta.copy()
        plus[k] += h
        minus[k] -= h
        result[k] = (f(plus) - f(minus)) / (2 * h)
    return result


def random_problem(spec: dict[str, Any], module: Any, rows: int = 5, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random theta, inputs and targets suited to the spec's loss (probabilities where needed)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.7, module.N_PARAMETERS)
    X = rng.normal(0.0, 1.0, (rows, module.N_INPUTS))
    loss = spec["loss"] if isinstance(spec["loss"], str) else spec["loss"].get("name", "custom")
    if loss == "cross_entropy":
        T = rng.dirichlet(np.ones(module.N_OUTPUTS), rows)
    elif loss == "binary_cross_entropy":
        T = rng.uniform(0.0, 1.0, (rows, module.N_OUTPUTS))
    else:
        T = rng.normal(0.0, 1.0, (rows, module.N_OUTPUTS))
    dtype = module.DTYPE
    return theta.astype(dtype), X.astype(dtype), T.astype(dtype)


def assert_gradient_matches(spec: dict[str, Any], module: Any, rows: int = 5, seed: int = 0,
                            indices: np.ndarray | None = None) -> None:
    """The generated gradient equals central differences of the independent reference loss."""
    theta, X, T = random_problem(spec, module, rows, seed)
    loss, grad = module.gradient(theta, X, T)
    expected_loss = reference_loss(spec, theta, X, T)
    assert loss == pytest.approx(expected_loss, rel=1e-10, abs=1e-12), "loss differs from the reference"
    numeric = central_differences(lambda t: reference_loss(spec, t, X, T), theta, indices)
    chosen = np.arange(theta.size) if indices is None else indices
    scale = max(1.0, float(np.max(np.abs(numeric[chosen]))))
    error = np.abs(grad[chosen] - numeric[chosen])
    worst = int(np.argmax(error))
    name = module.PARAMETER_NAMES[chosen[worst]]
    assert error[worst] <= 1e-6 * scale, (
        f"dE/d{name}: generated {grad[chosen][worst]!r}, central differences {numeric[chosen][worst]!r}, "
        f"tolerance {1e-6 * scale:.1e}")

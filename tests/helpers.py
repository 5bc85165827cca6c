"""Shared references for the tests: paths, DESIGN.md's numbers, small spec factories, and independent references.

Test modules import these from here (``from helpers import make_spec``), never from another test
module or from conftest.  The references (a forward pass and loss written directly from DESIGN.md
section 4, and central finite differences) share no code with symgrad's pipeline: they are what
its output is checked against.
"""

from __future__ import annotations

import importlib
import itertools
import os
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


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a symgrad subprocess: this one's as it is now (so the session's temporary
    SYMGRAD_CACHE, set by conftest after the test modules were imported, is used), symgrad importable."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


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


# -- optimizers: torch.optim's documented rules (test_optimizers, test_c_optimizers) ---------------

CONFIGS = [
    {"name": "sgd", "learning_rate": 0.05},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.001},
    # RMSprop divides by the root of tiny averages: with larger steps its trajectory on this problem
    # is chaotic, and one rounding difference grows past any tolerance within 100 steps.
    {"name": "rmsprop", "learning_rate": 0.001},
    {"name": "rmsprop", "learning_rate": 0.003, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5, "weight_decay": 0.01},
    {"name": "adam", "learning_rate": 0.01},
    {"name": "adam", "learning_rate": 0.01, "betas": [0.8, 0.99], "eps": 1e-7, "weight_decay": 0.02},
    {"name": "adamw", "learning_rate": 0.01},
    {"name": "adamw", "learning_rate": 0.02, "betas": [0.85, 0.995], "weight_decay": 0.1},
]


class Reference:
    """torch.optim's documented algorithms, one step at a time, on a NumPy theta."""

    def __init__(self, config: dict, size: int) -> None:
        self.c = dict(config)
        self.t = 0
        self.buf = np.zeros(size)
        self.v = np.zeros(size)
        self.m = np.zeros(size)

    def step(self, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        c, lr = self.c, self.c["learning_rate"]
        wd = c.get("weight_decay", 0.01 if c["name"] == "adamw" else 0.0)
        self.t += 1
        if c["name"] == "sgd":
            g = g + wd * theta
            mu = c.get("momentum", 0.0)
            if mu:
                self.buf = g.copy() if self.t == 1 else mu * self.buf + (1 - c.get("dampening", 0.0)) * g
                g = g + mu * self.buf if c.get("nesterov") else self.buf
            return theta - lr * g
        if c["name"] == "rmsprop":
            g = g + wd * theta
            alpha, eps, mu = c.get("alpha", 0.99), c.get("eps", 1e-8), c.get("momentum", 0.0)
            self.v = alpha * self.v + (1 - alpha) * g * g
            if mu:
                self.buf = mu * self.buf + g / (np.sqrt(self.v) + eps)
                return theta - lr * self.buf
            return theta - lr * g / (np.sqrt(self.v) + eps)
        b1, b2 = c.get("betas", (0.9, 0.999))
        eps = c.get("eps", 1e-8)
        if c["name"] == "adamw":
            theta = theta - lr * wd * theta
        else:
            g = g + wd * theta
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        m_hat = self.m / (1 - b1 ** self.t)
        v_hat = self.v / (1 - b2 ** self.t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


def steps_with_torch(torch, config, module, gradient_of, theta, X, T, frozen, steps=100):
    """``steps`` of ``module.step`` on ``theta`` beside torch.optim fed with ``gradient_of``'s gradients.

    Returns the parameters torch.optim ends with (``theta`` itself is updated in place).
    """
    parameter = torch.tensor(theta.copy(), dtype=torch.float64, requires_grad=True)
    options = {"lr": config["learning_rate"]}
    for key in ("momentum", "dampening", "nesterov", "weight_decay", "alpha", "eps"):
        if key in config:
            options[key] = config[key]
    if "betas" in config:
        options["betas"] = tuple(config["betas"])
    optimizer = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
                 "adamw": torch.optim.AdamW}[config["name"]]([parameter], **options)
    state = module.initial_state()
    for _ in range(steps):
        _, grad = gradient_of.gradient(parameter.detach().numpy().copy(), X, T)
        keep = parameter.detach()[frozen].item()
        parameter.grad = torch.tensor(grad)
        optimizer.step()
        with torch.no_grad():
            parameter[frozen] = keep
        module.step(theta, X, T, state=state)
    return parameter.detach().numpy()


# -- backends: the C module against the NumPy module of the same package ----------------------------

def reference_numpy(module):
    """The NumPy module of the same package (the C module re-exports its constants)."""
    return importlib.import_module(module.__name__.rsplit(".", 1)[0] + ".numpy_backend")


def assert_backends_agree(c_module, theta, X, T, rtol=1e-12):
    numpy_module = reference_numpy(c_module)
    loss_c, grad_c = c_module.gradient(theta, X, T)
    loss_n, grad_n = numpy_module.gradient(theta, X, T)
    assert loss_c == pytest.approx(loss_n, rel=rtol, abs=1e-300)
    scale = np.max(np.abs(grad_n))
    worst = int(np.argmax(np.abs(grad_c - grad_n)))
    assert abs(grad_c[worst] - grad_n[worst]) <= rtol * scale, (
        f"dE/d{c_module.PARAMETER_NAMES[worst]}: C {grad_c[worst]!r}, NumPy {grad_n[worst]!r}")
    np.testing.assert_allclose(c_module.forward(theta, X), numpy_module.forward(theta, X), rtol=rtol, atol=1e-300)


# -- a second 2-2-2 network (test_explain, test_explain_optimizers) -----------------------------------

SECOND = {
    "name": "second",
    "inputs": ["x1", "x2"],
    "layers": [
        {"units": ["a", "b"], "activation": "tanh",
         "weights": [["u1", "u3"], ["u2", "u4"]],          # column-major names: u2 connects x1 to b
         "bias": {"mode": "per_unit", "names": ["c1", "c2"]}},
        {"units": ["y", "z"], "activation": "sigmoid",
         "weights": [["v2", "v1"], ["v4", "v3"]],
         "bias": {"mode": "per_unit", "names": ["d1", "d2"]}},
    ],
    "loss": "half_sse",
    "optimizer": {"name": "sgd", "learning_rate": 0.3},
    "initial": {"u1": 0.1, "u2": -0.2, "u3": 0.3, "u4": 0.4, "c1": 0.05, "c2": -0.1,
                "v1": 0.5, "v2": -0.6, "v3": 0.7, "v4": 0.2, "d1": 0.15, "d2": -0.25},
    "example": {"inputs": [0.6, -0.4], "targets": [0.2, 0.7]},
}
SECOND_STEPS = 2000


def early_stop(curve: list[float], patience: int) -> tuple[int, int | None]:
    """(best epoch, epoch training stops after or None) for a validation curve: the --patience rule
    written out independently of symgrad.training, both 1-based."""
    best, stop = 0, None
    for epoch, value in enumerate(curve, 1):
        if best == 0 or value < curve[best - 1]:
            best = epoch
        elif epoch - best >= patience:
            stop = epoch
            break
    return best, stop

"""Saturated logits and huge inputs: losses and gradients stay finite and match mpmath at 50 digits.

Both backends.  Overflow, division by zero and invalid operations raise here (underflow to 0 is
exact enough), so an overflow inside the generated code (exp of a large number, log of 0) fails
the test even when its result would be discarded.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import symgrad
from helpers import central_differences

mpmath.mp.dps = 50


def _backends() -> list[str]:
    from symgrad.compiler import unavailable_reason

    return ["numpy"] + (["c"] if unavailable_reason() is None else [])


def one_layer(activation: str, loss: str, n: int) -> dict:
    return {"name": f"one_{activation}_{loss}", "inputs": n,
            "layers": [{"units": n, "activation": activation, "bias": "none"}], "loss": loss}


def exact_softmax_cross_entropy(Z, T):
    """Mean cross-entropy and dE/dZ (per row, divided by n) in 50-digit arithmetic."""
    n = len(Z)
    loss = mpmath.mpf(0)
    grad = []
    for z, t in zip(Z, T):
        z = [mpmath.mpf(float(v)) for v in z]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
        loss += -mpmath.fsum(mpmath.mpf(float(ti)) * (zi - lse) for zi, ti in zip(z, t))
        grad.append([mpmath.exp(zi - lse) * mpmath.fsum(map(float, t)) - float(ti) for zi, ti in zip(z, t)])
    return float(loss / n), np.array([[float(g / n) for g in row] for row in grad])


def exact_sigmoid_bce(Z, T):
    n = len(Z)
    loss = mpmath.mpf(0)
    grad = []
    for z, t in zip(Z, T):
        row = []
        for zi, ti in zip(z, t):
            zi, ti = mpmath.mpf(float(zi)), mpmath.mpf(float(ti))
            softplus = mpmath.log1p(mpmath.exp(zi))
            loss += softplus - ti * zi
            row.append(float((1 / (1 + mpmath.exp(-zi)) - ti) / n))
        grad.append(row)
    return float(loss / n), np.array(grad)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("form", ["scalar", "vector"])
@pytest.mark.parametrize("loss, exact", [("cross_entropy", exact_softmax_cross_entropy),
                                         ("binary_cross_entropy", exact_sigmoid_bce)])
def test_saturated_logits(form, loss, exact, backend):
    activation = "softmax" if loss == "cross_entropy" else "sigmoid"
    module = symgrad.load(one_layer(activation, loss, 3), backend=backend, form=form)
    theta = np.eye(3).ravel().copy()  # W = I, so the logits are the inputs
    X = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 999.0, 1000.0], [1e4, -1e4, 5.0]])
    T = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    expected_loss, dZ = exact(X, T)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        value, grad = module.gradient(theta, X, T)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad.reshape(3, 3), dZ.T @ X, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("form", ["scalar", "vector"])
@pytest.mark.parametrize("activation", ["sigmoid", "softplus", "tanh"])
def test_hidden_activations_with_inputs_up_to_1e4(form, activation, backend):
    spec = {"name": f"huge_{activation}", "inputs": 2,
            "layers": [{"units": 2, "activation": activation}, {"units": 1, "activation": "linear"}],
            "loss": "half_sse"}
    module = symgrad.load(spec, backend=backend, form=form)
    theta = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5, -0.5, 0.1])
    X = np.array([[1e4, -1e4], [-1e4, 1e4], [30.0, -40.0]])
    T = np.array([[1.0], [-1.0], [0.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        value, grad = module.gradient(theta, X, T)

    def f(v):  # the activation in 50 digits
        v = mpmath.mpf(float(v))
        return {"sigmoid": lambda: 1 / (1 + mpmath.exp(-v)), "softplus": lambda: mpmath.log1p(mpmath.exp(v)),
                "tanh": lambda: mpmath.tanh(v)}[activation]()

    outputs = [0.5 * f(x[0]) - 0.5 * f(x[1]) + mpmath.mpf("0.1") for x in X]
    expected = float(mpmath.fsum((o - float(t[0])) ** 2 / 2 for o, t in zip(outputs, T)) / 3)
    assert value == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(grad))


# -- formulas whose derivative is a constant (zero): every value is still one per example ---------

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


CONSTANT_DERIVATIVE_CASES = {
    # id: (hidden activation, output activation, loss, hidden f, output f, loss term in (o, t))
    "constant-hidden": ({"expr": "2"}, "sigmoid", "half_sse",
                        lambda z: np.full_like(z, 2.0), _sigmoid, lambda o, t: (t - o) ** 2 / 2),
    "constant-output": ("tanh", {"expr": "0*x + 1/2"}, "half_sse",
                        np.tanh, lambda z: np.full_like(z, 0.5), lambda o, t: (t - o) ** 2 / 2),
    "loss-without-o": ("tanh", "sigmoid", {"expr": "t*t + 1"},
                       np.tanh, _sigmoid, lambda o, t: t * t + 1),
    "constant-loss-sum": ("tanh", "sigmoid", {"expr": "3", "reduction": "sum"},
                          np.tanh, _sigmoid, lambda o, t: np.full_like(o, 3.0)),
}


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("form", ["scalar", "vector"])
@pytest.mark.parametrize("case", sorted(CONSTANT_DERIVATIVE_CASES))
def test_constant_derivatives_broadcast_over_the_batch(case, form, backend):
    hidden, output, loss, f1, f2, term = CONSTANT_DERIVATIVE_CASES[case]
    spec = {"name": f"constd_{case.replace('-', '_')}", "inputs": 2,
            "layers": [{"units": 3, "activation": hidden}, {"units": 2, "activation": output}],
            "loss": loss, "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    module = symgrad.load(spec, backend=backend, form=form)
    rng = np.random.default_rng(7)
    theta, X, T = rng.normal(size=module.N_PARAMETERS), rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    mean = not (isinstance(loss, dict) and loss.get("reduction") == "sum")

    def reference(t):  # theta: W1 (3x2), b1 (3), W2 (2x3), b2 (2)
        W1, b1, W2, b2 = t[:6].reshape(3, 2), t[6:9], t[9:15].reshape(2, 3), t[15:17]
        o = f2(f1(X @ W1.T + b1) @ W2.T + b2)
        total = term(o, T).sum()
        return total / len(X) if mean else total

    value, grad = module.gradient(theta, X, T)
    assert value == pytest.approx(reference(theta), rel=1e-12)
    np.testing.assert_allclose(grad, central_differences(reference, theta), rtol=1e-6, atol=1e-8)
    assert module.forward(theta, X).shape == (5, 2)
    before = theta.copy()
    assert module.step(theta, X, T) == pytest.approx(reference(before), rel=1e-12)

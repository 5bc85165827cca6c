"""Every emitted gradient equals central finite differences of an independent reference loss.

Random parameters and inputs, batches of several examples, float64, both program forms
(straight-line scalar code and per-layer vector code).  The backend under test is NumPy; the C
backend's tests run the same checks through ``tests/test_c_*.py``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad
from helpers import assert_gradient_matches, make_spec

ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "linear"]

# (hidden activation, output activation, loss, bias mode): every activation, loss and bias mode
# appears, and each loss meets several activations and bias modes.
CASES = [
    ("sigmoid", "sigmoid", "half_sse", "per_unit"),
    ("tanh", "linear", "sse", "shared"),
    ("relu", "tanh", "mse", "none"),
    ("leaky_relu", "softplus", "half_sse", "shared"),
    ("softplus", "relu", "sse", "per_unit"),
    ("linear", "leaky_relu", "mse", "per_unit"),
    ("sigmoid", "softmax", "cross_entropy", "per_unit"),
    ("tanh", "softmax", "cross_entropy", "shared"),
    ("relu", "softmax", "cross_entropy", "none"),
    ("leaky_relu", "sigmoid", "binary_cross_entropy", "per_unit"),
    ("softplus", "sigmoid", "binary_cross_entropy", "none"),
    ("tanh", "softmax", "half_sse", "per_unit"),
    ("sigmoid", "softmax", "mse", "shared"),
    ({"name": "leaky_relu", "slope": 0.2}, "linear", "half_sse", "per_unit"),
    ("tanh", "sigmoid", "binary_cross_entropy", "shared"),
]


@pytest.mark.parametrize("form", ["scalar", "vector"])
@pytest.mark.parametrize("hidden, output, loss, bias", CASES)
def test_gradient_equals_central_differences(hidden, output, loss, bias, form):
    spec = make_spec([3, 4, 3], [hidden, output], loss, bias)
    module = symgrad.load(spec, backend="numpy", form=form)
    assert module.FORM == form
    assert_gradient_matches(spec, module, rows=6, seed=zlib.crc32(repr((hidden, output, loss, bias)).encode()))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("form", ["scalar", "vector"])
def test_reduction_sum_is_batch_size_times_mean(reduction, form):
    spec = make_spec([2, 3, 2], ["tanh", "sigmoid"], {"name": "half_sse", "reduction": reduction})
    module = symgrad.load(spec, backend="numpy", form=form)
    assert_gradient_matches(spec, module, rows=7)


def test_three_hidden_layers_of_every_activation():
    spec = make_spec([3, 4, 4, 4, 2], ["softplus", "leaky_relu", "tanh", "linear"], "sse")
    for form in ("scalar", "vector"):
        assert_gradient_matches(spec, symgrad.load(spec, backend="numpy", form=form), rows=4)


def test_wide_network_matrix_path():
    """50-40-10 goes through the vector (matrix) form; check a random subset of coordinates."""
    spec = make_spec([50, 40, 10], ["relu", "softmax"], "cross_entropy")
    module = symgrad.load(spec, backend="numpy")
    assert module.FORM == "vector"
    subset = np.random.default_rng(1).choice(module.N_PARAMETERS, 300, replace=False)
    assert_gradient_matches(spec, module, rows=16, indices=np.sort(subset))


def test_scalar_and_vector_forms_agree_to_rounding():
    spec = make_spec([4, 5, 3], ["sigmoid", "softmax"], "cross_entropy", "shared")
    scalar = symgrad.load(spec, backend="numpy", form="scalar")
    vector = symgrad.load(spec, backend="numpy", form="vector")
    rng = np.random.default_rng(3)
    theta = rng.normal(size=scalar.N_PARAMETERS)
    X = rng.normal(size=(9, 4))
    T = rng.dirichlet(np.ones(3), 9)
    loss_s, grad_s = scalar.gradient(theta, X, T)
    loss_v, grad_v = vector.gradient(theta, X, T)
    assert loss_s == pytest.approx(loss_v, rel=1e-13)
    np.testing.assert_allclose(grad_s, grad_v, rtol=1e-12, atol=1e-15)


def test_frozen_parameters_still_get_their_derivative():
    spec = make_spec([2, 2, 2], ["sigmoid", "sigmoid"], "half_sse", frozen=["b1_0", "W2_1_1"])
    module = symgrad.load(spec, backend="numpy")
    assert module.FROZEN == ("b1_0", "W2_1_1")
    assert_gradient_matches(spec, module)


_activation = st.sampled_from(ELEMENTWISE)


@st.composite
def random_specs(draw):
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 6)) for _ in range(depth + 1)]
    hidden = [draw(_activation) for _ in range(depth - 1)]
    loss = draw(st.sampled_from(["half_sse", "sse", "mse", "cross_entropy", "binary_cross_entropy"]))
    if loss == "cross_entropy":
        widths[-1] = max(widths[-1], 2)
        output = "softmax"
    elif loss == "binary_cross_entropy":
        output = "sigmoid"
    else:
        output = draw(st.sampled_from(ELEMENTWISE + ["softmax"]))
        if output == "softmax":
            widths[-1] = max(widths[-1], 2)
    bias = draw(st.sampled_from(["per_unit", "shared", "none"]))
    reduction = draw(st.sampled_from(["mean", "sum"]))
    spec = make_spec(widths, hidden + [output], {"name": loss, "reduction": reduction}, bias)
    return spec, draw(st.sampled_from(["scalar", "vector"])), draw(st.integers(1, 5)), draw(st.integers(0, 99))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs())
def test_random_specs_match_central_differences(case):
    spec, form, rows, seed = case
    assert_gradient_matches(spec, symgrad.load(spec, backend="numpy", form=form), rows=rows, seed=seed)


@pytest.mark.parametrize("form", ["scalar", "vector"])
def test_penalties_and_label_smoothing(form):
    spec = make_spec([3, 4, 3], ["tanh", "softmax"], {"name": "cross_entropy", "label_smoothing": 0.1})
    spec["layers"][0].update(l2=0.01, l1=0.003)
    spec["layers"][1].update(l2=0.02, regularize_bias=True)
    module = symgrad.load(spec, backend="numpy", form=form)
    assert_gradient_matches(spec, module, rows=5)
    assert "+ 0.04*W2_0_1" in module.FORMULAS["W2_0_1"]
    assert "+ 0.04*b2_2" in module.FORMULAS["b2_2"] and "0.006" not in module.FORMULAS["b1_0"]
    assert "0.003*sign(W1_2_2)" in module.FORMULAS["W1_2_2"]

"""The generated NumPy module honours the contract of DESIGN.md section 5."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import symgrad
from helpers import MAZUR, make_spec, random_problem, reference_forward, reference_loss


@pytest.fixture(scope="module", params=["scalar", "vector"])
def net(request):
    spec = make_spec([3, 4, 2], ["tanh", "sigmoid"], "half_sse", "per_unit", frozen=["W1_0_0", "b2_1"])
    return spec, symgrad.load(spec, backend="numpy", form=request.param)


def test_constants(net):
    spec, m = net
    assert m.BACKEND == "numpy"
    assert m.N_INPUTS == 3 and m.N_OUTPUTS == 2 and m.N_PARAMETERS == 3 * 4 + 4 + 4 * 2 + 2
    assert m.PARAMETER_NAMES == symgrad.parse_spec(spec).parameter_names
    assert m.FROZEN == ("W1_0_0", "b2_1")
    assert set(m.FORMULAS) == set(m.PARAMETER_NAMES)
    assert m.FORMULAS["W2_1_3"].startswith("dE/dW2_1_3 = ")
    assert m.initial_parameters() is not m.initial_parameters()
    assert m.initial_state().shape == (0,)


def test_forward_loss_gradient_shapes_and_values(net):
    spec, m = net
    theta, X, T = random_problem(spec, m, rows=7)
    out = m.forward(theta, X)
    assert out.shape == (7, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out, reference_forward(spec, theta, X), rtol=1e-13)
    loss = m.loss(theta, X, T)
    assert isinstance(loss, float) and loss == pytest.approx(reference_loss(spec, theta, X, T), rel=1e-13)
    loss2, grad = m.gradient(theta, X, T)
    assert loss2 == loss and grad.shape == theta.shape and grad.dtype == theta.dtype


def test_step_updates_in_place_and_keeps_frozen(net):
    spec, m = net
    theta, X, T = random_problem(spec, m)
    before = theta.copy()
    _, grad = m.gradient(theta, X, T)
    returned = m.step(theta, X, T)
    assert returned == pytest.approx(reference_loss(spec, before, X, T), rel=1e-13)
    frozen = [m.PARAMETER_NAMES.index(n) for n in m.FROZEN]
    expected = before - 0.1 * grad
    expected[frozen] = before[frozen]
    np.testing.assert_allclose(theta, expected, rtol=1e-14, atol=1e-16)


def test_train_minibatches_are_consecutive_slices(net):
    spec, m = net
    theta, X, T = random_problem(spec, m, rows=5)
    manual = theta.copy()
    expected_losses = []
    for _ in range(3):
        losses = [m.step(manual, X[a:b], T[a:b]) for a, b in ((0, 2), (2, 4), (4, 5))]
        expected_losses.append(np.mean(losses))
    losses = m.train(theta, X, T, 3, batch_size=2)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-14)
    np.testing.assert_array_equal(theta, manual)


def test_train_shuffle_uses_one_seeded_permutation_per_epoch(net):
    spec, m = net
    theta, X, T = random_problem(spec, m, rows=6)
    manual = theta.copy()
    rng = np.random.default_rng(42)
    for _ in range(2):
        order = rng.permutation(6)
        for start in range(0, 6, 4):
            rows = order[start:start + 4]
            m.step(manual, np.ascontiguousarray(X[rows]), np.ascontiguousarray(T[rows]))
    m.train(theta, X, T, 2, batch_size=4, shuffle=True, seed=42)
    np.testing.assert_allclose(theta, manual, rtol=1e-15)
    again = random_problem(spec, m, rows=6)[0]
    m.train(again, X, T, 2, batch_size=4, shuffle=True, seed=42)
    np.testing.assert_array_equal(again, theta)


def test_full_batch_train_reports_the_loss_before_each_epoch(net):
    spec, m = net
    theta, X, T = random_problem(spec, m)
    copy = theta.copy()
    expected = [m.step(copy, X, T) for _ in range(4)]
    np.testing.assert_allclose(m.train(theta, X, T, 4), expected, rtol=1e-14)


@pytest.mark.parametrize("call, error, words", [
    (lambda m, t, X, T: m.forward(list(t), X), TypeError, "theta: expected a NumPy array"),
    (lambda m, t, X, T: m.forward(t[:-1], X), ValueError, "theta: expected shape (26,)"),
    (lambda m, t, X, T: m.forward(t.astype(np.float32), X), TypeError, "theta: expected dtype float64"),
    (lambda m, t, X, T: m.forward(t, X[:, :2]), ValueError, "X: expected shape (n, 3)"),
    (lambda m, t, X, T: m.forward(t, X[0]), ValueError, "X: expected shape (n, 3)"),
    (lambda m, t, X, T: m.forward(t, np.asfortranarray(X)), ValueError, "X: expected a C-contiguous array"),
    (lambda m, t, X, T: m.forward(t, X[:0]), ValueError, "with n >= 1"),
    (lambda m, t, X, T: m.loss(t, X, T[:2]), ValueError, "T: expected shape (5, 2)"),
    (lambda m, t, X, T: m.gradient(t, X, T.astype(int)), TypeError, "T: expected dtype float64"),
    (lambda m, t, X, T: m.step(t[::2].copy()[:0], X, T), ValueError, "theta"),
    (lambda m, t, X, T: m.step(_readonly(t), X, T), ValueError, "theta: is read-only"),
    (lambda m, t, X, T: m.step(t, X, T, state=np.zeros(3)), ValueError, "state: expected shape (0,)"),
    (lambda m, t, X, T: m.train(t, X, T, 0), ValueError, "epochs: expected an integer >= 1"),
    (lambda m, t, X, T: m.train(t, X, T, 2.5), TypeError, "epochs: expected an integer"),
    (lambda m, t, X, T: m.train(t, X, T, 1, batch_size=0), ValueError, "batch_size: expected an integer >= 1"),
    (lambda m, t, X, T: m.train(t, X, T, 1, seed=-1), ValueError, "seed"),
])
def test_bad_arguments_raise_and_name_the_argument(net, call, error, words):
    spec, m = net
    theta, X, T = random_problem(spec, m)
    with pytest.raises(error) as caught:
        call(m, theta, X, T)
    assert words in str(caught.value)


def _readonly(array):
    array = array.copy()
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("form", ["scalar", "vector"])
def test_float32_spec_gives_float32_code(form):
    spec = make_spec([3, 4, 3], ["relu", "softmax"], "cross_entropy", dtype="float32")
    m32 = symgrad.load(spec, backend="numpy", form=form)
    spec64 = dict(spec, dtype="float64", name=spec["name"] + "_64")
    m64 = symgrad.load(spec64, backend="numpy", form=form)
    assert m32.DTYPE == np.float32 and m32.initial_parameters().dtype == np.float32
    theta, X, T = random_problem(spec, m32)
    loss, grad = m32.gradient(theta, X, T)
    assert grad.dtype == np.float32 and m32.forward(theta, X).dtype == np.float32
    loss64, grad64 = m64.gradient(theta.astype(np.float64), X.astype(np.float64), T.astype(np.float64))
    assert loss == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-6)
    with pytest.raises(TypeError, match="expected dtype float32"):
        m32.forward(theta.astype(np.float64), X)


def test_generated_package_imports_without_sympy(tmp_path):
    symgrad.build(MAZUR, out=tmp_path)
    code = ("import sys; sys.modules['sympy'] = None; sys.modules['jinja2'] = None; "
            "import mazur, numpy as np; t = mazur.initial_parameters(); "
            "print(mazur.loss(t, np.array([[0.05, 0.1]]), np.array([[0.01, 0.99]])))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert float(result.stdout) == pytest.approx(0.298371108760003, rel=1e-12)


def test_initial_values_are_seeded_and_named_values_win():
    base = {"name": "init_a", "inputs": 30, "layers": [{"units": 20, "activation": "tanh"},
                                                        {"units": 3, "activation": "linear"}],
            "loss": "mse", "initial": {"scheme": "xavier_uniform", "seed": 7}}
    a = symgrad.load(base, backend="numpy").initial_parameters()
    named = dict(base, name="init_b", initial={"scheme": "xavier_uniform", "seed": 7, "W1_0_0": 5.0})
    b = symgrad.load(named, backend="numpy").initial_parameters()
    other = dict(base, name="init_c", initial={"scheme": "xavier_uniform", "seed": 8})
    c = symgrad.load(other, backend="numpy").initial_parameters()
    assert b[0] == 5.0 and np.array_equal(a[1:], b[1:]) and not np.array_equal(a, c)
    bound = np.sqrt(6 / (30 + 20))
    assert np.all(np.abs(a[:600]) <= bound) and np.all(a[600:620] == 0)  # biases start at 0
    assert np.std(a[:600]) == pytest.approx(bound / np.sqrt(3), rel=0.1)

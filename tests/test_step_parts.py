"""A step in parts, as symgrad.distributed takes it: gradient_sum, penalty and update, both backends.

* update(theta, grad, state) is the optimizer table's reference step (symgrad/optimizers.py), and
  step is gradient then update (bitwise where both run the same update on the same gradient).
* gradient_sum is n * (mean gradient - penalty gradient) and the central differences of an
  independent summed loss (tests/helpers.py's reference, penalties left out).
* penalty is an independent computation from the layers' weights.
* C agrees with NumPy to 1e-12; both check their arguments alike.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import symgrad
from helpers import central_differences, make_spec, random_problem, reference_loss, reference_numpy, unpack
from symgrad import compiler
from symgrad.optimizers import resolve

BACKENDS = ["numpy"] + (["c"] if compiler.unavailable_reason() is None else [])
FROZEN = "W1_1_1"


def _spec(optimizer: dict, reduction: str = "mean", penalties: bool = True) -> dict:
    spec = make_spec([3, 4, 2], ["tanh", "sigmoid"], {"name": "half_sse", "reduction": reduction},
                     optimizer=optimizer, frozen=[FROZEN])
    if penalties:
        spec["layers"][0]["l2"] = 0.03
        spec["layers"][1].update(l1=0.02, l2=0.01, regularize_bias=True)
    return spec


# (spec, form): every optimizer family, both forms, both reductions, with and without penalties
CASES = [
    (_spec({"name": "sgd", "learning_rate": 0.1}), "scalar"),
    (_spec({"name": "sgd", "learning_rate": 0.1}, reduction="sum"), "vector"),
    (_spec({"name": "adam", "learning_rate": 0.01}), "vector"),
    (_spec({"name": "rmsprop", "learning_rate": 0.003, "momentum": 0.5, "weight_decay": 0.01},
           penalties=False), "scalar"),
    (_spec({"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.001}),
     "vector"),
    (_spec({"name": "adamw", "learning_rate": 0.02, "weight_decay": 0.1}, reduction="sum"), "scalar"),
]
IDS = [f"{spec['optimizer']['name']}-{spec['loss']['reduction']}-{form}" for spec, form in CASES]


@pytest.fixture(scope="module")
def modules() -> list[dict[str, object]]:
    """{backend: module} per case, built two at a time."""
    backend = BACKENDS[-1]
    with ThreadPoolExecutor(2) as pool:
        loaded = list(pool.map(lambda case: symgrad.load(case[0], backend=backend, form=case[1]), CASES))
    return [{"numpy": reference_numpy(module), backend: module} for module in loaded]


def _each(modules):
    for (spec, form), by_backend in zip(CASES, modules):
        for backend, module in by_backend.items():
            assert module.FORM == form and module.BACKEND == backend
            yield spec, module


def _independent_penalty(spec: dict, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """l2 * sum(p^2) + l1 * sum(|p|) over each layer's weights (and biases with regularize_bias)."""
    total, grad, offset = 0.0, np.zeros_like(theta), 0
    for (W, b, _, _), layer in zip(unpack(spec, theta), spec["layers"]):
        count = W.size + (b.size if b is not None and layer.get("regularize_bias") else 0)
        values = theta[offset:offset + count]
        l1, l2 = layer.get("l1", 0.0), layer.get("l2", 0.0)
        total += l2 * float(np.sum(values ** 2)) + l1 * float(np.sum(np.abs(values)))
        grad[offset:offset + count] = 2 * l2 * values + l1 * np.sign(values)
        offset += W.size + (0 if b is None else b.size)
    return total, grad


def test_penalty_is_the_layers_l1_and_l2(modules):
    for spec, module in _each(modules):
        theta, _, _ = random_problem(spec, module, seed=1)
        theta[2] = 0.0  # on the l1 kink: sign(0) = 0, like PyTorch
        total, grad = module.penalty(theta)
        expected_total, expected_grad = _independent_penalty(spec, theta)
        assert total == pytest.approx(expected_total, rel=1e-13, abs=1e-300)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-13, atol=1e-300)
        assert grad.dtype == module.DTYPE


def test_gradient_sum_is_the_mean_gradient_times_n_without_the_penalty(modules):
    for spec, module in _each(modules):
        theta, X, T = random_problem(spec, module, rows=7, seed=2)
        n = 1 if spec["loss"]["reduction"] == "sum" else X.shape[0]
        loss, grad = module.gradient(theta, X, T)
        penalty, penalty_grad = module.penalty(theta)
        loss_sum, grad_sum = module.gradient_sum(theta, X, T)
        assert loss_sum == pytest.approx(n * (loss - penalty), rel=1e-12)
        np.testing.assert_allclose(grad_sum, n * (grad - penalty_grad), rtol=1e-12, atol=1e-12 * np.abs(grad_sum).max())


def test_gradient_sum_matches_central_differences_of_a_summed_reference(modules):
    for spec, module in _each(modules):
        summed = copy.deepcopy(spec)
        summed["loss"]["reduction"] = "sum"
        for layer in summed["layers"]:
            layer.pop("l1", None), layer.pop("l2", None)
        theta, X, T = random_problem(spec, module, rows=5, seed=3)
        loss_sum, grad_sum = module.gradient_sum(theta, X, T)
        assert loss_sum == pytest.approx(reference_loss(summed, theta, X, T), rel=1e-12)
        numeric = central_differences(lambda t: reference_loss(summed, t, X, T), theta)
        worst = int(np.argmax(np.abs(grad_sum - numeric)))
        assert abs(grad_sum[worst] - numeric[worst]) <= 1e-6 * max(1.0, np.abs(numeric).max()), (
            f"dE/d{module.PARAMETER_NAMES[worst]}: gradient_sum {grad_sum[worst]!r}, central differences "
            f"{numeric[worst]!r}")


def test_update_is_the_optimizer_tables_reference_step(modules):
    for spec, module in _each(modules):
        options = resolve(spec["optimizer"])
        trainable = np.array([0.0 if name == FROZEN else 1.0 for name in module.PARAMETER_NAMES])
        theta, _, _ = random_problem(spec, module, seed=4)
        expected, reference_state = theta.copy(), {"step": 0}
        state = module.initial_state()
        rng = np.random.default_rng(5)
        for _ in range(4):
            grad = rng.normal(size=theta.size)
            before = grad.copy()
            module.update(theta, grad, state)
            np.testing.assert_array_equal(grad, before, err_msg="update changed its gradient argument")
            reference_state["step"] += 1
            expected, _ = options.rule.reference_step(options, expected, grad, reference_state, trainable)
        np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-15)
        assert theta[module.PARAMETER_NAMES.index(FROZEN)] == random_problem(spec, module, seed=4)[0][
            module.PARAMETER_NAMES.index(FROZEN)], "a frozen parameter moved"


def test_step_is_gradient_then_update(modules):
    for spec, module in _each(modules):
        theta, X, T = random_problem(spec, module, rows=6, seed=6)
        by_step, by_parts = theta.copy(), theta.copy()
        state_step, state_parts = module.initial_state(), module.initial_state()
        for _ in range(3):
            loss_step = module.step(by_step, X, T, state=state_step)
            loss_parts, grad = module.gradient(by_parts, X, T)
            module.update(by_parts, grad, state_parts)
            assert loss_step == loss_parts
        folded = module.BACKEND == "numpy" and module.FORM == "vector" and module.OPTIMIZER == "sgd" \
            and not module.STATE_SIZE and not module.OPTIMIZER_OPTIONS.get("weight_decay")
        if folded:  # the NumPy vector form folds plain SGD's learning rate into the deltas
            np.testing.assert_allclose(by_parts, by_step, rtol=1e-13, atol=1e-16)
        else:
            np.testing.assert_array_equal(by_parts, by_step)
            np.testing.assert_array_equal(state_parts, state_step)


@pytest.mark.skipif("c" not in BACKENDS, reason="no C toolchain")
def test_c_agrees_with_numpy(modules):
    for (spec, _), by_backend in zip(CASES, modules):
        c, numpy_module = by_backend["c"], by_backend["numpy"]
        theta, X, T = random_problem(spec, c, rows=9, seed=7)
        for function, args in (("gradient_sum", (theta, X, T)), ("penalty", (theta,))):
            loss_c, grad_c = getattr(c, function)(*args)
            loss_n, grad_n = getattr(numpy_module, function)(*args)
            assert loss_c == pytest.approx(loss_n, rel=1e-12, abs=1e-300), function
            np.testing.assert_allclose(grad_c, grad_n, rtol=1e-12, atol=1e-12 * np.abs(grad_n).max(),
                                       err_msg=function)
        theta_c, theta_n = theta.copy(), theta.copy()
        state_c, state_n = c.initial_state(), numpy_module.initial_state()
        for k in range(5):
            grad = np.cos(theta_n + k)
            c.update(theta_c, grad, state_c)
            numpy_module.update(theta_n, grad, state_n)
        np.testing.assert_allclose(theta_c, theta_n, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(state_c, state_n, rtol=1e-12, atol=1e-15)


def test_float32_parts_agree_across_backends():
    spec = _spec({"name": "adam", "learning_rate": 0.01})
    spec["dtype"] = "float32"
    module = symgrad.load(spec, backend=BACKENDS[-1], form="vector")
    numpy_module = reference_numpy(module)
    theta, X, T = random_problem(spec, module, rows=9, seed=8)
    for function, args in (("gradient_sum", (theta, X, T)), ("penalty", (theta,))):
        loss, grad = getattr(module, function)(*args)
        expected_loss, expected_grad = getattr(numpy_module, function)(*args)
        assert grad.dtype == np.float32 and loss == pytest.approx(expected_loss, rel=1e-5)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-5)
    theta_n, state, state_n = theta.copy(), module.initial_state(), numpy_module.initial_state()
    grad = np.linspace(-1, 1, theta.size, dtype=np.float32)
    module.update(theta, grad, state)
    numpy_module.update(theta_n, grad, state_n)
    np.testing.assert_allclose(theta, theta_n, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_arguments_are_named(modules, backend):
    module = modules[2][backend]  # adam: a stateful optimizer
    theta = module.initial_parameters()
    grad, state = np.zeros_like(theta), module.initial_state()
    X, T = np.zeros((2, 3)), np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"grad: expected shape \(26,\)"):
        module.update(theta, grad[:-1], state)
    with pytest.raises(TypeError, match="grad: expected dtype float64"):
        module.update(theta, grad.astype(np.float32), state)
    with pytest.raises(TypeError, match="grad: expected a NumPy array"):
        module.update(theta, list(grad), state)
    with pytest.raises(ValueError, match="grad: expected a C-contiguous array"):
        module.update(theta, np.zeros(2 * theta.size)[::2], state)
    with pytest.raises(ValueError, match="adam keeps state between steps"):
        module.update(theta, grad)
    readonly = theta.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="theta: is read-only"):
        module.update(readonly, grad, state)
    with pytest.raises(ValueError, match=r"T: expected shape \(2, 2\)"):
        module.gradient_sum(theta, X, T[:1])
    with pytest.raises(ValueError, match=r"theta: expected shape \(26,\)"):
        module.penalty(theta[:3])
    with pytest.raises(TypeError):
        module.penalty()

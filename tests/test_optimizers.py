"""Optimizers follow PyTorch's documented update rules; their state can be saved and resumed.

The reference updates (tests/helpers.py) are written from the torch.optim documentation's
pseudocode, sharing nothing with the generated code.  Where PyTorch is installed, torch.optim itself is
the second reference.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from helpers import CONFIGS, Reference, make_spec, steps_with_torch


def _problem(config):
    spec = make_spec([3, 4, 2], ["tanh", "sigmoid"], "half_sse", optimizer=config, frozen=["W1_1_1"])
    module = symgrad.load(spec, backend="numpy")
    rng = np.random.default_rng(2)
    return module, rng.normal(size=module.N_PARAMETERS), rng.normal(size=(6, 3)), rng.uniform(size=(6, 2))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_hundred_steps_match_the_documented_rule(config):
    module, theta, X, T = _problem(config)
    reference = Reference(config, theta.size)
    expected = theta.copy()
    frozen = module.PARAMETER_NAMES.index("W1_1_1")
    state = module.initial_state()
    for _ in range(100):
        _, grad = module.gradient(expected, X, T)
        updated = reference.step(expected, grad)
        updated[frozen] = expected[frozen]
        expected = updated
        module.step(theta, X, T, state=state)
    np.testing.assert_allclose(theta, expected, rtol=1e-10, atol=1e-12)
    assert theta[frozen] == _problem(config)[1][frozen]


@pytest.mark.parametrize("config", CONFIGS[1::2], ids=lambda c: c["name"])
def test_saved_state_resumes_exactly(config):
    module, theta, X, T = _problem(config)
    straight = theta.copy()
    module.train(straight, X, T, 40, batch_size=4)
    state = module.initial_state()
    module.train(theta, X, T, 15, batch_size=4, state=state)
    saved_theta, saved_state = theta.copy(), state.copy()
    module.train(saved_theta, X, T, 25, batch_size=4, state=saved_state)
    np.testing.assert_array_equal(saved_theta, straight)


def test_stateful_step_needs_a_state():
    module, theta, X, T = _problem(CONFIGS[6])
    assert module.STATE_SIZE == 1 + 2 * module.N_PARAMETERS
    assert [name for name, _, _ in module.STATE_LAYOUT] == ["step", "exp_avg", "exp_avg_sq"]
    with pytest.raises(ValueError, match="adam keeps state between steps"):
        module.step(theta, X, T)
    with pytest.raises(ValueError, match=r"state: expected shape \(53,\)"):
        module.step(theta, X, T, state=np.zeros(3))


@pytest.mark.parametrize("bad, words", [
    ({"name": "sgd", "learning_rate": 0.1, "betas": [0.9, 0.99]}, 'sgd has no option "betas"'),
    ({"name": "adam", "learning_rate": 0.1, "momentum": 0.9}, 'adam has no option "momentum"'),
    ({"name": "sgd", "learning_rate": 0.1, "nesterov": True}, "Nesterov momentum needs momentum > 0"),
    ({"name": "adam", "learning_rate": 0.1, "betas": [0.9]}, "needs at least 2 item"),
    ({"name": "adagrad", "learning_rate": 0.1}, "is not a known optimizer"),
])
def test_bad_optimizer_options(bad, words):
    with pytest.raises(symgrad.SpecError, match=words):
        symgrad.parse_spec(make_spec([2, 1], ["linear"], "mse", optimizer=bad))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_matches_torch_optim(config):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; torch.optim comparison skipped")
    module, theta, X, T = _problem(config)
    frozen = module.PARAMETER_NAMES.index("W1_1_1")
    expected = steps_with_torch(torch, config, module, module, theta, X, T, frozen)
    np.testing.assert_allclose(theta, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_table_reference_step_matches_the_documented_rule(config):
    """The optimizer table's NumPy step (what explain runs) against the test's own Reference."""
    from symgrad.optimizers import resolve

    options = resolve(config)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=7)
    reference, expected = Reference(config, theta.size), theta.copy()
    state, trainable = {"step": 0}, np.ones(theta.size)
    for _ in range(20):
        grad = np.sin(3 * theta) + 0.5  # a gradient that depends on where theta is
        expected = reference.step(expected, np.sin(3 * expected) + 0.5)
        state["step"] += 1
        theta, _ = options.rule.reference_step(options, theta, grad, state, trainable)
    np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-14)


def test_table_state_layout_and_schema_agree_with_the_modules():
    """Every optimizer's options in the schema are the table's, and STATE_LAYOUT comes from the table."""
    from symgrad import schema
    from symgrad.optimizers import OPTIMIZERS, resolve

    properties = schema.SCHEMA["properties"]["optimizer"]["properties"]
    assert set(properties) == {"name", "learning_rate", "schedule"} | {o for rule in OPTIMIZERS.values()
                                                                      for o in rule.options}
    assert schema.OPTIMIZERS == tuple(OPTIMIZERS)
    for config in CONFIGS:
        module = _problem(config)[0]
        layout = resolve(config).state_layout(module.N_PARAMETERS)
        assert tuple(tuple(part) for part in layout) == module.STATE_LAYOUT
        assert module.STATE_SIZE == sum(length for _, _, length in layout)

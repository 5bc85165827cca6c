"""The 2-2-2 walk-through network (examples/mazur.json) against DESIGN.md section 6's exact values.

Those values are plain simultaneous SGD in float64; the walk-through's own printed totals
(0.291027924 after one step, 0.0000351085 "after 10,000") come from another update order or
one step fewer, so the test holds the exact values, and the printed ones where they are right.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from helpers import E0, E1, E_AFTER_10000, MAZUR, OUTPUTS_AFTER_10000, W1_AFTER_ONE, W5_AFTER_ONE


@pytest.fixture(scope="module")
def mazur():
    return symgrad.load(MAZUR, backend="numpy")


@pytest.fixture
def example():
    return np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])


def test_initial_error(mazur, example):
    X, T = example
    assert mazur.loss(mazur.initial_parameters(), X, T) == pytest.approx(E0, rel=1e-12)


def test_one_step(mazur, example):
    X, T = example
    theta = mazur.initial_parameters()
    before = mazur.step(theta, X, T)
    assert before == pytest.approx(E0, rel=1e-12)
    names = mazur.PARAMETER_NAMES
    assert theta[names.index("w5")] == pytest.approx(W5_AFTER_ONE, rel=1e-12)
    assert theta[names.index("w1")] == pytest.approx(W1_AFTER_ONE, rel=1e-12)
    assert theta[names.index("b1")] == 0.35 and theta[names.index("b2")] == 0.60  # frozen
    assert mazur.loss(theta, X, T) == pytest.approx(E1, rel=1e-12)


def test_walkthrough_printed_weights_after_one_step(mazur, example):
    """The walk-through's updated weights (9 digits), which its own arithmetic gets right."""
    X, T = example
    theta = mazur.initial_parameters()
    mazur.step(theta, X, T)
    printed = {"w5": 0.35891648, "w6": 0.408666186, "w7": 0.511301270, "w8": 0.561370121,
               "w1": 0.149780716, "w2": 0.19956143, "w3": 0.24975114, "w4": 0.29950229}
    for name, value in printed.items():
        assert theta[mazur.PARAMETER_NAMES.index(name)] == pytest.approx(value, abs=1e-8), name


def test_ten_thousand_steps(mazur, example):
    X, T = example
    theta = mazur.initial_parameters()
    losses = mazur.train(theta, X, T, 10_000)
    assert losses.shape == (10_000,)
    assert losses[0] == pytest.approx(E0, rel=1e-12)
    assert mazur.loss(theta, X, T) == pytest.approx(E_AFTER_10000, rel=1e-12)
    np.testing.assert_allclose(mazur.forward(theta, X)[0], OUTPUTS_AFTER_10000, rtol=1e-12)
    # The walk-through's 0.0000351085 is the error before the 10,000th step, as train reports it.
    assert losses[-1] == pytest.approx(0.0000351085, abs=5e-11)


def test_gradient_at_the_start_matches_the_walkthrough(mazur, example):
    X, T = example
    _, grad = mazur.gradient(mazur.initial_parameters(), X, T)
    names = mazur.PARAMETER_NAMES
    assert grad[names.index("w5")] == pytest.approx(0.082167041, abs=1e-9)
    assert grad[names.index("w1")] == pytest.approx(0.000438568, abs=1e-9)

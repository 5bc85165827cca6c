"""backend="auto" chooses C or NumPy per call by the batch's rows (issue 17 item 4).

The rule (symgrad.program.numpy_from_rows) is checked against its own cost estimate's definition and
against sizes whose order is clear; the generated auto module is checked to give exactly the results
of the backend it sends each call to, with and without a learning-rate schedule.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import symgrad
from helpers import MAZUR
from symgrad.pipeline import analyze, lower
from symgrad.program import AUTO_MAX_ROWS, numpy_from_rows, step_seconds


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """NumPy's train picks its BLAS threads by the idle cores at call time, and a product split over
    another number of threads may round differently: one thread for both calls of each comparison."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def relu_spec(inputs, hidden, dtype="float64", name=None, optimizer=None):
    return {"name": name or f"auto_{inputs}_{hidden}_{dtype}", "inputs": inputs,
            "layers": [{"units": hidden, "activation": "relu"}, {"units": 10, "activation": "softmax"}],
            "loss": "cross_entropy", "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.05},
            "initial": {"scheme": "he_uniform", "seed": 0}, "dtype": dtype}


def program_of(spec):
    return lower(analyze(spec).gradients)


def test_tutorial_networks_always_run_in_c():
    assert numpy_from_rows(program_of(MAZUR)) is None
    assert symgrad.load(MAZUR).BACKEND == "c"


def test_the_crossover_is_where_the_estimates_cross():
    program = program_of(relu_spec(64, 32))
    rows = numpy_from_rows(program)
    assert rows is not None and 1 < rows <= AUTO_MAX_ROWS
    assert step_seconds(program, "numpy", rows) <= step_seconds(program, "c", rows)
    assert step_seconds(program, "numpy", rows - 1) > step_seconds(program, "c", rows - 1)


def test_bigger_products_move_the_crossover_to_fewer_rows():
    """Python's fixed cost per step is shared by more work: wider layers reach NumPy sooner."""
    small, wide, wider = (numpy_from_rows(program_of(relu_spec(n, h, "float32"))) for n, h in
                          ((64, 32), (256, 128), (784, 256)))
    assert small is not None and wide is not None and wider is not None
    assert small > wide >= wider


@pytest.fixture(scope="module")
def auto_module():
    spec = relu_spec(64, 32, name="auto_dispatch")
    module = symgrad.load(spec, backend="auto")
    return spec, module


def test_package_dispatches_per_call(auto_module):
    spec, m = auto_module
    assert m.BACKEND == "auto"
    assert m.NUMPY_FROM_ROWS == numpy_from_rows(program_of(spec))
    assert m.backend_for(m.NUMPY_FROM_ROWS - 1).BACKEND == "c"
    assert m.backend_for(m.NUMPY_FROM_ROWS).BACKEND == "numpy"
    assert symgrad.load(spec, backend="c").BACKEND == "c"  # asking for one backend still gives it
    assert symgrad.load(spec, backend="numpy").BACKEND == "numpy"


def _problem(m, rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, m.N_INPUTS))
    T = np.zeros((rows, m.N_OUTPUTS))
    T[np.arange(rows), rng.integers(0, m.N_OUTPUTS, rows)] = 1
    return X, T


@pytest.mark.parametrize("side", ["c", "numpy"])
def test_results_are_exactly_the_chosen_backends(auto_module, side):
    spec, m = auto_module
    chosen = symgrad.load(spec, backend=side)
    rows = m.NUMPY_FROM_ROWS + (3 if side == "numpy" else -3)
    X, T = _problem(m, rows)
    theta = m.initial_parameters()
    np.testing.assert_array_equal(m.forward(theta, X), chosen.forward(theta, X))
    assert m.loss(theta, X, T) == chosen.loss(theta, X, T)
    for mine, theirs in zip(m.gradient(theta, X, T), chosen.gradient(theta, X, T)):
        np.testing.assert_array_equal(mine, theirs)
    a, b = theta.copy(), theta.copy()
    assert m.step(a, X, T) == chosen.step(b, X, T)
    np.testing.assert_array_equal(a, b)
    # train decides by its batch size, not by X's rows
    X2, T2 = _problem(m, 2 * rows + 1, seed=1)
    a, b = theta.copy(), theta.copy()
    np.testing.assert_array_equal(m.train(a, X2, T2, 2, batch_size=rows), chosen.train(b, X2, T2, 2, batch_size=rows))
    np.testing.assert_array_equal(a, b)


def test_update_and_penalty_run_in_c(auto_module):
    spec, m = auto_module
    c = symgrad.load(spec, backend="c")
    theta = m.initial_parameters()
    grad = np.linspace(-1, 1, m.N_PARAMETERS)
    a, b = theta.copy(), theta.copy()
    m.update(a, grad)
    c.update(b, grad)
    np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_still_named(auto_module):
    _, m = auto_module
    theta = m.initial_parameters()
    with pytest.raises((TypeError, ValueError), match="X"):
        m.forward(theta, [[1.0]])
    X, T = _problem(m, 4)
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        m.train(theta, X, T, 1, batch_size=0)


def test_scheduled_spec_dispatches_with_its_epoch_count():
    spec = relu_spec(64, 32, name="auto_scheduled", optimizer={
        "name": "sgd", "learning_rate": 0.05, "momentum": 0.9,
        "schedule": {"name": "step", "step_size": 1, "gamma": 0.5}})
    m = symgrad.load(spec, backend="auto")
    assert m.BACKEND == "auto" and m.SCHEDULE is not None
    for side, rows in (("c", m.NUMPY_FROM_ROWS - 5), ("numpy", m.NUMPY_FROM_ROWS + 5)):
        chosen = symgrad.load(copy.deepcopy(spec), backend=side)
        X, T = _problem(m, 2 * rows)
        a, b = m.initial_parameters(), m.initial_parameters()
        sa, sb = m.initial_state(), chosen.initial_state()
        np.testing.assert_array_equal(m.train(a, X, T, 3, batch_size=rows, state=sa),
                                      chosen.train(b, X, T, 3, batch_size=rows, state=sb))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)
        assert sa[m.STATE_LAYOUT[-1][1]] == 3  # three epochs counted
        grad = np.full(m.N_PARAMETERS, 0.1)
        m.update(a, grad, sa)
        symgrad.load(spec, backend="c").update(b, grad, sb)
        np.testing.assert_array_equal(a, b)

"""The C backend against independent references: central differences, the NumPy backend, DESIGN.md.

Every activation meets every loss it can be paired with, every bias mode, and both program
forms; the C module's gradient must match central differences of the reference loss in
conftest and the NumPy module of the same package to 1e-12 relative.  Builds are cached in the
session's temporary SYMGRAD_CACHE (conftest), and the packages of one parametrized family are
built in parallel threads up front, so the whole file stays fast.
"""

from __future__ import annotations

import itertools
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import symgrad
from helpers import (
    E0,
    E1,
    E_AFTER_10000,
    MAZUR,
    OUTPUTS_AFTER_10000,
    W1_AFTER_ONE,
    W5_AFTER_ONE,
    assert_backends_agree,
    assert_gradient_matches,
    random_problem,
    reference_numpy,
)
from symgrad import compiler
from symgrad import program as program_stage

pytestmark = pytest.mark.skipif(compiler.unavailable_reason() is not None,
                                reason=f"no C toolchain: {compiler.unavailable_reason()}")

ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "linear"]
BIAS_MODES = ["per_unit", "shared", "none"]

# (output activation, loss): every pairing the losses allow
PAIRS = ([(a, loss) for loss in ("half_sse", "sse", "mse") for a in ELEMENTWISE + ["softmax"]]
         + [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")])

_counter = itertools.count()


def chain_spec(output: str, loss, rotate: int, dtype: str = "float64") -> dict:
    """3 inputs, two hidden layers of 3 units, 3 outputs.

    The hidden activations and the layers' bias modes rotate with ``rotate``, so across the
    family every activation meets every bias mode, hidden and at the output.
    """
    activations = [ELEMENTWISE[rotate % 6], ELEMENTWISE[(rotate + 1) % 6], output]
    layers = [{"units": 3, "activation": a, "bias": BIAS_MODES[(k + rotate) % 3]} for k, a in enumerate(activations)]
    return {"name": f"cnet{next(_counter)}", "inputs": 3, "layers": layers, "loss": loss,
            "optimizer": {"name": "sgd", "learning_rate": 0.1}, "dtype": dtype}


def _load_all(cases):
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda case: symgrad.load(case[0], backend="c", form=case[1]), cases))


@pytest.fixture(scope="module")
def family():
    """Every (output, loss) pair x bias rotation x form, built once."""
    cases = []
    for index, (output, loss) in enumerate(PAIRS):
        for form in ("scalar", "vector"):
            cases.append((chain_spec(output, loss, rotate=index), form))
    return list(zip(cases, _load_all(cases)))


def test_every_activation_loss_and_bias_mode_matches_differences_and_numpy(family):
    for (spec, form), module in family:
        assert module.BACKEND == "c" and module.FORM == form
        seed = zlib.crc32(repr(spec["layers"]).encode() + spec["loss"].encode())
        assert_gradient_matches(spec, module, rows=5, seed=seed)
        theta, X, T = random_problem(spec, module, rows=5, seed=seed + 1)
        assert_backends_agree(module, theta, X, T)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reductions(reduction):
    spec = chain_spec("tanh", {"name": "half_sse", "reduction": reduction}, 0)
    spec["loss"] = {"name": "half_sse", "reduction": reduction}
    for module in _load_all([(spec, "scalar"), (spec, "vector")]):
        assert_gradient_matches(spec, module, rows=7)
        assert_backends_agree(module, *random_problem(spec, module, rows=7, seed=3))


def test_wide_network_goes_through_loops_and_matches():
    spec = {"name": "cwide", "inputs": 50, "layers": [{"units": 40, "activation": "relu"},
                                                      {"units": 10, "activation": "softmax"}],
            "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    module = symgrad.load(spec, backend="c")
    assert module.FORM == "vector"
    subset = np.sort(np.random.default_rng(1).choice(module.N_PARAMETERS, 300, replace=False))
    assert_gradient_matches(spec, module, rows=16, indices=subset)
    assert_backends_agree(module, *random_problem(spec, module, rows=16, seed=2))


def test_custom_formulas_print_in_c():
    spec = {"name": "cformula", "inputs": 2,
            "layers": [{"units": 3, "activation": {"expr": "x/(1+abs(x))"}},
                       {"units": 2, "activation": {"expr": "erf(x) + max(x, 0)/2"}}],
            "loss": {"expr": "(o - t)**2 + sqrt(1 + o**2)"}, "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    for module in _load_all([(spec, "scalar"), (spec, "vector")]):
        assert_backends_agree(module, *random_problem(spec, module, rows=4, seed=5))


def test_forced_scalar_form_beyond_the_straight_line_limit_prints_loops(monkeypatch):
    monkeypatch.setattr(program_stage, "C_SCALAR_MAX", 10)
    spec = chain_spec("sigmoid", "half_sse", 1)
    spec["layers"] = spec["layers"][:2]
    module = symgrad.load(spec, backend="c", form="scalar")
    assert module.FORM == "vector" and reference_numpy(module).FORM == "scalar"
    assert_backends_agree(module, *random_problem(spec, module, rows=3))


# -- Mazur (DESIGN.md section 6) ----------------------------------------------------------------

MAZUR_X = np.array([[0.05, 0.10]])
MAZUR_T = np.array([[0.01, 0.99]])


@pytest.fixture(scope="module")
def mazur():
    return symgrad.load(MAZUR, backend="c")


def test_mazur_exact_numbers(mazur):
    assert mazur.BACKEND == "c" and mazur.FORM == "scalar"
    theta = mazur.initial_parameters()
    assert mazur.loss(theta, MAZUR_X, MAZUR_T) == pytest.approx(E0, rel=1e-12)
    assert mazur.step(theta, MAZUR_X, MAZUR_T) == pytest.approx(E0, rel=1e-12)
    names = mazur.PARAMETER_NAMES
    assert theta[names.index("w5")] == pytest.approx(W5_AFTER_ONE, rel=1e-12)
    assert theta[names.index("w1")] == pytest.approx(W1_AFTER_ONE, rel=1e-12)
    assert theta[names.index("b1")] == 0.35 and theta[names.index("b2")] == 0.60
    assert mazur.loss(theta, MAZUR_X, MAZUR_T) == pytest.approx(E1, rel=1e-12)

    theta = mazur.initial_parameters()
    losses = mazur.train(theta, MAZUR_X, MAZUR_T, 10_000)
    assert losses[0] == pytest.approx(E0, rel=1e-12) and losses[1] == pytest.approx(E1, rel=1e-12)
    assert mazur.loss(theta, MAZUR_X, MAZUR_T) == pytest.approx(E_AFTER_10000, rel=1e-12)
    np.testing.assert_allclose(mazur.forward(theta, MAZUR_X)[0], OUTPUTS_AFTER_10000, rtol=1e-12)


def test_mazur_package_prefers_c_and_keeps_the_contract(mazur):
    numpy_module = reference_numpy(mazur)
    for name in numpy_module.__all__:
        assert hasattr(mazur, name), name
    assert mazur.PARAMETER_NAMES == numpy_module.PARAMETER_NAMES and mazur.FROZEN == ("b1", "b2")
    assert mazur.FORMULAS == numpy_module.FORMULAS
    assert symgrad.load(MAZUR).BACKEND == "c"  # auto


# -- training ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    spec = chain_spec("softmax", "cross_entropy", 2)
    spec["layers"] = spec["layers"][-2:]
    return spec, symgrad.load(spec, backend="c")


def test_step_and_train_match_numpy(small):
    spec, module = small
    numpy_module = reference_numpy(module)
    theta, X, T = random_problem(spec, module, rows=11, seed=4)
    for kwargs in ({}, {"batch_size": 4}, {"batch_size": 50}, {"batch_size": 3, "shuffle": True, "seed": 7}):
        theta_c, theta_n = theta.copy(), theta.copy()
        losses_c = module.train(theta_c, X, T, 5, **kwargs)
        losses_n = numpy_module.train(theta_n, X, T, 5, **kwargs)
        assert losses_c.dtype == np.float64 and losses_c.shape == (5,)
        np.testing.assert_allclose(losses_c, losses_n, rtol=1e-12)
        np.testing.assert_allclose(theta_c, theta_n, rtol=1e-12, atol=1e-15)
    theta_c, theta_n = theta.copy(), theta.copy()
    assert module.step(theta_c, X, T) == pytest.approx(numpy_module.step(theta_n, X, T), rel=1e-12)
    np.testing.assert_allclose(theta_c, theta_n, rtol=1e-12, atol=1e-15)


def test_train_equals_repeated_steps_and_shuffle_is_seeded(small):
    spec, module = small
    theta, X, T = random_problem(spec, module, rows=6, seed=8)
    copy = theta.copy()
    expected = [module.step(copy, X, T) for _ in range(4)]
    np.testing.assert_allclose(module.train(theta, X, T, 4), expected, rtol=1e-14)
    one, two = theta.copy(), theta.copy()
    module.train(one, X, T, 3, batch_size=2, shuffle=True, seed=11)
    module.train(two, X, T, 3, batch_size=2, shuffle=True, seed=11)
    assert np.array_equal(one, two)


def test_float32_spec_gives_float32_kernel():
    spec = chain_spec("softmax", "cross_entropy", 0, dtype="float32")
    for module in _load_all([(spec, "scalar"), (spec, "vector")]):
        theta, X, T = random_problem(spec, module, rows=5)
        assert theta.dtype == np.float32 and module.DTYPE == np.float32
        loss, grad = module.gradient(theta, X, T)
        assert grad.dtype == np.float32 and module.forward(theta, X).dtype == np.float32
        expected_loss, expected_grad = reference_numpy(module).gradient(theta, X, T)
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-5 * np.abs(expected_grad).max())
        with pytest.raises(TypeError, match="theta: expected dtype float32"):
            module.gradient(theta.astype(np.float64), X, T)


# -- building ----------------------------------------------------------------------------------------

def test_generated_c_is_deterministic_and_bounded(tmp_path):
    first = symgrad.build(MAZUR, out=tmp_path / "a", backend="c")
    second = symgrad.build(MAZUR, out=tmp_path / "b", backend="c")
    for name in ("mazur.c", "mazur.h", "c_backend.c", "c_backend.py"):
        assert (first.package_dir / name).read_bytes() == (second.package_dir / name).read_bytes()
    assert first.backends == ("c",)


def test_no_compiler_is_a_clear_error_and_all_falls_back(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/symgrad-test-cc")
    spec = chain_spec("linear", "sse", 0)
    spec["layers"] = spec["layers"][-1:]
    with pytest.raises(symgrad.BuildError, match="no C compiler"):
        symgrad.build(spec, backend="c")
    with pytest.warns(symgrad.SymgradWarning, match="no C compiler"):
        module = symgrad.load(spec)
    assert module.BACKEND == "numpy"


def test_compiler_error_shows_the_compilers_message(tmp_path):
    sources = {"broken.c": b"int broken(void) { return undeclared_name; }\n", "x.h": b""}
    with pytest.raises(symgrad.BuildError) as caught:
        compiler.compile_extension(sources, ["broken.c"], "_broken", tmp_path)
    assert "undeclared_name" in str(caught.value) and "the C compiler failed" in str(caught.value)


@pytest.mark.parametrize("n, batch", [(1, 1), (3, 3), (37, 16), (37, 37), (40, 7)])
def test_blocked_layer_loops_match_numpy_across_block_edges(tmp_path, n, batch):
    """The vector-form kernel works BLOCK (16) examples at a time and transposes W from
    TRANSPOSE_MIN (2) examples on; batches on both sides of those edges, in order and
    shuffled, agree with the NumPy backend to 1e-12 (float64)."""
    spec = {"name": f"blocked_{n}_{batch}", "inputs": 13,
            "layers": [{"units": 18, "activation": "tanh"}, {"units": 6, "activation": "sigmoid", "bias": "shared"},
                       {"units": 5, "activation": "softmax"}],
            "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.3, "momentum": 0.5},
            "initial": {"scheme": "xavier_uniform", "seed": 3}}
    c = symgrad.load(spec, out=tmp_path, backend="c", form="vector")
    numpy_module = symgrad.load(spec, out=tmp_path, backend="numpy", form="vector")
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 13))
    T = rng.dirichlet(np.ones(5), size=n)
    theta = c.initial_parameters()
    loss_c, grad_c = c.gradient(theta, X, T)
    loss_n, grad_n = numpy_module.gradient(theta, X, T)
    assert loss_c == pytest.approx(loss_n, rel=1e-12)
    np.testing.assert_allclose(grad_c, grad_n, rtol=1e-12, atol=1e-12 * np.abs(grad_n).max())
    np.testing.assert_allclose(c.forward(theta, X), numpy_module.forward(theta, X), rtol=1e-12, atol=1e-15)
    theta_c, theta_n = theta.copy(), theta.copy()
    losses_c = c.train(theta_c, X, T, 3, batch_size=batch, shuffle=True, seed=5)
    losses_n = numpy_module.train(theta_n, X, T, 3, batch_size=batch, shuffle=True, seed=5)
    np.testing.assert_allclose(losses_c, losses_n, rtol=1e-12)
    np.testing.assert_allclose(theta_c, theta_n, rtol=1e-11, atol=1e-12)


# -- package names that are also C header names (issue 11, item 8) --------------------------------

@pytest.mark.parametrize("name", ["limits", "stdint", "features", "stddef", "stdlib", "float"])
def test_package_named_like_a_c_header_builds_and_matches(name):
    """The package's own folder is searched only for #include "...", so <name>.h never shadows <name.h>."""
    spec = {"name": name, "inputs": 2,
            "layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
            "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    module = symgrad.load(spec, backend="c")
    assert module.BACKEND == "c"
    assert_gradient_matches(spec, module)
    assert_backends_agree(module, *random_problem(spec, module))


# -- threads (issue 11, item 12) -------------------------------------------------------------------

_HAMMER = r'''
import importlib, sys, threading
import numpy as np
import symgrad

spec = {"name": "hammered", "inputs": 8, "layers": [{"units": 16, "activation": "tanh"},
                                                  {"units": 3, "activation": "softmax"}],
        "loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.01}}
module = symgrad.load(spec, backend="c")
kernel = importlib.import_module(module.__name__.rsplit(".", 1)[0] + "._c_kernel")
rng = np.random.default_rng(0)
n, epochs = 64, 40
X = rng.normal(size=(n, 8))
T = rng.dirichlet(np.ones(3), n)
theta, state = module.initial_parameters(), module.initial_state()
orders = np.array([rng.permutation(n) for _ in range(epochs)], dtype=np.dtype("long"))
stop = threading.Event()
outcomes = []

def trainer():
    while not stop.is_set():
        try:
            kernel.train(theta, X, T, epochs, 8, orders, state)
            outcomes.append("ok")
        except (ValueError, RuntimeError) as error:
            outcomes.append(type(error).__name__)

def stepper():
    while not stop.is_set():
        kernel.step(theta, X, T, state)
        kernel.gradient(theta, X, T)
        kernel.forward(theta, X)

def scribbler():  # out-of-range row indices, written while the kernels run
    k = 0
    while not stop.is_set():
        row, column = k % epochs, (k * 7) % n
        orders[row, column] = 10**12 if k % 2 == 0 else column
        k += 1

threads = [threading.Thread(target=f) for f in (trainer, trainer, trainer, stepper, scribbler)]
for thread in threads:
    thread.start()
import time
time.sleep(float(sys.argv[1]))
stop.set()
for thread in threads:
    thread.join()
print(len(outcomes), sorted(set(outcomes)))
'''


def test_threads_changing_the_arguments_of_the_private_entry_points_cannot_crash(tmp_path):
    """Trainers, a stepper and a thread that writes bad row indices into orders, all on one theta:
    every call returns or raises, the interpreter survives (a data race on the numbers only)."""
    import subprocess
    import sys

    script = tmp_path / "hammer.py"
    script.write_text(_HAMMER)
    result = subprocess.run([sys.executable, str(script), "3"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the interpreter died ({result.returncode}): {result.stderr[-2000:]}"
    count = int(result.stdout.split()[0])
    assert count > 0, result.stdout

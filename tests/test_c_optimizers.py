"""The C backend's optimizers, penalties and label smoothing against independent references.

* Every optimizer configuration of tests/helpers.py (CONFIGS) runs 100 C steps that must agree with
  the NumPy backend of the same package (theta, state and losses, 1e-12 relative) and with the
  test's own Reference (torch.optim's documented rules); train with shuffled minibatches agrees
  with NumPy too, and a saved state (from either backend) resumes exactly.
* Penalties (l1, l2, regularize_bias) and label smoothing: the C gradient matches central
  differences of the helpers' reference loss, and the NumPy module.
* The state argument is checked like the NumPy module checks it (same exceptions, same words),
  and a stateful kernel still compiles and runs as strict standalone C99.

Packages are built in parallel threads up front and cached in the session's SYMGRAD_CACHE.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import (
    CONFIGS,
    Reference,
    assert_backends_agree,
    assert_gradient_matches,
    central_differences,
    make_spec,
    random_problem,
    reference_numpy,
    steps_with_torch,
)
from symgrad import compiler, rules

pytestmark = pytest.mark.skipif(compiler.unavailable_reason() is not None,
                                reason=f"no C toolchain: {compiler.unavailable_reason()}")

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
FROZEN = "W1_1_1"


def config_id(config: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in config.items())


def optimizer_spec(config: dict, dtype: str = "float64", **extra) -> dict:
    """test_optimizers' problem: 3-4-2, tanh then sigmoid, half_sse, one frozen weight."""
    return make_spec([3, 4, 2], ["tanh", "sigmoid"], "half_sse", optimizer=config, frozen=[FROZEN], dtype=dtype,
                     **extra)


def load_all(cases: list[tuple[dict, str]]) -> list:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda case: symgrad.load(case[0], backend="c", form=case[1]), cases))


def problem(module, rows: int = 6):
    rng = np.random.default_rng(2)
    dtype = module.DTYPE
    return (rng.normal(size=module.N_PARAMETERS).astype(dtype), rng.normal(size=(rows, 3)).astype(dtype),
            rng.uniform(size=(rows, 2)).astype(dtype))


def assert_close(actual, expected, rtol, what):
    """|actual - expected| <= rtol * max|expected|, elementwise, naming the worst entry."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    if expected.size == 0:
        return
    error = np.abs(actual - expected)
    worst = int(np.argmax(error))
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    assert error[worst] <= rtol * scale, (f"{what}[{worst}]: C {actual[worst]!r}, expected {expected[worst]!r}, "
                                          f"tolerance {rtol * scale:.1e}")


# every config in the scalar form, every other one in the vector form too
CASES = [(config, "scalar") for config in CONFIGS] + [(config, "vector") for config in CONFIGS[1::2]]


@pytest.fixture(scope="module")
def optimizers():
    """{(config id, form): C module}, built once."""
    modules = load_all([(optimizer_spec(config), form) for config, form in CASES])
    return {(config_id(config), form): module for (config, form), module in zip(CASES, modules)}


@pytest.mark.parametrize("config, form", CASES, ids=[f"{form}-{config_id(c)}" for c, form in CASES])
def test_hundred_steps_match_numpy_and_the_documented_rule(optimizers, config, form):
    module = optimizers[config_id(config), form]
    numpy_module = reference_numpy(module)
    assert module.BACKEND == "c" and module.FORM == form and module.OPTIMIZER == config["name"]
    assert module.STATE_SIZE == numpy_module.STATE_SIZE and module.STATE_LAYOUT == numpy_module.STATE_LAYOUT
    theta, X, T = problem(module)
    frozen = module.PARAMETER_NAMES.index(FROZEN)
    theta_c, theta_n, expected = theta.copy(), theta.copy(), theta.copy()
    state_c, state_n = module.initial_state(), numpy_module.initial_state()
    reference = Reference(config, theta.size)
    for step in range(100):
        loss_c = module.step(theta_c, X, T, state=state_c)
        loss_n = numpy_module.step(theta_n, X, T, state=state_n)
        assert loss_c == pytest.approx(loss_n, rel=1e-12), f"loss of step {step}"
        _, grad = numpy_module.gradient(expected, X, T)
        updated = reference.step(expected, grad)
        updated[frozen] = expected[frozen]
        expected = updated
    assert_close(theta_c, theta_n, 1e-12, "theta")
    assert_close(state_c, state_n, 1e-12, "state")
    np.testing.assert_allclose(theta_c, expected, rtol=1e-10, atol=1e-12)
    assert theta_c[frozen] == theta[frozen]
    if module.STATE_SIZE:
        assert state_c[0] == 100  # the step count


@pytest.mark.parametrize("config", CONFIGS[1::2], ids=lambda c: c["name"])
def test_saved_state_resumes_exactly_and_moves_between_backends(optimizers, config):
    module = optimizers[config_id(config), "scalar"]
    numpy_module = reference_numpy(module)
    theta, X, T = problem(module, rows=7)
    straight = theta.copy()
    module.train(straight, X, T, 40, batch_size=3)  # no state: a fresh one for the whole call
    resumed, state = theta.copy(), module.initial_state()
    module.train(resumed, X, T, 15, batch_size=3, state=state)
    saved_theta, saved_state = resumed.copy(), state.copy()
    module.train(resumed, X, T, 25, batch_size=3, state=state)
    np.testing.assert_array_equal(resumed, straight)
    # the same saved state continues in NumPy, and step by step in C
    numpy_theta, numpy_state = saved_theta.copy(), saved_state.copy()
    numpy_module.train(numpy_theta, X, T, 25, batch_size=3, state=numpy_state)
    assert_close(numpy_theta, straight, 1e-12, "theta resumed in NumPy")
    assert_close(numpy_state, state, 1e-12, "state resumed in NumPy")
    stepped, stepped_state = saved_theta.copy(), saved_state.copy()
    for _ in range(25):
        for start in range(0, 7, 3):
            module.step(stepped, X[start:start + 3], T[start:start + 3], state=stepped_state)
    np.testing.assert_array_equal(stepped, straight)
    np.testing.assert_array_equal(stepped_state, state)


@pytest.mark.parametrize("config", [CONFIGS[3], CONFIGS[5], CONFIGS[7], CONFIGS[9]], ids=lambda c: c["name"])
def test_shuffled_minibatch_training_matches_numpy(optimizers, config):
    module = optimizers[config_id(config), "vector" if config in CONFIGS[1::2] else "scalar"]
    numpy_module = reference_numpy(module)
    theta, X, T = problem(module, rows=11)
    for kwargs in ({"batch_size": 3, "shuffle": True, "seed": 5}, {"batch_size": 4}, {}):
        theta_c, theta_n = theta.copy(), theta.copy()
        losses_c = module.train(theta_c, X, T, 6, **kwargs)
        losses_n = numpy_module.train(theta_n, X, T, 6, **kwargs)
        assert losses_c.dtype == np.float64 and losses_c.shape == (6,)
        assert_close(losses_c, losses_n, 1e-12, f"losses {kwargs}")
        assert_close(theta_c, theta_n, 1e-12, f"theta {kwargs}")
        state_c, state_n = module.initial_state(), numpy_module.initial_state()
        module.train(theta_c, X, T, 4, state=state_c, **kwargs)
        numpy_module.train(theta_n, X, T, 4, state=state_n, **kwargs)
        assert_close(theta_c, theta_n, 1e-12, f"theta with state {kwargs}")
        assert_close(state_c, state_n, 1e-12, f"state {kwargs}")


def test_float32_kernels_run_every_optimizer_rule():
    cases = [(optimizer_spec(config, dtype="float32"), form)
             for config, form in [(CONFIGS[3], "scalar"), (CONFIGS[5], "vector"), (CONFIGS[7], "scalar"),
                                  (CONFIGS[9], "vector")]]
    for (spec, _), module in zip(cases, load_all(cases)):
        numpy_module = reference_numpy(module)
        theta, X, T = problem(module)
        state_c, state_n = module.initial_state(), numpy_module.initial_state()
        assert state_c.dtype == np.float32
        theta_c, theta_n = theta.copy(), theta.copy()
        for _ in range(20):
            module.step(theta_c, X, T, state=state_c)
            numpy_module.step(theta_n, X, T, state=state_n)
        assert theta_c.dtype == np.float32
        assert_close(theta_c, theta_n, 1e-4, f"float32 theta ({spec['optimizer']['name']})")
        assert_close(state_c, state_n, 1e-3, f"float32 state ({spec['optimizer']['name']})")
        with pytest.raises(TypeError, match="state: expected dtype float32"):
            module.step(theta_c, X, T, state=state_c.astype(np.float64))


# -- the state argument ------------------------------------------------------------------------

def _bad_states(module):
    size, dtype = module.STATE_SIZE, module.DTYPE
    readonly = np.zeros(size, dtype)
    readonly.flags.writeable = False
    return [
        ("missing", None),
        ("list", [0.0] * size),
        ("float32", np.zeros(size, np.float32)),
        ("int64", np.zeros(size, np.int64)),
        ("2-D", np.zeros((1, size), dtype)),
        ("too short", np.zeros(size - 1, dtype)),
        ("too long", np.zeros(size + 1, dtype)),
        ("strided", np.zeros(2 * size, dtype)[::2]),
        ("read-only", readonly),
    ]


def _message(error: Exception) -> str:
    # the shapes are spelled "got shape (3,)" in C and "got (3,)" in NumPy; the rest is the same
    return re.sub(r"got (shape )?\(", "got (", str(error))


@pytest.mark.parametrize("function", ["step", "train"])
def test_bad_states_raise_what_numpy_raises_and_change_nothing(optimizers, function):
    module = optimizers[config_id(CONFIGS[6]), "scalar"]  # adam
    numpy_module = reference_numpy(module)
    theta, X, T = problem(module)
    before = theta.copy()
    for label, state in _bad_states(module):
        if function == "train" and state is None:
            continue  # train without a state starts from a fresh one
        errors = []
        for m in (module, numpy_module):
            with pytest.raises((TypeError, ValueError)) as caught:
                if function == "step":
                    m.step(theta, X, T, state=state)
                else:
                    m.train(theta, X, T, 2, state=state)
            errors.append(caught.value)
        c_error, numpy_error = errors
        assert type(c_error) is type(numpy_error), (label, c_error, numpy_error)
        assert str(c_error).startswith("state: "), (label, c_error)
        assert _message(c_error) == _message(numpy_error), label
    np.testing.assert_array_equal(theta, before)
    with pytest.raises(ValueError, match=r"adam keeps state between steps; pass state=initial_state\(\) "
                                         r"\(shape \(53,\)\)"):
        module.step(theta, X, T)


def test_plain_sgd_takes_an_empty_state_or_none(optimizers):
    module = optimizers[config_id(CONFIGS[0]), "scalar"]
    assert module.STATE_SIZE == 0 and module.STATE_LAYOUT == () and module.initial_state().shape == (0,)
    theta, X, T = problem(module)
    one, two = theta.copy(), theta.copy()
    module.step(one, X, T)
    module.step(two, X, T, state=module.initial_state())
    np.testing.assert_array_equal(one, two)
    with pytest.raises(ValueError, match=r"state: expected shape \(0,\)"):
        module.step(one, X, T, state=np.zeros(1))


def test_stateful_options_build_c_under_all_without_a_warning():
    spec = optimizer_spec({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9})
    spec["layers"][0]["l1"] = 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = symgrad.build(spec, backend="all")
        assert symgrad.load(spec).BACKEND == "c"
    assert set(result.backends) == {"numpy", "c"}


# -- penalties and label smoothing ---------------------------------------------------------------

def penalty_spec(output: str, loss, dtype: str = "float64") -> dict:
    spec = make_spec([3, 4, 3, 3], ["tanh", "softplus", output], loss, dtype=dtype,
                     optimizer={"name": "adam", "learning_rate": 0.01})
    spec["layers"][0].update(l2=0.03, l1=0.02)
    spec["layers"][1].update(l1=0.05, regularize_bias=True)
    spec["layers"][2].update(l2=0.1, regularize_bias=True)
    return spec


PENALTY_SPECS = [
    penalty_spec("softmax", {"name": "cross_entropy", "label_smoothing": 0.1}),
    penalty_spec("sigmoid", {"name": "half_sse", "reduction": "sum"}),
    make_spec([3, 4, 3], ["relu", "softmax"], {"name": "cross_entropy", "label_smoothing": 0.25}),
]


@pytest.fixture(scope="module")
def penalized():
    cases = [(spec, form) for spec in PENALTY_SPECS for form in ("scalar", "vector")]
    return list(zip(cases, load_all(cases)))


def test_penalties_and_label_smoothing_match_differences_and_numpy(penalized):
    for (spec, form), module in penalized:
        assert module.FORM == form
        assert_gradient_matches(spec, module, rows=6, seed=3)
        theta, X, T = random_problem(spec, module, rows=6, seed=4)
        assert_backends_agree(module, theta, X, T)
        numpy_module = reference_numpy(module)
        theta_c, theta_n = theta.copy(), theta.copy()
        state_c, state_n = module.initial_state(), numpy_module.initial_state()
        losses_c = module.train(theta_c, X, T, 30, batch_size=4, shuffle=True, seed=1, state=state_c)
        losses_n = numpy_module.train(theta_n, X, T, 30, batch_size=4, shuffle=True, seed=1, state=state_n)
        assert_close(losses_c, losses_n, 1e-12, "losses")
        assert_close(theta_c, theta_n, 1e-12, "theta")


def test_l1_gradient_at_zero_is_zero_like_numpy(penalized):
    (spec, _), module = penalized[0]
    theta, X, T = random_problem(spec, module, rows=3)
    theta[:5] = 0.0  # layer 1's first weights sit on the l1 kink: sign(0) = 0
    assert_backends_agree(module, theta, X, T)


def test_penalized_float32_kernels_follow_numpy():
    spec = penalty_spec("softmax", {"name": "cross_entropy", "label_smoothing": 0.1}, dtype="float32")
    for module in load_all([(spec, "scalar"), (spec, "vector")]):
        theta, X, T = random_problem(spec, module, rows=5)
        loss, grad = module.gradient(theta, X, T)
        expected_loss, expected_grad = reference_numpy(module).gradient(theta, X, T)
        assert grad.dtype == np.float32 and loss == pytest.approx(expected_loss, rel=1e-5)
        assert_close(grad, expected_grad, 1e-4, "float32 gradient")


# -- custom formulas: every helper the rule table names exists in C --------------------------------

def test_every_c_helper_of_the_rule_table_is_defined_in_the_kernel_template():
    folder = Path(symgrad.__file__).parent / "emit" / "c"
    parts = [folder / "kernel.c.jinja", *sorted((folder / "kernel").glob("*.jinja"))]
    template = "".join(path.read_text() for path in parts)
    helpers = {spelling.c_helper for spelling in rules.SPELLINGS.values() if spelling.c_helper}
    assert helpers, "the rule table names no C helper"
    for helper in sorted(helpers):
        assert re.search(rf"static real {helper}\(", template), \
            f"{helper} is not defined in kernel.c.jinja or its parts"
        assert f'"{helper}" in helpers' in template, f"{helper} is not guarded by its use"


def test_custom_formulas_with_abs_max_min_erf_sqrt_match_differences():
    spec = {"name": "cformulas", "inputs": 3,
            "layers": [{"units": 4, "activation": {"expr": "x/(1 + abs(x)) + min(x, 0)/3"}},
                       {"units": 2, "activation": {"expr": "erf(x) + max(x, 0)/2 + sqrt(1 + x**2)"}}],
            "loss": {"expr": "(o - t)**2 + abs(o - t)/4 + sqrt(1 + o**2)"},
            "optimizer": {"name": "rmsprop", "learning_rate": 0.001, "momentum": 0.5}}
    for module in load_all([(spec, "scalar"), (spec, "vector")]):
        theta, X, T = random_problem(spec, module, rows=5, seed=9)
        assert_backends_agree(module, theta, X, T)
        numpy_module = reference_numpy(module)
        _, grad = module.gradient(theta, X, T)
        # conftest's reference loss knows no formulas: differentiate the NumPy module's loss
        numeric = central_differences(lambda t: numpy_module.loss(t, X, T), theta)
        assert_close(grad, numeric, 1e-6, f"{module.FORM} gradient vs central differences")
        state_c, state_n = module.initial_state(), numpy_module.initial_state()
        theta_c, theta_n = theta.copy(), theta.copy()
        module.train(theta_c, X, T, 20, state=state_c)
        numpy_module.train(theta_n, X, T, 20, state=state_n)
        assert_close(theta_c, theta_n, 1e-12, "theta")


# -- the standalone kernel with state ---------------------------------------------------------------

DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "NAME.h"

int main(void)
{
    NAME_real theta[P], state[S], scratch[1024], X[6 * 3], T[6 * 2];
    NAME_real losses[25];
    long k, start = -1, length = -1;
    const char *part;
    if (NAME_state_size() != S || NAME_scratch_size() > 1024) return 2;
    for (k = 0; NAME_state_part((int)k, &start, &length) != NULL; ++k) {
        part = NAME_state_part((int)k, NULL, NULL);
        printf("part %s %ld %ld\n", part, start, length);
    }
    if (NAME_state_part(-1, &start, &length) != NULL) return 3;
    if (fread(theta, sizeof theta, 1, stdin) != 1 || fread(X, sizeof X, 1, stdin) != 1
        || fread(T, sizeof T, 1, stdin) != 1) return 4;
    memset(state, 0, sizeof state);
    for (k = 0; k < 75; ++k) NAME_step(theta, X, T, 6, 0, NAME_learning_rate(), state, scratch);
    NAME_train(theta, X, T, 6, 25, 4, 0, 0, losses, state, scratch);
    fwrite(theta, sizeof theta, 1, stdout);
    fwrite(state, sizeof state, 1, stdout);
    return 0;
}
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_standalone_stateful_kernel_compiles_strictly_and_runs(tmp_path, dtype):
    config = CONFIGS[9]  # adamw with decoupled weight decay
    spec = optimizer_spec(config, dtype=dtype)
    spec["name"] = f"kadamw_{dtype}"
    spec["layers"][0]["l1"] = 0.01
    package = symgrad.build(spec, out=tmp_path, backend="c", form="vector").package_dir
    module = symgrad.load(spec, out=tmp_path, backend="c", form="vector")
    numpy_module = reference_numpy(module)
    kernel = (package / f"{spec['name']}.c").read_text()
    float_math = ["#include <stdint.h>", "#include <string.h>"] if dtype == "float32" else []  # memcpy of bits
    assert [line for line in kernel.splitlines() if line.startswith("#include")] == [
        "#include <math.h>", f'#include "{spec["name"]}.h"', *float_math]
    assert "malloc" not in kernel and "Python" not in kernel
    source = (DRIVER.replace("NAME", spec["name"]).replace("[P]", f"[{module.N_PARAMETERS}]")
              .replace("[S]", f"[{module.STATE_SIZE}]").replace("!= S", f"!= {module.STATE_SIZE}"))
    (tmp_path / "driver.c").write_text(source)
    program = tmp_path / "driver"
    argv = compiler.compiler() + STRICT + ["-O2", f"-I{package}", str(tmp_path / "driver.c"),
                                           str(package / f"{spec['name']}.c"), "-o", str(program), "-lm"]
    built = subprocess.run(argv, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    theta, X, T = problem(module)
    stdin = theta.tobytes() + X.tobytes() + T.tobytes()
    result = subprocess.run([str(program)], input=stdin, capture_output=True, timeout=60)
    assert result.returncode == 0, result
    lines = result.stdout.split(b"\n", len(module.STATE_LAYOUT))
    parts = [tuple(line.decode().split()[1:]) for line in lines[:-1]]
    assert parts == [(name, str(first), str(size)) for name, first, size in module.STATE_LAYOUT]
    raw = lines[-1]
    itemsize = np.dtype(dtype).itemsize
    assert len(raw) == (module.N_PARAMETERS + module.STATE_SIZE) * itemsize
    theta_c = np.frombuffer(raw[:module.N_PARAMETERS * itemsize], dtype=dtype)
    state_c = np.frombuffer(raw[module.N_PARAMETERS * itemsize:], dtype=dtype)
    theta_n, state_n = theta.copy(), numpy_module.initial_state()
    for _ in range(75):
        numpy_module.step(theta_n, X, T, state=state_n)
    numpy_module.train(theta_n, X, T, 25, batch_size=4, state=state_n)
    rtol = 1e-12 if dtype == "float64" else 1e-4
    assert_close(theta_c, theta_n, rtol, "standalone theta")
    assert_close(state_c, state_n, rtol * 10, "standalone state")


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_matches_torch_optim(optimizers, config):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; torch.optim comparison skipped")
    module = optimizers[config_id(config), "scalar"]
    theta, X, T = problem(module)
    frozen = module.PARAMETER_NAMES.index(FROZEN)
    expected = steps_with_torch(torch, config, module, reference_numpy(module), theta, X, T, frozen)
    np.testing.assert_allclose(theta, expected, rtol=1e-10, atol=1e-12)

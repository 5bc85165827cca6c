"""The C kernel stands alone, and the extension around it survives every wrong call.

* A small C driver (no Python headers) compiled with ``-std=c99 -Wall -Wextra -Werror
  -pedantic`` against ``mazur.c`` runs the 2-2-2 network for 10,000 steps and prints the numbers
  that DESIGN.md section 6 states exactly.
* Hundreds of wrong calls (types, dtypes, shapes, non-contiguous and read-only arrays, counts,
  keywords) run in a subprocess, so a crash fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import MAZUR
from symgrad import compiler

pytestmark = pytest.mark.skipif(compiler.unavailable_reason() is not None,
                                reason=f"no C toolchain: {compiler.unavailable_reason()}")

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "mazur.h"

static const mazur_real INITIAL[10] = {0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60};

int main(void)
{
    static mazur_real losses[10000];
    mazur_real theta[MAZUR_N_PARAMETERS], scratch[MAZUR_SCRATCH_SIZE(1)], Y[MAZUR_N_OUTPUTS], y[2];
    const mazur_real X[2] = {0.05, 0.10}, T[2] = {0.01, 0.99};
    char name[8];
    double e0, e1;
    if (mazur_scratch_size() != MAZUR_SCRATCH_SIZE(1) || mazur_n_parameters() != 10) return 2;
    if (mazur_parameter_name(5, name, sizeof name) != 2 || strcmp(name, "w5") != 0) return 3;
    if (mazur_parameter_name(10, name, sizeof name) != -1 || !mazur_is_frozen(4) || mazur_is_frozen(5)) return 4;
    if (mazur_state_size() != 0 || mazur_state_part(0, 0, 0) != 0) return 5; /* plain SGD: no state */
    memcpy(theta, INITIAL, sizeof theta);
    e0 = mazur_step(theta, X, T, 1, 0, MAZUR_LEARNING_RATE, 0, scratch);
    e1 = mazur_loss(theta, X, T, 1, 0, scratch);
    printf("%.17g %.17g %.17g %.17g\n", e0, (double)theta[5], (double)theta[0], e1);
    memcpy(theta, INITIAL, sizeof theta);
    mazur_train(theta, X, T, 1, 10000, 1, 0, 0, losses, 0, scratch);
    mazur_forward(theta, X, 1, Y, scratch);
    mazur_predict(theta, X, y, 0);
    if (memcmp(y, Y, sizeof y) != 0) return 6;
    printf("%.17g %.17g %.17g %.17g\n", mazur_loss(theta, X, T, 1, 0, scratch), (double)Y[0], (double)Y[1],
           losses[9999]);
    return 0;
}
"""


def _cc() -> list[str]:
    return compiler.compiler()


def _compile(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, f"$ {' '.join(argv)}\n{result.stderr}"


def test_standalone_kernel_runs_mazur_with_strict_c99(tmp_path):
    package = symgrad.build(MAZUR, out=tmp_path, backend="c").package_dir
    kernel = (package / "mazur.c").read_text()
    assert [line for line in kernel.splitlines() if line.startswith("#include")] == [
        "#include <math.h>", '#include "mazur.h"']
    assert "malloc" not in kernel and "Python" not in kernel
    (tmp_path / "driver.c").write_text(DRIVER)
    program = tmp_path / "driver"
    _compile(_cc() + STRICT + ["-O2", f"-I{package}", str(tmp_path / "driver.c"), str(package / "mazur.c"),
                               "-o", str(program), "-lm"])
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result
    first, last = ([float(v) for v in line.split()] for line in result.stdout.splitlines())
    expected_first = [0.298371108760003, 0.358916479717885, 0.149780716132763, 0.291027773693599]
    np.testing.assert_allclose(first, expected_first, rtol=1e-12)
    loss, o1, o2, last_step_loss = last
    np.testing.assert_allclose([loss, o1, o2], [3.51018778297886e-05, 0.0159136204435506, 0.984064273514624],
                               rtol=1e-12)
    assert last_step_loss > loss  # the loss before the last step


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vector_kernels_compile_strictly_and_name_their_parameters(tmp_path, dtype):
    spec = {"name": f"kvec_{dtype}", "inputs": 3,
            "layers": [{"units": 4, "activation": "tanh", "bias": "shared"},
                       {"units": 3, "activation": "softmax", "bias": {"mode": "per_unit", "names": ["c0", "c1", "c2"]}}],
            "loss": "cross_entropy", "dtype": dtype, "frozen": ["c1"]}
    package = symgrad.build(spec, out=tmp_path, backend="c", form="vector").package_dir
    name = spec["name"]
    driver = tmp_path / "names.c"
    driver.write_text(f"""
#include <stdio.h>
#include "{name}.h"
int main(void)
{{
    char buffer[32];
    long k;
    for (k = 0; k < {name}_n_parameters(); ++k) {{
        if ({name}_parameter_name(k, buffer, sizeof buffer) < 0) return 1;
        printf("%s %d\\n", buffer, {name}_is_frozen(k));
    }}
    return {name}_parameter_name(k, buffer, sizeof buffer) == -1 ? 0 : 2;
}}
""")
    program = tmp_path / "names"
    _compile(_cc() + STRICT + [f"-I{package}", str(driver), str(package / f"{name}.c"), "-o", str(program), "-lm"])
    lines = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.split("\n")[:-1]
    module = symgrad.load(spec, out=tmp_path, backend="c", form="vector")
    assert [line.split()[0] for line in lines] == list(module.PARAMETER_NAMES)
    assert [line.split()[1] for line in lines] == ["1" if n == "c1" else "0" for n in module.PARAMETER_NAMES]


WRONG_CALLS = r"""
import json, sys
import numpy as np
from symgrad.loader import import_backend

m = import_backend(sys.argv[1], "c")
kernel = sys.modules[m.__name__.rsplit(".", 1)[0] + "._c_kernel"]
P, I, O = m.N_PARAMETERS, m.N_INPUTS, m.N_OUTPUTS
rng = np.random.default_rng(0)
theta = m.initial_parameters()
X = rng.normal(size=(5, I))
T = rng.uniform(size=(5, O))


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def misaligned(a):
    raw = np.zeros(a.size * a.itemsize + 1, dtype=np.uint8)
    b = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    return b


def bad_arrays(good, expect_writable):
    yield [1.0] * good.size, TypeError
    yield tuple(good.ravel()), TypeError
    yield None, TypeError
    yield 3, TypeError
    yield "theta", TypeError
    yield good.astype(np.float32), TypeError
    yield good.astype(np.int64), TypeError
    yield good.astype(np.complex128), TypeError
    yield good.astype(object), TypeError
    yield good.astype(good.dtype.newbyteorder()), TypeError
    yield np.float64(1.0), TypeError
    yield good.ravel()[0:1].reshape(()), ValueError
    yield good[..., None], ValueError
    yield np.repeat(good, 2, axis=-1)[..., ::2], ValueError  # non-contiguous
    yield np.concatenate([good, good], axis=-1), ValueError
    yield good[..., :0] if good.ndim == 2 else good[:0], ValueError
    yield good[:0] if good.ndim == 2 else good[:-1], ValueError
    yield np.asfortranarray(np.concatenate([good, good], axis=0)) if good.ndim == 2 else good[::-1], ValueError
    yield misaligned(good), ValueError
    if expect_writable:
        yield readonly(good), ValueError


calls = []
for name, function, writes in [("forward", m.forward, False), ("loss", m.loss, False),
                               ("gradient", m.gradient, False), ("step", m.step, True),
                               ("train", lambda *a: m.train(*a, 2), True),
                               ("train_shuffle", lambda *a: m.train(*a, 2, batch_size=2, shuffle=True, seed=1), True)]:
    arity = 2 if name == "forward" else 3
    good = [theta, X, T][:arity]
    for position, label in enumerate(["theta", "X", "T"][:arity]):
        for bad, error in bad_arrays(good[position], writes and position == 0):
            args = list(good)
            args[position] = bad
            calls.append((f"{name}({label}=...)", function, args, {}, error, label))
    calls.append((f"{name}() without arguments", function, [], {}, TypeError, ""))
    if arity == 3:
        calls.append((f"{name}(T rows != X rows)", function, [theta, X, T[:3]], {}, ValueError, "T"))

for value, error in [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError),
                     (None, TypeError), (10**30, ValueError), (np.float64(2), TypeError), (-10**30, ValueError),
                     (np.bool_(True), TypeError), ([1], TypeError)]:
    calls.append((f"train(epochs={value!r})", m.train, [theta, X, T, value], {}, error, "epochs"))
    calls.append((f"train(batch_size={value!r})", m.train, [theta, X, T, 1],
                  {"batch_size": value}, error, "batch_size") if value is not None else
                 ("train(batch_size=None) ok-case skipped", None, None, None, None, None))
    calls.append((f"train(shuffle, epochs={value!r})", m.train, [theta, X, T, value],
                  {"shuffle": True, "seed": 0}, error, "epochs"))
for value, error in [(-1, ValueError), (2.5, TypeError), ("x", TypeError)]:
    calls.append((f"train(seed={value!r})", m.train, [theta, X, T, 1], {"shuffle": True, "seed": value}, error, "seed"))
for state, error in [(np.zeros(3), ValueError), (np.zeros(0, dtype=np.float32) if m.DTYPE == np.float64 else
                      np.zeros(0), TypeError), ([], TypeError), (np.zeros((0, 1)), ValueError)]:
    calls.append(("step(state=...)", m.step, [theta, X, T], {"state": state}, error, "state"))
    calls.append(("train(state=...)", m.train, [theta, X, T, 1], {"state": state}, error, "state"))
S = m.STATE_SIZE
good_state = m.initial_state()
bad_states = [(readonly(good_state), ValueError), (good_state.astype(np.int64), TypeError),
              (np.zeros(S + 1, dtype=m.DTYPE), ValueError), (np.zeros((S, 1), dtype=m.DTYPE), ValueError),
              (tuple(good_state), TypeError), (good_state.astype(good_state.dtype.newbyteorder()), TypeError)]
if S:
    bad_states += [(np.repeat(good_state, 2)[::2], ValueError), (misaligned(good_state), ValueError),
                   (good_state[:-1], ValueError)]
    calls.append(("step(no state)", m.step, [theta, X, T], {}, ValueError, "keeps state between steps"))
for state, error in bad_states:
    calls.append(("step(state=...)", m.step, [theta, X, T], {"state": state}, error, "state"))
    calls.append(("train(state=...)", m.train, [theta, X, T, 1], {"state": state}, error, "state"))
    calls.append(("train(shuffle, state=...)", m.train, [theta, X, T, 1], {"state": state, "shuffle": True},
                  error, "state"))
calls += [
    ("forward(bogus=1)", m.forward, [theta, X], {"bogus": 1}, TypeError, "bogus"),
    ("forward(theta twice)", m.forward, [theta, X], {"theta": theta}, TypeError, "theta"),
    ("forward(too many)", m.forward, [theta, X, T], {}, TypeError, ""),
    ("step(too many)", m.step, [theta, X, T, None, None], {}, TypeError, ""),
    ("loss(missing T)", m.loss, [theta, X], {}, TypeError, "T"),
    ("kernel.train(orders out of range)", kernel.train,
     [theta, X, T, 1, None, np.full((1, 5), 5, dtype=np.dtype("long"))], {}, ValueError, "orders"),
    ("kernel.train(orders negative)", kernel.train,
     [theta, X, T, 1, None, np.full((1, 5), -1, dtype=np.dtype("long"))], {}, ValueError, "orders"),
    ("kernel.train(orders wrong shape)", kernel.train,
     [theta, X, T, 2, None, np.zeros((1, 5), dtype=np.dtype("long"))], {}, ValueError, "orders"),
    ("kernel.train(orders float)", kernel.train, [theta, X, T, 1, None, np.zeros((1, 5))], {}, TypeError, "orders"),
    ("kernel.train(orders list)", kernel.train, [theta, X, T, 1, None, [[0, 1, 2, 3, 4]]], {}, TypeError, "orders"),
    ("kernel.train(rates wrong length)", kernel.train, [theta, X, T, 2], {"learning_rates": np.ones(3, m.DTYPE)},
     ValueError, "learning_rates"),
    ("kernel.train(rates wrong dtype)", kernel.train, [theta, X, T, 1], {"learning_rates": np.ones(1, np.int64)},
     TypeError, "learning_rates"),
    ("kernel.train(rates list)", kernel.train, [theta, X, T, 1], {"learning_rates": [0.1]}, TypeError,
     "learning_rates"),
    ("kernel.train(rates 2-D)", kernel.train, [theta, X, T, 1], {"learning_rates": np.ones((1, 1), m.DTYPE)},
     ValueError, "learning_rates"),
]

failures, count = [], 0
for label, function, args, kwargs, error, word in calls:
    if function is None:
        continue
    count += 1
    try:
        function(*args, **kwargs)
    except (TypeError, ValueError) as caught:
        if not isinstance(caught, error) or word not in str(caught):
            failures.append(f"{label}: {type(caught).__name__}: {caught}")
    else:
        failures.append(f"{label}: no error")
# the state of theta after all that: still the initial values (nothing wrote to it)
if not np.array_equal(theta, m.initial_parameters()):
    failures.append("theta changed")
if not np.array_equal(good_state, m.initial_state()):
    failures.append("state changed")
print(json.dumps({"count": count, "failures": failures}))
"""


@pytest.mark.parametrize("form, optimizer", [
    ("scalar", {"name": "sgd", "learning_rate": 0.1}),
    ("vector", {"name": "sgd", "learning_rate": 0.1}),
    ("scalar", {"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5}),
], ids=["scalar-sgd", "vector-sgd", "scalar-rmsprop"])
def test_hundreds_of_wrong_calls_raise_and_never_crash(tmp_path, form, optimizer):
    spec = {"name": f"wrong_{form}_{optimizer['name']}", "inputs": 3,
            "layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
            "loss": "binary_cross_entropy", "optimizer": optimizer}
    package = symgrad.build(spec, out=tmp_path, backend="c", form=form).package_dir
    script = tmp_path / "wrong_calls.py"
    script.write_text(WRONG_CALLS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(symgrad.__file__).parent.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, str(script), str(package)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, f"the subprocess died (status {result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert report["count"] >= 200

"""Export target ``c``: a spec -> a self-contained, self-testing C99 package for a board.

The kernel files are the very ones the C backend built (the same bytes the Python extension
was compiled from), so everything tested about the kernel holds for the package.  The
self-test's expected values are computed at export time by that extension, through the same
kernel function (``train`` with a per-epoch learning-rate schedule): the board proves it
computes what the host computed, bit for bit.  Templates lie beside this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...emit import template_environment
from ...emit.c import memory_budget
from ...errors import DataError
from ...optimizers import epoch_index
from ..exported import Exported

_TEMPLATES = template_environment(Path(__file__).parent)

#: epochs of the self-test, and of the example program
SELFTEST_EPOCHS = 12
EXAMPLE_EPOCHS = 200
#: rows of the embedded data set when the spec has no example, and the batch size of both programs
DATA_ROWS = 8
BATCH = 4
#: the self-test's learning-rate schedule: the spec's rate times DECAY ** epoch (a run-time argument)
DECAY = 0.9


def export_c(source: Any, init: str | None) -> Exported:
    """The package's files and the lines ``export`` prints (memory budget, notes)."""
    from ...pipeline import build_and_load
    from ...spec import Spec, parse_spec
    from ...training import load_parameters

    spec = source if isinstance(source, Spec) else parse_spec(source)
    result, module = build_and_load(spec, backend="c")
    name = spec.name
    if init is not None:
        theta, state = load_parameters(init, module)
        if state is None:
            state = module.initial_state()
    else:
        theta, state = module.initial_parameters(), module.initial_state()
    dtype = np.dtype(module.DTYPE)
    X, T, origin = _data(spec, module, dtype)
    batch = min(BATCH, X.shape[0])
    kernel = module._kernel
    expected_theta, expected_state = theta.copy(), state.copy()
    rates = np.array([module.LEARNING_RATE * DECAY ** e for e in range(SELFTEST_EPOCHS)], dtype=dtype)
    kernel.train(expected_theta, X, T, SELFTEST_EPOCHS, batch, None, expected_state, learning_rates=rates)
    expected_y = kernel.forward(expected_theta, X[:1])

    real_size = dtype.itemsize
    budget = memory_budget(module.N_PARAMETERS, module.STATE_SIZE, kernel.SCRATCH_SIZE, kernel.PREDICT_SIZE,
                           real_size)
    data_bytes = batch * (module.N_INPUTS + module.N_OUTPUTS) * real_size
    context = {
        "name": name,
        "NAME": name.upper(),
        "real": "float" if dtype == np.float32 else "double",
        "bits": "uint32_t" if dtype == np.float32 else "uint64_t",
        "hex_width": 2 * real_size,
        "stateful": module.STATE_SIZE > 0,
        "theta": _reals(theta, dtype),
        "state": _reals(np.append(state, 0), dtype),  # one spare entry: an array is never empty in C
        "init": init is not None,
        "rows": X.shape[0],
        "origin": origin,
        "X": _reals(X.ravel(), dtype),
        "T": _reals(T.ravel(), dtype),
        "rates": _reals(rates, dtype),
        "decay": DECAY,
        "epochs": SELFTEST_EPOCHS,
        "example_epochs": EXAMPLE_EPOCHS,
        **_schedule_context(spec, module, state, dtype),
        "batch": batch,
        "expected_theta": _bits(expected_theta),
        "expected_state": _bits(np.append(expected_state, np.zeros(1, dtype))),
        "expected_y": _bits(expected_y.ravel()),
        "budget": budget,
        "data_bytes": data_bytes,
    }
    files = {path.name: (result.cache_dir / path.name).read_bytes()
             for path in (result.cache_dir / f"{name}.c", result.cache_dir / f"{name}.h")}
    for template, target in [("init.h.jinja", f"{name}_init.h"), ("init.c.jinja", f"{name}_init.c"),
                             ("data.h.jinja", "data.h"), ("selftest_expected.h.jinja", "selftest_expected.h"),
                             ("selftest.c.jinja", "selftest.c"), ("example.c.jinja", "example.c"),
                             ("Makefile.jinja", "Makefile"), ("CMakeLists.txt.jinja", "CMakeLists.txt"),
                             ("m4f_startup.c.jinja", "m4f_startup.c"), ("m4f.ld.jinja", "m4f.ld")]:
        files[target] = _TEMPLATES.get_template(template).render(context).encode()
    report = [f"memory on the device ({context['real']}, {real_size} bytes a value):"]
    report += [f"  {item['what']:<44} {item['bytes']:>9,} bytes" for item in budget]
    report.append(f"  {'one batch of data (X and T), batch ' + str(batch):<44} {data_bytes:>9,} bytes")
    if dtype == np.float64:
        report.append("note: this spec is float64, so every number above is twice its float32 size and the "
                      "kernel uses double and libm (a single-precision FPU emulates double); set \"dtype\": "
                      "\"float32\" for a float-only kernel")
    return Exported(files, report)


def _schedule_context(spec: Any, module: Any, state: np.ndarray, dtype: np.dtype) -> dict[str, Any]:
    """The example's per-epoch rates when the spec has a schedule, from the state's epoch count on."""
    schedule = spec.optimizer.schedule
    if schedule is None:
        return {"schedule_rates": None}
    first = int(state[epoch_index(module.STATE_LAYOUT)])
    rates = np.array([module.learning_rate(first + e) for e in range(EXAMPLE_EPOCHS)], dtype=dtype)
    return {"schedule_rates": _reals(rates, dtype), "schedule": schedule.describe(), "first_epoch": first}


def _data(spec: Any, module: Any, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, str]:
    """The spec's example, or DATA_ROWS fixed pseudo-random rows (targets one-hot for a softmax output,
    else in (0, 1)), as the data both programs train on."""
    if spec.example is not None:
        X, T = (np.ascontiguousarray(a, dtype=dtype) for a in (spec.example.inputs, spec.example.targets))
        return X, T, "the spec's example"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(DATA_ROWS, module.N_INPUTS)).astype(dtype)
    if module.N_OUTPUTS > 1 and module.LOSS == "cross_entropy":
        T = np.eye(module.N_OUTPUTS, dtype=dtype)[rng.integers(0, module.N_OUTPUTS, DATA_ROWS)]
    else:
        T = rng.uniform(0.1, 0.9, size=(DATA_ROWS, module.N_OUTPUTS)).astype(dtype)
    return X, T, f"{DATA_ROWS} pseudo-random rows (NumPy default_rng(0))"


def _reals(values: np.ndarray, dtype: np.dtype) -> list[str]:
    """Exact C literals: hexadecimal floats (C99), with an F suffix for float."""
    texts = []
    for value in np.asarray(values, dtype=dtype).ravel():
        if not np.isfinite(value):
            raise DataError(f"cannot export the value {value}: C has no literal for it")
        texts.append(float(value).hex() + ("F" if dtype == np.float32 else ""))
    return texts


def _bits(values: np.ndarray) -> list[str]:
    """Each value's IEEE-754 bits as a C hexadecimal constant."""
    width = values.dtype.itemsize
    unsigned = np.dtype(f"u{width}")
    suffix = "UL" if width == 4 else "ULL"
    return [f"0x{int(b):0{2 * width}x}{suffix}" for b in np.ascontiguousarray(values).view(unsigned)]

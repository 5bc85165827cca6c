"""Makes randomized wrong calls to a generated module, in a process of its own.

Usage: python tests/wrong_call_runner.py SPEC.json BACKEND COUNT SEED.  Each call must raise
TypeError or ValueError, or return normally where the contract allows it (NaN or infinite
values in the data propagate into the results).  Prints one JSON object: counts per outcome and
the first few calls that did something else.  A crash shows as the process dying.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import symgrad

BAD_OBJECTS = [None, 1, 2.5, "x", b"x", [1.0, 2.0], {"a": 1}, object(), True, (1, 2)]


USES = {"forward": {"theta", "X"}, "loss": {"theta", "X", "T"}, "gradient": {"theta", "X", "T"},
        "step": {"theta", "X", "T", "state"}, "train": {"theta", "X", "T", "state", "epochs", "batch_size", "seed"},
        "gradient_sum": {"theta", "X", "T"}, "penalty": {"theta"}, "update": {"theta", "grad", "state"}}


def must_fail(function: str, target: str, what: str, args: dict, extra: dict) -> bool:
    """Whether the contract requires this call to raise."""
    if target not in USES[function]:
        return False
    if target in ("epochs", "batch_size", "seed"):
        return True
    value = args[target]
    if what in ("type", "dtype", "ndim", "shape", "extra axis"):
        return True
    if what == "rows":  # any number of rows >= 1 is fine for X alone; X and T must agree
        return function != "forward" or value.shape[0] == 0
    if what == "empty":
        return target != "state" or value.size != 0 or False
    if what == "readonly":
        # an empty state (plain SGD) is never written, so a read-only one may be accepted
        return target in ("theta", "state") and function in ("step", "train", "update") and value.size > 0
    if what in ("strided", "fortran", "reversed view"):
        return not value.flags.c_contiguous
    return False  # non-finite values propagate


def main() -> int:
    spec_path, backend, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    m = symgrad.load(spec_path, backend=backend)
    np.seterr(all="ignore")  # NaN and infinities in the data are allowed to propagate
    rng = np.random.default_rng(seed)
    dtype = m.DTYPE
    n = 4

    def good():
        return {
            "theta": m.initial_parameters(),
            "X": rng.normal(size=(n, m.N_INPUTS)).astype(dtype),
            "T": rng.uniform(size=(n, m.N_OUTPUTS)).astype(dtype),
            "state": m.initial_state(),
            "grad": rng.normal(size=m.N_PARAMETERS).astype(dtype),
        }

    def corrupt(value, name):
        kind = rng.integers(0, 11)
        if kind == 0:
            choices = BAD_OBJECTS[1:] if name == "state" else BAD_OBJECTS  # state=None is allowed
            return choices[rng.integers(len(choices))], "type"
        if kind == 1:
            other = [np.float32, np.float64, np.int64, np.int32, np.complex128, np.bool_, np.float16, object]
            wanted = [t for t in other if np.dtype(t) != value.dtype]
            return value.astype(wanted[rng.integers(len(wanted))]), "dtype"
        if kind == 2:
            return value.reshape(-1) if value.ndim == 2 else value.reshape(1, -1), "ndim"
        if kind == 3:
            shape = list(value.shape)
            axis = rng.integers(len(shape))
            shape[axis] = shape[axis] + int(rng.choice([-1, 1, 3])) if shape[axis] else 2
            return np.zeros(shape, dtype=value.dtype), "rows" if axis == 0 and value.ndim == 2 else "shape"
        if kind == 4 and value.ndim == 2 and value.shape[1] > 1:
            return np.asfortranarray(value), "fortran"
        if kind == 5:
            doubled = np.repeat(value, 2, axis=0)
            return doubled[::2], "strided"
        if kind == 6:
            frozen = value.copy()
            frozen.flags.writeable = False
            return frozen, "readonly"
        if kind == 7 and value.size:
            poisoned = value.copy()
            poisoned.flat[rng.integers(value.size)] = rng.choice([np.nan, np.inf, -np.inf])
            return poisoned, "nonfinite"
        if kind == 8:
            return value[:0], "empty"
        if kind == 9:
            return np.zeros(value.shape + (1,), dtype=value.dtype), "extra axis"
        return value.view(np.ndarray).copy()[..., ::-1] if value.ndim else value, "reversed view"

    outcomes: dict[str, int] = {}
    surprises: list[str] = []
    functions = ["forward", "loss", "gradient", "step", "train", "gradient_sum", "penalty", "update"]
    for _ in range(count):
        args = good()
        function = functions[rng.integers(len(functions))]
        target = ["theta", "X", "T", "state", "grad", "epochs", "batch_size", "seed", "shuffle"][rng.integers(9)]
        extra: dict[str, object] = {}
        what = "none"
        if target in ("theta", "X", "T", "state", "grad"):
            args[target], what = corrupt(args[target], target)
        elif target == "epochs":
            extra["epochs"] = [0, -1, -(2**40), 1.5, "3", None, True, np.float64(2.0), [1]][rng.integers(9)]
        elif target == "batch_size":
            extra["batch_size"] = [0, -3, 1.5, "2", True, [2]][rng.integers(6)]
        elif target == "seed":
            extra["seed"] = [-1, 1.5, "x", [1]][rng.integers(4)]
        else:
            extra["shuffle"] = rng.choice([True, False])
        call = f"{function}({target}: {what} {extra})"
        try:
            if function == "forward":
                m.forward(args["theta"], args["X"])
            elif function == "loss":
                m.loss(args["theta"], args["X"], args["T"])
            elif function == "gradient":
                m.gradient(args["theta"], args["X"], args["T"])
            elif function == "step":
                m.step(args["theta"], args["X"], args["T"], state=args["state"])
            elif function == "gradient_sum":
                m.gradient_sum(args["theta"], args["X"], args["T"])
            elif function == "penalty":
                m.penalty(args["theta"])
            elif function == "update":
                m.update(args["theta"], args["grad"], state=args["state"])
            else:
                epochs = extra.get("epochs", 2)
                m.train(args["theta"], args["X"], args["T"], epochs, batch_size=extra.get("batch_size", 2),
                        shuffle=extra.get("shuffle", "seed" in extra), seed=extra.get("seed"), state=args["state"])
            outcome = "returned"
        except (TypeError, ValueError) as error:
            outcome = type(error).__name__
            if not str(error):
                surprises.append(f"{call}: {outcome} without a message")
        except Exception as error:  # noqa: BLE001 -- what we are looking for
            outcome = "other"
            surprises.append(f"{call}: {type(error).__name__}: {error}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "returned" and must_fail(function, target, what, args, extra):
            surprises.append(f"{call}: returned normally")
    print(json.dumps({"backend": m.BACKEND, "outcomes": outcomes, "surprises": surprises[:20], "count": count}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

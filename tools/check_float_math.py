"""Accuracy of the float-only math functions of float32 kernels against the C library in double.

    python tools/check_float_math.py [--points N]

Compiles ``symgrad/emit/c/float_math.h`` with a small harness (``$CC``, else cc), evaluates every
function on a dense grid and random points over the range a network uses, and prints the largest
and mean error in float32 ulp of the correctly rounded value (NumPy's float64 functions and
``math.erf`` as the reference).  Exit 1 when a function exceeds its bound in ``BOUNDS``.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

HEADER = Path(__file__).resolve().parent.parent / "symgrad" / "emit" / "c" / "float_math.h"
STRICT_FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion",
                "-ffp-contract=off", "-O2"]

#: C function -> the bound in ulp this repository promises.  Set from runs of 2,000,000 points per
#: range (the default 200,000 found less: sg_tanhf 3.13 and sg_powf 26.3 appeared only then).
#: pow's follows from its form e**(y log|x|): log's ~2 ulp and the product's rounding, times
#: |y log|x|| <= 10, plus exp's ~1 ulp, gives about 26 ulp; 32 leaves room for the ulp of log|x|
#: being up to twice its relative error.
BOUNDS: dict[str, float] = {"sg_expf": 2, "sg_logf": 2, "sg_log1pf": 4, "sg_tanhf": 4, "sg_erff": 3,
                            "sg_sigmoidf": 3, "sg_softplusf": 4, "sg_powf": 32}
#: the functions of two arguments (x, y); the rest take one
BINARY = ("sg_powf",)
UNARY = tuple(name for name in BOUNDS if name not in BINARY)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def cases(points: int, seed: int = 0) -> dict[str, tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]]:
    rng = np.random.default_rng(seed)
    erf = np.frompyfunc(math.erf, 1, 1)
    return {
        "sg_expf": (np.exp, np.concatenate([np.linspace(-103, 88.7, points), rng.uniform(-20, 20, points)])),
        "sg_logf": (np.log, np.concatenate([np.exp(rng.uniform(-100, 88, points)), np.linspace(0.5, 2, points)])),
        "sg_log1pf": (np.log1p, np.concatenate([np.exp(rng.uniform(-100, 0, points)), np.linspace(0, 1, points)])),
        "sg_tanhf": (np.tanh, np.concatenate([np.linspace(-12, 12, points), rng.normal(0, 0.3, points)])),
        "sg_erff": (lambda x: erf(x).astype(np.float64),
                    np.concatenate([np.linspace(-5, 5, points), np.exp(rng.uniform(-60, 1.5, points // 4))])),
        "sg_sigmoidf": (_sigmoid, np.linspace(-100, 100, points)),
        "sg_softplusf": (lambda x: np.logaddexp(0, x), np.linspace(-100, 100, points)),
        "sg_powf": (lambda xy: np.power(xy[0], xy[1]), _pow_points(rng, points)),
    }


def _pow_points(rng: np.random.Generator, points: int) -> np.ndarray:
    """(x, y) pairs with |y log x| <= 10: small integer powers, the optimizers' beta**step, and
    non-integer exponents of positive bases (formulas such as abs(t - o)**1.5)."""
    x = np.concatenate([rng.uniform(-3, 3, points), rng.uniform(0.8, 0.9999, points), rng.uniform(0.01, 4, points)])
    y = np.concatenate([rng.integers(-8, 9, points), rng.integers(1, 20_000, points), rng.uniform(-4, 4, points)])
    keep = np.abs(y * np.log(np.abs(x).astype(np.float32).astype(np.float64))) <= 10
    return np.stack([x[keep], y[keep]]).astype(np.float32)


def compile_harness(folder: Path) -> ctypes.CDLL:
    """float_math.h behind one array function per math function, compiled with the strict flags."""
    source = folder / "harness.c"
    lines = [f'#include "{HEADER}"']
    for name in UNARY:
        lines.append(f"void map_{name}(const float *x, float *y, long n) {{ long i; for (i = 0; i < n; i++) "
                     f"y[i] = {name}(x[i]); }}")
    for name in BINARY:
        lines.append(f"void map_{name}(const float *x, float *y, long n) {{ long i; for (i = 0; i < n; i++) "
                     f"y[i] = {name}(x[i], x[n + i]); }}")
    source.write_text("\n".join(lines) + "\n")
    library = folder / "harness.so"
    cc = shlex.split(os.environ.get("CC", "cc"))
    subprocess.run([*cc, *STRICT_FLAGS, "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    return ctypes.CDLL(str(library))


def ulp_errors(library: ctypes.CDLL, name: str, reference: Callable[[np.ndarray], np.ndarray],
               x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)  # (n,), or (2, n) for a function of two arguments
    y = np.empty(x.shape[-1], dtype=np.float32)
    getattr(library, f"map_{name}")(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
                                    ctypes.c_long(y.size))
    exact = reference(x.astype(np.float64))
    ulp = np.maximum(np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64),
                     float(np.finfo(np.float32).smallest_subnormal))
    return np.abs(y.astype(np.float64) - exact) / ulp


def measure(points: int = 100_000) -> dict[str, tuple[float, float, float]]:
    """function -> (largest error in ulp, at which x, mean error in ulp)."""
    with tempfile.TemporaryDirectory() as folder:
        library = compile_harness(Path(folder))
        results = {}
        for name, (reference, x) in cases(points).items():
            errors = ulp_errors(library, name, reference, x)
            worst = int(np.argmax(errors))
            at = x[..., worst]
            results[name] = (float(errors[worst]), float(at) if at.ndim == 0 else tuple(float(v) for v in at),
                             float(errors.mean()))
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200_000, help="grid points per range (default 200000)")
    args = parser.parse_args()
    results = measure(args.points)
    print(f"{'function':14s} {'max ulp':>8s} {'at x':>14s} {'mean ulp':>9s} {'bound':>6s}")
    failed = False
    for name, (worst, at, mean) in results.items():
        ok = worst <= BOUNDS[name]
        failed |= not ok
        where = f"{at:14.7g}" if isinstance(at, float) else ", ".join(f"{v:.7g}" for v in at)
        print(f"{name:14s} {worst:8.2f} {where:>14s} {mean:9.3f} {BOUNDS[name]:6g}{'' if ok else '  EXCEEDED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

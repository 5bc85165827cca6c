"""Helpers shared by tools/bench_build.py, tools/bench_tiny.py and tools/check_autodiff.py.

Nothing here is part of symgrad: the tools run from the repository root (``python tools/x.py``)
and import symgrad from the checkout.  Timing rules: median of repeats, contenders interleaved
round by round (the order rotates each round, so a slow phase of the shared machine hits every
contender alike), ratios taken from medians measured in the same run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python tools/x.py` puts tools/, not the repo root, on sys.path
    sys.path.insert(0, str(REPO_ROOT))

EXAMPLES = REPO_ROOT / "examples"


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_seconds(seconds: float | None) -> str:
    """A duration with a unit that keeps 3-4 significant digits readable."""
    if seconds is None:
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3f} us"
    return f"{seconds * 1e9:.1f} ns"


def print_table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """A plain-text table with a header rule; cells are str()-ed and left aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if title:
        print(title)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|-" + "-|-".join("-" * w for w in widths) + "-|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print()


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int, number: int | dict[str, int] = 1,
                limit: dict[str, int] | None = None, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each contender, ``rounds`` samples each, taken round by round.

    Each sample times ``number`` back-to-back calls (a per-contender dict is allowed) and is
    divided by it, so fast calls are not swamped by the clock's own cost.  The order of the
    contenders rotates each round.  ``limit`` caps the samples of slow contenders (they take
    part in the first rounds only).  ``warmup`` untimed calls per contender come first.
    """
    names = list(contenders)
    numbers = number if isinstance(number, dict) else {name: number for name in names}
    limit = limit or {}
    for name in names:
        for _ in range(warmup):
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if len(samples[name]) >= limit.get(name, rounds):
                continue
            fn, n = contenders[name], numbers[name]
            if n == 1:
                start = clock()
                fn()
                samples[name].append(clock() - start)
            else:
                start = clock()
                for _ in range(n):
                    fn()
                samples[name].append((clock() - start) / n)
    return samples


def calibrate(fn: Callable[[], Any], target_seconds: float) -> int:
    """How many calls of ``fn`` take about ``target_seconds`` (at least 1).

    From the median of several timed batches after two warm-up calls, so one busy moment of
    the machine does not decide how a contender is sampled.
    """
    fn()  # first calls pay for lazy binding, page faults and caches: not representative
    fn()
    n = 1
    while True:  # grow a batch until it is long enough for the clock
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= 2e-4 or n >= 1 << 20:
            break
        n *= 4
    per_call = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - start) / n)
    return max(1, int(target_seconds / statistics.median(per_call)))


def try_load(spec: Any, backend: str, **kwargs: Any) -> tuple[Any, str | None]:
    """(module, None), or (None, reason) when symgrad cannot give this backend.

    A backend that does not exist yet raises symgrad.SymgradError; anything else that goes
    wrong while building is also reported (with its type) instead of crashing the benchmark,
    so the tools keep working while a backend is being written.
    """
    import symgrad

    try:
        return symgrad.load(spec, backend=backend, **kwargs), None
    except symgrad.SymgradError as error:
        return None, f"{type(error).__name__}: {first_line(error)}"
    except Exception as error:  # noqa: BLE001 - reported, and the row says so
        return None, f"{type(error).__name__} while building/loading: {first_line(error)}"


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def optional_import(name: str) -> tuple[Any, str | None]:
    """(module, None) or (None, reason): torch and jax are never required."""
    try:
        module = __import__(name)
    except Exception as error:  # noqa: BLE001 - ImportError, or a broken half-installed package
        return None, f"{name} not importable: {type(error).__name__}: {first_line(error)}"
    return module, None


@contextlib.contextmanager
def temporary_cache(keep: str | None = None):
    """Point SYMGRAD_CACHE at a fresh temporary directory (or at ``keep``) for the block."""
    old = os.environ.get("SYMGRAD_CACHE")
    path = keep or tempfile.mkdtemp(prefix="symgrad-bench-")
    os.environ["SYMGRAD_CACHE"] = path
    try:
        yield Path(path)
    finally:
        if old is None:
            os.environ.pop("SYMGRAD_CACHE", None)
        else:
            os.environ["SYMGRAD_CACHE"] = old
        if keep is None:
            shutil.rmtree(path, ignore_errors=True)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def machine_line() -> str:
    import platform

    import numpy as np

    return (f"Python {platform.python_version()}, NumPy {np.__version__}, {os.cpu_count()} CPUs, "
            f"{platform.machine()}; medians of interleaved repeats")


def split_layers(flat, n_in: int, n_hidden: int, n_out: int):
    """(W1, b1, W2, b2) as views of a flat D-H-O vector in symgrad's theta layout (DESIGN.md section 4)."""
    cuts = [n_hidden * n_in, n_hidden * (n_in + 1), n_hidden * (n_in + 1) + n_out * n_hidden]
    return (flat[:cuts[0]].reshape(n_hidden, n_in), flat[cuts[0]:cuts[1]],
            flat[cuts[1]:cuts[2]].reshape(n_out, n_hidden), flat[cuts[2]:cuts[2] + n_out])

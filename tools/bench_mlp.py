#!/usr/bin/env python
"""MLP training speed against JAX and hand-written NumPy (issue 5 item 4), all in one run.

    python tools/bench_mlp.py            # full run (a few minutes)
    python tools/bench_mlp.py --quick    # smoke run: few repeats, nothing asserted
    python tools/bench_mlp.py --parts 3,4 --busy   # some parts, with another process spinning on one core

1. digits 64-32-10 (examples/digits.json: tanh, softmax, cross-entropy mean, float32) on
   examples/digits.npz (1,797 images), ONE EPOCH at batch 32 without shuffling: 57 minibatch
   steps, the last of 5 examples.  Contenders, each starting from the same theta every call:
   - symgrad C and NumPy: ``m.train(theta, X, T, 1, batch_size=32)``;
   - JAX: the whole epoch is one jitted function, the 56 full batches inside ``lax.scan`` and the
     short last batch after it (compile time excluded; ``block_until_ready``);
   - a hand-written float32 NumPy epoch (HandEpoch below: preallocated buffers, in-place
     operations, lr/n folded into the output delta, one flat gradient buffer).
   Measured twice: with the spec's momentum 0.9 and with plain SGD (momentum 0), so the
   optimizer's share is visible.  Every contender is first checked to reach the same theta
   as symgrad's NumPy backend after one epoch (float32: relative 1e-4 of theta's scale).
   Targets: best symgrad backend <= 0.8 x JAX (issue 17 item 2), and <= 0.5 x the hand-written
   NumPy epoch.  ``--digits`` runs this section alone.
2. 784-256-10 (examples/mnist_mlp.json with "dtype": "float32"), ONE STEP at batch 128: the
   NumPy backend's ``m.step`` against tools/bench_build.py's hand-written step in float32 (same
   flat theta layout; checked to give the same loss and theta first).  Target: <= 1.10.
3. backend="auto": for each spec above and a few more sizes, the C and NumPy times of the
   same work and the backend that ``symgrad.load(spec, backend="auto")`` sends a call of that
   batch size to (per call: ``backend_for(rows)`` of a BACKEND "auto" module); PASS when it
   picked the faster one (or one within 10% of it: the machine is shared and noisy).
4. 784-256-10 (relu/softmax, cross-entropy, float32), 100 SGD steps at batch 128 through ``m.train``
   (issue 17 item 3): the NumPy backend against JAX (``jit`` of the 100 steps in ``lax.scan``) and a
   hand-written NumPy loop (bench_build.HandStep, BLAS threads as NumPy starts them), and symgrad
   again inside threadpoolctl's limit of one BLAS thread (what train's own thread policy must not be
   slower than).  Target: symgrad / JAX <= 1.0.  With --busy, another process holds one core.

--busy starts a process that spins on one core for the whole run (and stops it at the end), so the
tables show what a busy machine does to each contender; the load average is printed with each part.

Timing: contenders interleaved round by round (_bench_common.interleaved), medians, ratios
from medians of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _bench_common import (  # noqa: E402
    EXAMPLES,
    fmt_seconds,
    interleaved,
    machine_line,
    median,
    optional_import,
    print_table,
    split_layers,
    temporary_cache,
    try_load,
    verdict,
)

DIGITS_SPEC = EXAMPLES / "digits.json"
DIGITS_DATA = EXAMPLES / "digits.npz"
MNIST_SPEC = EXAMPLES / "mnist_mlp.json"
EPOCH_BATCH = 32
STEP_BATCH = 128
JAX_TARGET = 0.8        # best symgrad epoch / JAX epoch (issue 17 item 2)
HAND_EPOCH_TARGET = 0.5  # best symgrad epoch / hand-written NumPy epoch
STEP_TARGET = 1.10      # NumPy backend step / hand-written step
AUTO_SLACK = 1.10       # auto's pick may be this much slower than the other backend (noise)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    data = np.load(DIGITS_DATA)
    X = np.ascontiguousarray(data["X"], dtype=np.float32)
    if "T" in data.files:
        T = np.ascontiguousarray(data["T"], dtype=np.float32)
    else:
        T = np.zeros((X.shape[0], 10), np.float32)
        T[np.arange(X.shape[0]), data["y"]] = 1
    return X, T


def digits_spec(momentum: float) -> dict[str, Any]:
    spec = json.loads(DIGITS_SPEC.read_text())
    spec["optimizer"] = dict(spec["optimizer"], momentum=momentum)
    if not momentum:
        spec["optimizer"].pop("momentum")
        spec["name"] = "digits_sgd"
    return spec


# -- hand-written NumPy -----------------------------------------------------------------------------

class HandEpoch:
    """One epoch of minibatch SGD (optionally momentum, PyTorch's rule) of a D-H-O tanh/softmax
    network, cross-entropy mean, float32, written for speed.

    theta layout (DESIGN.md section 4): W1 (H x D), b1 (H), W2 (O x H), b2 (O).  Buffers for
    every batch size the epoch uses are allocated once; lr/n is folded into the output delta so
    the four products write lr * dE/dtheta straight into one flat buffer (views), and the update
    is one in-place subtraction (with momentum: buf = m * buf + g; theta -= buf, the first step
    taking buf = g, as torch.optim.SGD does with dampening 0).
    """

    def __init__(self, D: int, H: int, O: int, n: int, batch: int, lr: float, momentum: float):
        self.shapes, self.lr, self.momentum = (D, H, O), lr, momentum
        size = H * D + H + O * H + O
        self.starts = list(range(0, n, batch))
        self.batch = batch
        f32 = np.float32
        self.g = np.empty(size, f32)
        self.buf = np.empty(size, f32)
        self.gW1, self.gb1, self.gW2, self.gb2 = split_layers(self.g, D, H, O)
        self.work = {}
        for size in {min(batch, n - s) for s in self.starts}:
            self.work[size] = (np.empty((size, H), f32), np.empty((size, H), f32), np.empty((size, O), f32),
                               np.empty((size, 1), f32))

    def __call__(self, theta: np.ndarray, X: np.ndarray, T: np.ndarray) -> float:
        D, H, O = self.shapes
        W1, b1, W2, b2 = split_layers(theta, D, H, O)
        total = 0.0
        for step, s in enumerate(self.starts):
            x, t = X[s:s + self.batch], T[s:s + self.batch]
            n = x.shape[0]
            a1, d1, e, col = self.work[n]
            np.matmul(x, W1.T, out=a1)
            a1 += b1
            np.tanh(a1, out=a1)
            np.matmul(a1, W2.T, out=e)
            e += b2
            np.max(e, axis=1, keepdims=True, out=col)
            e -= col
            # loss = mean over rows of (log sum exp - t.z), one-hot or not: sum(t) weighs log sum exp
            tz = float(np.vdot(t, e))
            np.exp(e, out=e)
            np.sum(e, axis=1, keepdims=True, out=col)
            total += (float(np.log(col).ravel() @ t.sum(axis=1)) - tz) / n
            e /= col                                   # softmax
            e -= t                                     # dE/dz2 times n, for one-hot rows (sum t = 1)
            e *= np.float32(self.lr / n)
            np.matmul(e.T, a1, out=self.gW2)
            e.sum(axis=0, out=self.gb2)
            np.matmul(e, W2, out=d1)                   # W2 before the update
            np.square(a1, out=a1)
            np.subtract(1, a1, out=a1)                 # tanh' = 1 - a^2
            d1 *= a1
            np.matmul(d1.T, x, out=self.gW1)
            d1.sum(axis=0, out=self.gb1)
            if self.momentum:                          # lr folded in: buf and g are both times lr
                if step == 0:
                    self.buf[:] = self.g
                else:
                    self.buf *= np.float32(self.momentum)
                    self.buf += self.g
                theta -= self.buf
            else:
                theta -= self.g
        return total / len(self.starts)


# -- JAX ------------------------------------------------------------------------------------------

def jax_epoch(D: int, H: int, O: int, n: int, batch: int, lr: float, momentum: float):
    """(params from a flat theta, jitted epoch(params, X, T) -> (params, buffers), flat theta from params)."""
    jax, reason = optional_import("jax")
    if jax is None:
        return None, reason
    import jax.numpy as jnp
    from jax import lax

    full = n // batch
    rest = n - full * batch

    def loss(p, x, t):
        W1, b1, W2, b2 = p
        a1 = jnp.tanh(x @ W1.T + b1)
        z2 = a1 @ W2.T + b2
        return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(z2), axis=1))

    grad = jax.value_and_grad(loss)

    def step(carry, xt):
        p, buf, first = carry
        value, g = grad(p, *xt)
        if momentum:
            buf = jax.tree_util.tree_map(lambda b, gi: jnp.where(first, gi, momentum * b + gi), buf, g)
            p = jax.tree_util.tree_map(lambda pi, bi: pi - lr * bi, p, buf)
        else:
            p = jax.tree_util.tree_map(lambda pi, gi: pi - lr * gi, p, g)
        return (p, buf, jnp.bool_(False)), value

    @jax.jit
    def epoch(p, X, T):
        buf = jax.tree_util.tree_map(jnp.zeros_like, p)
        Xb = X[:full * batch].reshape(full, batch, D)
        Tb = T[:full * batch].reshape(full, batch, O)
        (p, buf, first), losses = lax.scan(step, (p, buf, jnp.bool_(True)), (Xb, Tb))
        total = losses.sum()
        if rest:
            (p, buf, first), last = step((p, buf, first), (X[full * batch:], T[full * batch:]))
            total = total + last
        return p, total / (full + (1 if rest else 0))

    def to_params(theta):
        return tuple(jnp.asarray(part) for part in split_layers(theta, D, H, O))

    def to_theta(p):
        return np.concatenate([np.asarray(a).ravel() for a in p])

    return (to_params, epoch, to_theta), None


# -- 1. the digits epoch -------------------------------------------------------------------------------

def difference_note(label: str, got: np.ndarray, expected: np.ndarray, bound: float) -> str:
    """`label` and the largest difference of two thetas, marked when above `bound` (not the same work)."""
    diff = float(np.max(np.abs(got - expected)))
    return f"{label} {diff:.1e}" + ("" if diff <= bound else "  <-- MISMATCH: not the same work")


def bench_digits(momentum: float, rounds: int) -> tuple[list[list[Any]], dict[str, float | None], list[str]]:
    spec = digits_spec(momentum)
    X, T = load_digits()
    n = X.shape[0]
    D, H, O = spec["inputs"], spec["layers"][0]["units"], spec["layers"][1]["units"]
    lr = float(spec["optimizer"]["learning_rate"])
    notes: list[str] = []
    modules = {}
    for backend in ("c", "numpy"):
        module, reason = try_load(spec, backend)
        modules[backend] = module
        if module is None:
            notes.append(f"symgrad {backend}: not available ({reason})")
    reference = modules["numpy"] or modules["c"]
    if reference is None:
        return [], {}, notes
    theta0 = reference.initial_parameters()
    expected = theta0.copy()
    reference.train(expected, X, T, 1, batch_size=EPOCH_BATCH)
    scale = float(np.max(np.abs(expected)))

    def agrees(label: str, theta: np.ndarray) -> None:
        notes.append(difference_note(f"{label}: max |theta - NumPy backend's| after one epoch", theta, expected,
                                     1e-4 * scale))

    contenders: dict[str, Callable[[], Any]] = {}
    for backend, module in modules.items():
        if module is None:
            continue
        theta = theta0.copy()
        module.train(theta, X, T, 1, batch_size=EPOCH_BATCH)
        agrees(f"symgrad {backend}", theta)

        def run(module=module, theta=theta):
            theta[:] = theta0
            module.train(theta, X, T, 1, batch_size=EPOCH_BATCH)
        contenders[f"symgrad {backend}"] = run

    hand = HandEpoch(D, H, O, n, EPOCH_BATCH, lr, momentum)
    theta_h = theta0.copy()
    hand(theta_h, X, T)
    agrees("hand-written NumPy", theta_h)

    def run_hand():
        theta_h[:] = theta0
        hand(theta_h, X, T)
    contenders["hand-written NumPy"] = run_hand

    made, reason = jax_epoch(D, H, O, n, EPOCH_BATCH, lr, momentum)
    if made is None:
        notes.append(f"JAX: not available ({reason})")
    else:
        to_params, epoch, to_theta = made
        import jax.numpy as jnp
        p0, Xj, Tj = to_params(theta0), jnp.asarray(X), jnp.asarray(T)
        p, _ = epoch(p0, Xj, Tj)  # compiles
        agrees("JAX", to_theta(p))

        def run_jax():
            p, total = epoch(p0, Xj, Tj)
            total.block_until_ready()
            p[0].block_until_ready()
        contenders["JAX lax.scan"] = run_jax

    samples = interleaved(contenders, rounds, warmup=3)
    med = {name: median(values) for name, values in samples.items()}
    times: dict[str, float | None] = {name: med.get(name) for name in
                                      ("symgrad c", "symgrad numpy", "JAX lax.scan", "hand-written NumPy")}
    rows = []
    base = med["hand-written NumPy"]
    for name in ("symgrad c", "symgrad numpy", "JAX lax.scan", "hand-written NumPy"):
        if name in med:
            rows.append([name, fmt_seconds(med[name]), fmt_seconds(min(samples[name])), f"{med[name] / base:.3f}",
                         f"{med[name] / med['JAX lax.scan']:.3f}" if "JAX lax.scan" in med else "n/a",
                         len(samples[name])])
        else:
            rows.append([name, "n/a", "", "", "", 0])
    return rows, times, notes


# -- 2. the 784-256-10 step -----------------------------------------------------------------------------

def mnist_spec32() -> dict[str, Any]:
    spec = json.loads(MNIST_SPEC.read_text())
    spec["dtype"] = "float32"
    spec["name"] = "mnist_mlp32"
    return spec


def step_problem(D: int, O: int, batch: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.random((batch, D)).astype(dtype)
    T = np.zeros((batch, O), dtype)
    T[np.arange(batch), rng.integers(0, O, batch)] = 1
    return X, T


def bench_mnist_step(rounds: int) -> tuple[list[list[Any]], float | None, list[str], dict[str, float]]:
    from bench_build import HandStep

    spec = mnist_spec32()
    D, H, O = spec["inputs"], spec["layers"][0]["units"], spec["layers"][1]["units"]
    lr = float(spec["optimizer"]["learning_rate"])
    X, T = step_problem(D, O, STEP_BATCH, np.float32)
    notes: list[str] = []
    modules = {}
    for backend in ("numpy", "c"):
        modules[backend], reason = try_load(spec, backend)
        if modules[backend] is None:
            notes.append(f"symgrad {backend}: not available ({reason})")
    m = modules["numpy"]
    if m is None:
        return [], None, notes, {}
    hand = HandStep(D, H, O, STEP_BATCH, lr, dtype=np.float32)
    theta0 = m.initial_parameters()
    theta_g, theta_h = theta0.copy(), theta0.copy()
    loss_g, loss_h = m.step(theta_g, X, T), hand(theta_h, X, T)
    diff = float(np.max(np.abs(theta_g - theta_h)))
    same = abs(loss_g - loss_h) <= 1e-5 * abs(loss_h) and diff <= 1e-5 * float(np.max(np.abs(theta_h)))
    notes.append(f"one step from the same theta (float32): loss {loss_g:.7g} vs {loss_h:.7g}, max |theta diff| "
                 f"{diff:.1e}" + ("" if same else "  <-- MISMATCH: not the same work"))
    contenders = {"symgrad numpy m.step": lambda: m.step(theta_g, X, T),
                  "hand-written NumPy step": lambda: hand(theta_h, X, T)}
    if modules["c"] is not None:
        mc = modules["c"]
        theta_c = theta0.copy()
        contenders["symgrad c m.step"] = lambda: mc.step(theta_c, X, T)
    samples = interleaved(contenders, rounds, warmup=3)
    med = {name: median(values) for name, values in samples.items()}
    base = med["hand-written NumPy step"]
    rows = [[name, fmt_seconds(med[name]), fmt_seconds(min(samples[name])), f"{med[name] / base:.3f}", len(samples[name])]
            for name in contenders]
    ratio = med["symgrad numpy m.step"] / base
    times = {"numpy": med["symgrad numpy m.step"]}
    if "symgrad c m.step" in med:
        times["c"] = med["symgrad c m.step"]
    return rows, (ratio if same else float("nan")), notes, times


# -- 3. backend="auto" ------------------------------------------------------------------------------

def relu_spec(D: int, H: int, O: int, dtype: str) -> dict[str, Any]:
    return {"name": f"auto_{D}_{H}_{O}_{dtype}", "inputs": D,
            "layers": [{"units": H, "activation": "relu"}, {"units": O, "activation": "softmax"}],
            "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.01},
            "initial": {"scheme": "he_uniform", "seed": 0}, "dtype": dtype}


def bench_auto_case(label: str, spec: dict[str, Any], batch: int, rounds: int,
                    known: dict[str, float] | None = None) -> list[Any]:
    """One row: params, batch, C time, NumPy time, auto's pick, PASS/FAIL.  `known` reuses times
    measured above for the same work (so the table and the targets agree)."""
    auto, reason = try_load(spec, "auto")
    if auto is None:
        picked = f"n/a ({reason})"
    else:  # a BACKEND "auto" module decides per call: what it does with a batch of this size
        picked = auto.backend_for(batch).BACKEND if auto.BACKEND == "auto" else auto.BACKEND
    if known is None:
        modules = {b: try_load(spec, b)[0] for b in ("c", "numpy")}
        if any(m is None for m in modules.values()):
            return [label, "", batch, "n/a", "n/a", picked, "", "n/a"]
        m = modules["numpy"]
        X, T = step_problem(m.N_INPUTS, m.N_OUTPUTS, 16 * batch, np.dtype(m.DTYPE))
        theta0 = m.initial_parameters()
        runs = {}
        for backend, module in modules.items():
            theta = theta0.copy()

            def run(module=module, theta=theta):
                theta[:] = theta0
                module.train(theta, X, T, 1, batch_size=batch)
            runs[backend] = run
        samples = interleaved(runs, rounds, warmup=2)
        known = {b: median(s) / 16 for b, s in samples.items()}  # per batch of `batch` examples
    c, numpy_ = known["c"], known["numpy"]
    faster = "c" if c <= numpy_ else "numpy"
    ok = None if picked not in ("c", "numpy") else (known[picked] <= AUTO_SLACK * min(c, numpy_))
    n_params = auto.N_PARAMETERS if auto is not None else ""
    return [label, f"{n_params:,}" if n_params else "", batch, fmt_seconds(c), fmt_seconds(numpy_),
            f"{c / numpy_:.2f}", picked, faster, verdict(ok)]


# -- 4. 784-256-10, 100 steps through train ----------------------------------------------------------

TRAIN_STEPS = 100
TRAIN_TARGET = 1.0  # symgrad train / JAX lax.scan


def jax_train(D: int, H: int, O: int, steps: int, batch: int, lr: float):
    """(params from theta, jitted run(params, X, T) -> (params, losses), theta from params): `steps`
    SGD steps of a relu/softmax network inside lax.scan; or (None, reason)."""
    jax, reason = optional_import("jax")
    if jax is None:
        return None, reason
    import jax.numpy as jnp
    from jax import lax

    def loss(p, x, t):
        W1, b1, W2, b2 = p
        a1 = jax.nn.relu(x @ W1.T + b1)
        return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(a1 @ W2.T + b2), axis=1))

    grad = jax.value_and_grad(loss)

    def step(p, xt):
        value, g = grad(p, *xt)
        return jax.tree_util.tree_map(lambda pi, gi: pi - lr * gi, p, g), value

    @jax.jit
    def run(p, X, T):
        return lax.scan(step, p, (X.reshape(steps, batch, D), T.reshape(steps, batch, O)))

    def to_params(theta):
        return tuple(jnp.asarray(part) for part in split_layers(theta, D, H, O))

    def to_theta(p):
        return np.concatenate([np.asarray(a).ravel() for a in p])

    return (to_params, run, to_theta), None


def bench_mnist_train(rounds: int) -> tuple[list[list[Any]], float | None, list[str]]:
    from bench_build import HandStep

    spec = mnist_spec32()
    D, H, O = spec["inputs"], spec["layers"][0]["units"], spec["layers"][1]["units"]
    lr = float(spec["optimizer"]["learning_rate"])
    X, T = step_problem(D, O, STEP_BATCH * TRAIN_STEPS, np.float32)
    notes: list[str] = []
    m, reason = try_load(spec, "numpy")
    if m is None:
        return [], None, [f"symgrad numpy: not available ({reason})"]
    theta0 = m.initial_parameters()
    scale = float(np.max(np.abs(theta0)))
    hand = HandStep(D, H, O, STEP_BATCH, lr, dtype=np.float32)

    def hand_train(theta):
        for start in range(0, X.shape[0], STEP_BATCH):
            hand(theta, X[start:start + STEP_BATCH], T[start:start + STEP_BATCH])

    # same work: one step from the same theta (float32, relative 1e-5 of theta's scale); over 100 steps a
    # relu whose net input is within rounding of 0 may switch in one contender only, so the 100-step
    # difference is shown, not judged
    one = theta0.copy()
    m.train(one, X[:STEP_BATCH], T[:STEP_BATCH], 1)
    contenders: dict[str, Callable[[], Any]] = {}
    theta_s, theta_h = theta0.copy(), theta0.copy()

    def run_symgrad():
        theta_s[:] = theta0
        m.train(theta_s, X, T, 1, batch_size=STEP_BATCH)
    contenders["symgrad numpy train"] = run_symgrad
    threadpoolctl, _ = optional_import("threadpoolctl")
    if threadpoolctl is not None:  # the policy's yardstick: the caller limits BLAS to one thread
        def run_symgrad_one():
            with threadpoolctl.threadpool_limits(1, user_api="blas"):
                run_symgrad()
        contenders["symgrad numpy train, caller's 1 BLAS thread"] = run_symgrad_one

    def run_hand():
        theta_h[:] = theta0
        hand_train(theta_h)
    contenders["hand-written NumPy loop"] = run_hand
    check = theta0.copy()
    hand(check, X[:STEP_BATCH], T[:STEP_BATCH])
    notes.append(difference_note("hand-written NumPy: one step max |theta diff|", check, one, 1e-5 * scale))

    made, reason = jax_train(D, H, O, TRAIN_STEPS, STEP_BATCH, lr)
    if made is None:
        notes.append(f"JAX: not available ({reason})")
    else:
        import jax.numpy as jnp

        to_params, run, to_theta = made
        _, run1, _ = jax_train(D, H, O, 1, STEP_BATCH, lr)[0]
        p, _ = run1(to_params(theta0), jnp.asarray(X[:STEP_BATCH]), jnp.asarray(T[:STEP_BATCH]))
        notes.append(difference_note("JAX: one step max |theta diff|", to_theta(p), one, 1e-5 * scale))
        p0, Xj, Tj = to_params(theta0), jnp.asarray(X), jnp.asarray(T)
        p, losses = run(p0, Xj, Tj)  # compiles
        run_symgrad()
        notes.append(f"after {TRAIN_STEPS} steps: max |theta(symgrad) - theta(JAX)| "
                     f"{float(np.max(np.abs(to_theta(p) - theta_s))):.1e} (float32)")

        def run_jax():
            p, losses = run(p0, Xj, Tj)
            losses.block_until_ready()
            p[0].block_until_ready()
        contenders["JAX jit(lax.scan)"] = run_jax

    loads = [os.getloadavg()[0]]
    samples = interleaved(contenders, rounds, warmup=2)
    loads.append(os.getloadavg()[0])
    med = {name: median(values) / TRAIN_STEPS for name, values in samples.items()}
    jax_t = med.get("JAX jit(lax.scan)")
    rows = [[name, fmt_seconds(med[name]), fmt_seconds(min(samples[name]) / TRAIN_STEPS),
             "n/a" if not jax_t else f"{med[name] / jax_t:.3f}",
             f"{med[name] / med['hand-written NumPy loop']:.3f}", len(samples[name])] for name in contenders]
    notes.append(f"load average (1 min) {loads[0]:.2f} before, {loads[1]:.2f} after; {os.cpu_count()} CPUs")
    ratio = None if not jax_t else med["symgrad numpy train"] / jax_t
    return rows, ratio, notes


class Busy:
    """A process spinning on one core for the block (`--busy`); stopped by its own pid at the end."""

    def __init__(self, on: bool):
        self.on = on
        self.process = None

    def __enter__(self):
        if self.on:
            import subprocess
            import time

            self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(3)  # let the load average and the run queue see it
        return self

    def __exit__(self, *exception):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        return False


# -- the run --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few repeats, fewer auto cases")
    parser.add_argument("--rounds", type=int, help="samples per contender (default 41, --quick 3)")
    parser.add_argument("--parts", default="1,2,3,4", help="the parts to run, e.g. 3,4 (default all)")
    parser.add_argument("--busy", action="store_true", help="keep another process spinning on one core meanwhile")
    parser.add_argument("--digits", action="store_true", help="part 1 (the digits epoch) and its targets only")
    args = parser.parse_args(argv)
    parts = {1} if args.digits else {int(p) for p in args.parts.split(",") if p.strip()}
    rounds = args.rounds or (3 if args.quick else 41)
    print(f"bench_mlp: MLP training speed, symgrad vs JAX and hand-written NumPy; {machine_line()}"
          + ("; BUSY: another process spins on one core" if args.busy else ""))
    status = 0
    targets = []
    with temporary_cache(), Busy(args.busy):
        print(f"load average (1 min) at the start: {os.getloadavg()[0]:.2f}")
        digits: dict[float, dict[str, float | None]] = {}
        if parts & {1, 3}:
            for momentum in (0.9, 0.0):
                rows, times, notes = bench_digits(momentum, rounds)
                digits[momentum] = times
                if 1 not in parts:
                    continue
                title = (f"\n1. digits 64-32-10 tanh/softmax, float32, one epoch (1,797 examples, 57 steps of batch "
                         f"{EPOCH_BATCH}, no shuffle), SGD lr 0.2" + (f", momentum {momentum}" if momentum else ", no momentum"))
                print_table(["contender", "median", "min", "/ hand NumPy", "/ JAX", "samples"], rows, title=title)
                for note in notes:
                    print("  " + note)
                    status |= "MISMATCH" in note
                print()

        ratio = None
        if 2 in parts:
            step_rows, ratio, step_notes, _ = bench_mnist_step(rounds * 5)
            print_table(["contender", "median", "min", "/ hand NumPy", "samples"], step_rows,
                        title=f"2. 784-256-10 relu/softmax, float32, one step at batch {STEP_BATCH}")
            for note in step_notes:
                print("  " + note)
                status |= "MISMATCH" in note
            print()

        auto_rows = []
        if 3 in parts:
            for momentum, label in ((0.9, "digits 64-32-10 (momentum), epoch"), (0.0, "digits 64-32-10 (SGD), epoch")):
                t = digits[momentum]
                if t.get("symgrad c") and t.get("symgrad numpy"):
                    auto_rows.append(bench_auto_case(label, digits_spec(momentum), EPOCH_BATCH, rounds,
                                                     {"c": t["symgrad c"], "numpy": t["symgrad numpy"]}))
            # timed here through train like the rows below, not with part 2's step times: part 2 interleaves
            # a hand-written step whose BLAS threads (NumPy's default, 2) keep spinning into the next sample
            auto_rows.append(bench_auto_case("mnist_mlp 784-256-10 f32, 16 steps", mnist_spec32(), STEP_BATCH,
                                             max(3, rounds // 4)))
            cases = [((16, 32, 10), "float64", 32), ((128, 64, 10), "float32", 32), ((256, 128, 10), "float32", 128)]
            if not args.quick:
                cases += [((64, 32, 10), "float64", 128), ((64, 64, 10), "float32", 32),
                          ((64, 64, 10), "float32", 128), ((256, 128, 10), "float32", 32),
                          ((784, 64, 10), "float32", 128), ((784, 128, 10), "float64", 128)]
            for (D, H, O), dtype, batch in cases:
                auto_rows.append(bench_auto_case(f"relu {D}-{H}-{O} {dtype}, 16 steps", relu_spec(D, H, O, dtype),
                                                 batch, max(3, rounds // 4)))
            print_table(["spec, work", "params", "batch", "C", "NumPy", "C / NumPy", "auto picked", "faster", "result"],
                        auto_rows, title="3. backend=\"auto\" (C or NumPy per call by the batch's rows: "
                                         "symgrad/program.py numpy_from_rows); times per step of the batch")
            print(f"  load average (1 min) after part 3: {os.getloadavg()[0]:.2f}\n")

        train_ratio = None
        if 4 in parts:
            train_rows, train_ratio, train_notes = bench_mnist_train(max(5, rounds // 2))
            print_table(["contender", "median per step", "min per step", "/ JAX", "/ hand NumPy", "samples"],
                        train_rows, title=f"4. 784-256-10 relu/softmax, float32, {TRAIN_STEPS} SGD steps of batch "
                                          f"{STEP_BATCH} in one call")
            for note in train_notes:
                print("  " + note)
                status |= "MISMATCH" in note
            print()

        for momentum in (0.9, 0.0) if 1 in parts else ():
            t = digits[momentum]
            best_name = min((n for n in ("symgrad c", "symgrad numpy") if t.get(n)), key=lambda n: t[n], default=None)
            tag = "momentum" if momentum else "SGD"
            if best_name is None:
                targets.append([f"digits epoch ({tag}): best symgrad / JAX", f"<= {JAX_TARGET}", "n/a", "n/a"])
                continue
            best = t[best_name]
            jax_t, hand_t = t.get("JAX lax.scan"), t.get("hand-written NumPy")
            targets.append([f"digits epoch ({tag}): best symgrad ({best_name}) / JAX", f"<= {JAX_TARGET:g}",
                            "n/a" if not jax_t else f"{best / jax_t:.3f} ({fmt_seconds(best)} vs {fmt_seconds(jax_t)})",
                            verdict(None if not jax_t else best <= JAX_TARGET * jax_t)])
            targets.append([f"digits epoch ({tag}): best symgrad / hand NumPy", f"<= {HAND_EPOCH_TARGET:g}",
                            f"{best / hand_t:.3f} ({fmt_seconds(best)} vs {fmt_seconds(hand_t)})",
                            verdict(best <= HAND_EPOCH_TARGET * hand_t)])
        if 2 in parts:
            targets.append(["784-256-10 step: NumPy backend / hand NumPy", f"<= {STEP_TARGET:g}",
                            "n/a" if ratio is None else f"{ratio:.3f}",
                            verdict(None if ratio is None or ratio != ratio else ratio <= STEP_TARGET)])
        if 3 in parts:
            auto_ok = [row[-1] for row in auto_rows]
            targets.append(["backend=\"auto\" picks the faster backend", "every row",
                            f"{auto_ok.count('PASS')} of {len(auto_ok)} rows",
                            verdict(None if not auto_ok else all(v == "PASS" for v in auto_ok))])
        if 4 in parts:
            targets.append([f"784-256-10 train, {TRAIN_STEPS} steps: symgrad NumPy / JAX lax.scan", f"<= {TRAIN_TARGET:g}",
                            "n/a" if train_ratio is None else f"{train_ratio:.3f}",
                            verdict(None if train_ratio is None else train_ratio <= TRAIN_TARGET)])
        print_table(["target (issues 5 and 17)", "target", "measured", "result"], targets,
                    title="Targets" + (" (busy: another process on one core)" if args.busy else ""))
    return int(bool(status))


if __name__ == "__main__":
    sys.exit(main())

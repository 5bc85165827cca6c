#!/usr/bin/env python
"""How far the C and NumPy backends drift apart when they train the same float32 network.

    python tools/compare_c_numpy.py [--epochs 1 10 50] [--batch 32]

Trains examples/digits.json (64-32-10 tanh-softmax, SGD with momentum, float32) on
examples/digits.npz with both backends from the same parameters, rows in order, and prints, after
each number of epochs, the largest difference of a parameter relative to the largest parameter,
the relative difference of the final epoch's mean loss, and the same pair for a float64 copy of
the spec (where the two should agree to about 1e-12).  float32 differences come from the order
and precision of sums (NumPy's BLAS blocks its sums; the C kernel sums in order) and from the
kernel's own exp/log/tanh (a few ulp from NumPy's), amplified by training's feedback.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _bench_common import EXAMPLES

import symgrad


def drift(spec: dict, X: np.ndarray, T: np.ndarray, epochs: int, batch: int) -> tuple[float, float]:
    """(max |theta_c - theta_numpy| / max |theta_numpy|, relative difference of the last epoch's loss)."""
    c, numpy = symgrad.load(spec, backend="c"), symgrad.load(spec, backend="numpy")
    X, T = X.astype(c.DTYPE), T.astype(c.DTYPE)
    theta_c, theta_n = c.initial_parameters(), numpy.initial_parameters()
    loss_c = c.train(theta_c, X, T, epochs, batch_size=batch, state=c.initial_state())
    loss_n = numpy.train(theta_n, X, T, epochs, batch_size=batch, state=numpy.initial_state())
    theta_c, theta_n = theta_c.astype(np.float64), theta_n.astype(np.float64)
    return (float(np.max(np.abs(theta_c - theta_n)) / np.max(np.abs(theta_n))),
            float(abs(loss_c[-1] - loss_n[-1]) / abs(loss_n[-1])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    spec = json.loads((EXAMPLES / "digits.json").read_text())
    data = np.load(EXAMPLES / "digits.npz")
    X = data["X"] / 16.0
    T = np.eye(10)[data["y"]]
    steps = -(-X.shape[0] // args.batch)
    print(f"digits 64-32-10, {X.shape[0]} rows, batch {args.batch} ({steps} steps an epoch), C vs NumPy")
    print(f"{'epochs':>6s} {'float32 theta':>14s} {'float32 loss':>13s} {'float64 theta':>14s} {'float64 loss':>13s}")
    for epochs in args.epochs:
        single = drift(spec, X, T, epochs, args.batch)
        double = drift({**spec, "name": "digits64", "dtype": "float64"}, X, T, epochs, args.batch)
        print(f"{epochs:6d} {single[0]:14.3g} {single[1]:13.3g} {double[0]:14.3g} {double[1]:13.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

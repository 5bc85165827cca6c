"""Exercises with answer keys: small random networks to work through by hand, answered by symgrad.

``exercise(seed, count)`` draws ``count`` networks a learner can compute with pencil and paper
(2-3 inputs, 2-3 hidden units, 1-3 outputs, weights with one decimal), varying the activations,
the loss, the bias sharing and the optimizer.  Each is a complete spec (every parameter named,
every initial value given, one example), so the question sheet is self-contained.  The answers
(loss, every dE/dp, every parameter after one step of the spec's optimizer) come from the
generated module; the worked solution of each is ``explain``'s walk-through.  The same seed
gives byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError

FORMATS = ("md", "html")
MAX_COUNT = 50

#: (output activation, loss): the pairs a course teaches, each with targets of the right kind.
OUTPUTS = (("sigmoid", "half_sse"), ("linear", "half_sse"), ("sigmoid", "binary_cross_entropy"),
           ("softmax", "cross_entropy"), ("linear", "mse"), ("tanh", "sse"))
HIDDEN = ("sigmoid", "tanh", "relu")
BIASES = ("shared", "per_unit", "none")
OPTIMIZERS = ({"name": "sgd", "learning_rate": 0.5}, {"name": "sgd", "learning_rate": 0.1},
              {"name": "sgd", "learning_rate": 0.5, "momentum": 0.9},
              {"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.01},
              {"name": "adam", "learning_rate": 0.01})


@dataclass(frozen=True)
class Exercise:
    """One network and example, and its answers from the generated module."""

    spec: dict[str, Any]
    inputs: tuple[float, ...]
    targets: tuple[float, ...]
    loss: float
    gradient: dict[str, float]
    updated: dict[str, float]

    def answers(self) -> dict[str, Any]:
        return {"spec": self.spec, "inputs": list(self.inputs), "targets": list(self.targets), "loss": self.loss,
                "gradient": self.gradient, "updated": self.updated}


def _tenths(rng: np.random.Generator, low: int, high: int, size: int, nonzero: bool = False) -> list[float]:
    """Numbers with one decimal in [low/10, high/10] (without 0 when ``nonzero``)."""
    choices = [k for k in range(low, high + 1) if k or not nonzero]
    return [choices[int(i)] / 10 for i in rng.integers(0, len(choices), size)]


def draw_spec(rng: np.random.Generator, name: str) -> dict[str, Any]:
    """A small random network in the seed walk-through's style, as a complete spec."""
    n_in, n_hidden = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    output, loss = OUTPUTS[int(rng.integers(len(OUTPUTS)))]
    n_out = int(rng.integers(2, 4)) if output == "softmax" else int(rng.integers(1, 3))
    inputs = [f"i{k + 1}" for k in range(n_in)]
    layers, initial, counter = [], {}, 1
    sizes = [(n_hidden, HIDDEN[int(rng.integers(len(HIDDEN)))], "h"), (n_out, output, "o")]
    previous = n_in
    for k, (units, activation, prefix) in enumerate(sizes):
        names = [f"{prefix}{j + 1}" for j in range(units)]
        weights = []
        for _ in names:
            row = [f"w{counter + i}" for i in range(previous)]
            counter += previous
            weights.append(row)
        values = _tenths(rng, -9, 9, units * previous, nonzero=True)
        initial.update(zip([w for row in weights for w in row], values))
        mode = BIASES[int(rng.integers(len(BIASES)))]
        layer: dict[str, Any] = {"units": names, "activation": activation, "weights": weights}
        if mode == "shared":
            layer["bias"] = {"mode": "shared", "name": f"b{k + 1}"}
            initial[f"b{k + 1}"] = _tenths(rng, -5, 5, 1)[0]
        elif mode == "per_unit":
            bias_names = [f"b_{unit}" for unit in names]
            layer["bias"] = {"mode": "per_unit", "names": bias_names}
            initial.update(zip(bias_names, _tenths(rng, -5, 5, units)))
        else:
            layer["bias"] = "none"
        layers.append(layer)
        previous = units
    example_inputs = _tenths(rng, -10, 10, n_in, nonzero=True)
    if loss == "cross_entropy":
        targets = [0.0] * n_out
        targets[int(rng.integers(n_out))] = 1.0
    elif loss == "binary_cross_entropy":
        targets = [float(v) for v in rng.integers(0, 2, n_out)]
    elif output == "sigmoid":
        targets = _tenths(rng, 1, 9, n_out)
    else:
        targets = _tenths(rng, -9, 9, n_out)
    optimizer = dict(OPTIMIZERS[int(rng.integers(len(OPTIMIZERS)))])
    return {"name": name, "inputs": inputs, "layers": layers, "loss": loss, "optimizer": optimizer,
            "initial": initial, "example": {"inputs": example_inputs, "targets": targets}}


def solve(spec: dict[str, Any]) -> Exercise:
    """The answers, from the generated module (NumPy backend, float64)."""
    from ..pipeline import load

    module = load(spec, backend="numpy")
    theta = module.initial_parameters()
    X = np.array([spec["example"]["inputs"]], dtype=float)
    T = np.array([spec["example"]["targets"]], dtype=float)
    loss, grad = module.gradient(theta, X, T)
    updated = theta.copy()
    module.step(updated, X, T, state=module.initial_state())
    names = module.PARAMETER_NAMES
    return Exercise(spec, tuple(X[0]), tuple(T[0]), float(loss), dict(zip(names, map(float, grad))),
                    dict(zip(names, map(float, updated))))


def exercises(seed: int, count: int = 3) -> list[Exercise]:
    """``count`` exercises drawn from ``seed`` (the same seed, the same exercises)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError("--seed", f"{seed!r} is not a seed", "use a whole number 0 or more")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise SpecError("--count", f"{count!r} is out of range", f"use 1 to {MAX_COUNT}")
    rng = np.random.default_rng(seed)
    return [solve(draw_spec(rng, f"exercise_{seed}_{k + 1}")) for k in range(count)]


def write_exercises(seed: int, out: str | Path, count: int = 3, format: str = "md", digits: int = 6) -> list[Path]:
    """The question sheet, the answer key, answers.json and a worked solution per exercise, in ``out``."""
    from ..explain import explain
    from ..files import write_atomic
    from ..formulas import check_digits
    from .render import render

    if format not in FORMATS:
        raise SpecError("--format", f'unknown format "{format}"', "use md or html")
    check_digits(digits)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SpecError("--out", f"{folder} exists and is not a folder", "name a folder (it is created when missing)")
    drawn = exercises(seed, count)
    files = {f"questions.{format}": render("questions", format, drawn, seed, digits),
             f"answers.{format}": render("answers", format, drawn, seed, digits),
             "answers.json": json.dumps({"seed": seed, "exercises": [e.answers() for e in drawn]}, indent=2) + "\n"}
    for k, item in enumerate(drawn, 1):
        files[f"worked-{k}.{format}"] = explain(item.spec, format=format, steps=1, digits=digits)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in files.items():
            write_atomic(folder / name, text.encode())
            written.append(folder / name)
    except OSError as error:
        raise SpecError("--out", f"cannot write to {folder}: {error.strerror or error}",
                        "choose a writable folder") from None
    return written

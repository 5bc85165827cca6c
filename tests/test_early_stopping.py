"""train --patience: stop when the validation loss stops improving, and keep the best parameters.

The expected stopping epoch and parameters come from a run without patience: its recorded
validation curve says where the best epoch is and when K epochs without improvement end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import ROOT, early_stop, make_spec
from symgrad import training


def _problem():
    """A small regression whose held-out targets disagree with the training ones: it overfits."""
    spec = make_spec([3, 8, 1], ["tanh", "linear"], "half_sse", "per_unit")
    spec["optimizer"] = {"name": "sgd", "learning_rate": 0.3, "momentum": 0.5}
    spec["initial"] = {"seed": 1}
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    T = np.sin(X @ np.array([[1.0], [-2.0], [0.5]])) + 0.3 * rng.normal(size=(40, 1))
    train = training.Dataset(X[:30], T[:30], None)
    validation = training.Dataset(X[30:], -T[30:] + 0.2, None)
    return spec, train, validation


def _run(module, train, validation, epochs, patience=None):
    theta, state = module.initial_parameters(), module.initial_state()
    history = training.fit(module, theta, state, train, validation, epochs, None, shuffle=False, seed=None,
                           progress=training.Progress(epochs, quiet=True), classification=False, patience=patience)
    return theta, state, history


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("patience", [1, 3, 7])
def test_stops_after_k_epochs_without_improvement_and_keeps_the_best(backend, patience) -> None:
    spec, train, validation = _problem()
    module = symgrad.load(spec, backend=backend)
    _, _, full = _run(module, train, validation, 60)
    curve = full.validation_loss
    best, stop = early_stop(curve, patience)
    assert stop is not None, "the problem must overfit within 60 epochs for this test to mean anything"
    theta, state, history = _run(module, train, validation, 60, patience)
    assert history.stopped_at == stop and history.best_epoch == best
    assert len(history.loss) == stop
    expected_theta, expected_state, _ = _run(module, train, validation, best)
    np.testing.assert_array_equal(theta, expected_theta)
    np.testing.assert_array_equal(state, expected_state)


def test_patience_needs_a_validation_set() -> None:
    spec, train, _ = _problem()
    module = symgrad.load(spec, backend="numpy")
    with pytest.raises(symgrad.DataError, match="--validation-split"):
        _run(module, train, None, 5, patience=2)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    spec, train, validation = _problem()
    spec_path, data = tmp_path / "spec.json", tmp_path / "data.npz"
    spec_path.write_text(json.dumps(spec))
    np.savez(data, X=np.concatenate([train.X, validation.X]), T=np.concatenate([train.T, validation.T]))
    return subprocess.run([sys.executable, "-m", "symgrad", "train", str(spec_path), "--data", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_says_where_it_stopped_and_saves_the_best(tmp_path: Path) -> None:
    saved = tmp_path / "best.npz"
    done = _cli(tmp_path, "--epochs", "300", "--validation-split", "0.25", "--seed", "0", "--patience", "2",
                "--save", str(saved))
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("stopped early"))
    stopped = int(line.split("after epoch ")[1].split(":")[0])
    best = int(line.split("kept epoch ")[1].split("'")[0])
    assert stopped - best == 2
    with np.load(saved) as checkpoint:
        assert int(checkpoint["epochs"]) == best


@pytest.mark.parametrize("args, message", [
    (["--patience", "3"], "--validation-split"),
    (["--patience", "0", "--validation-split", "0.2"], "--patience"),
])
def test_cli_refuses_patience_without_what_it_needs(tmp_path: Path, args, message) -> None:
    done = _cli(tmp_path, "--epochs", "5", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr

"""Training from data files: what ``python -m symgrad train`` does, usable from Python too.

Data files:

* ``.npz`` with arrays ``X`` (n x inputs) and ``T`` (n x outputs), or ``X`` and integer class
  labels ``y`` (n,), which become one-hot targets (labels 0 .. outputs-1).
* ``.csv``: one example per line, comma-separated numbers; an optional first line of column
  names is skipped.  With inputs + outputs columns, the first ``inputs`` are X and the rest T;
  with inputs + 1 columns (and more than one output), the last column is an integer class label.

Everything that can be wrong with a file (shapes, NaN, labels out of range) is a
:class:`DataError` naming the file and how to fix it.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .errors import DataError
from .files import max_data_bytes, read_limited
from .spec import Spec


@dataclass(frozen=True)
class Dataset:
    X: np.ndarray
    T: np.ndarray
    labels: np.ndarray | None  # class labels, when the targets are one-hot classes

    @property
    def n(self) -> int:
        return self.X.shape[0]

    def rows(self, index: np.ndarray) -> "Dataset":
        return Dataset(np.ascontiguousarray(self.X[index]), np.ascontiguousarray(self.T[index]),
                       None if self.labels is None else self.labels[index])


def one_hot(labels: np.ndarray, classes: int, source: str) -> np.ndarray:
    if labels.ndim != 1:
        raise DataError(f"{source}: labels y must be one number per example, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise DataError(f"{source}: labels must be whole numbers 0..{classes - 1}")
        labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= classes)
    if np.any(bad):
        row = int(np.argmax(bad))
        raise DataError(f"{source}: label {labels[row]} in row {row} is out of range; the network has {classes} "
                        f"outputs, so labels must be 0..{classes - 1}")
    targets = np.zeros((labels.size, classes))
    targets[np.arange(labels.size), labels] = 1.0
    return targets


def load_data(path: str | Path, spec: Spec) -> Dataset:
    """Read an .npz or .csv data file for ``spec`` (see the module docstring for the layout)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X, T, labels = _read_npz(path, spec)
    elif suffix == ".csv":
        X, T, labels = _read_csv(path, spec)
    else:
        raise DataError(f"{path}: unknown data file type {suffix or '(none)'}; use .npz (arrays X and T, or X and y) "
                        "or .csv")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != spec.n_inputs:
        raise DataError(f"{path}: X has shape {X.shape}, the spec needs (n, {spec.n_inputs})")
    if T.ndim != 2 or T.shape[1] != spec.n_outputs:
        raise DataError(f"{path}: T has shape {T.shape}, the spec needs (n, {spec.n_outputs})")
    if X.shape[0] != T.shape[0]:
        raise DataError(f"{path}: X has {X.shape[0]} rows but the targets have {T.shape[0]}")
    if X.shape[0] == 0:
        raise DataError(f"{path}: holds no examples")
    for name, array in (("X", X), ("T", T)):
        if not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{path}: {name} is not numeric (dtype {array.dtype})")
        finite = np.isfinite(array)
        if not np.all(finite):
            row = int(np.argmin(finite.all(axis=1)))
            raise DataError(f"{path}: {name} holds NaN or infinite values (first in row {row}); clean the data")
    dtype = np.dtype(spec.dtype)
    return Dataset(np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(T, dtype=dtype), labels)


def _read_npz(path: Path, spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    try:
        with np.load(io.BytesIO(read_limited(path, max_data_bytes())), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as .npz ({error})") from None
    if "X" not in arrays or ("T" not in arrays and "y" not in arrays):
        raise DataError(f"{path}: expected arrays X and T (or X and y), found {', '.join(sorted(arrays)) or 'none'}")
    if "T" in arrays:
        return arrays["X"], np.asarray(arrays["T"]), None
    labels = np.asarray(arrays["y"])
    targets = one_hot(labels, spec.n_outputs, str(path))
    return arrays["X"], targets, labels.astype(np.int64)


def _read_csv(path: Path, spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    try:
        text = read_limited(path, max_data_bytes()).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read it ({error})") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and not _numeric(rows[0][0]):
        rows = rows[1:]  # a header line
    if not rows:
        raise DataError(f"{path}: holds no examples")
    width = len(rows[0])
    n_in, n_out = spec.n_inputs, spec.n_outputs
    if width == n_in + n_out:
        mode = "targets"
    elif width == n_in + 1 and n_out > 1:
        mode = "labels"
    else:
        raise DataError(f"{path}: has {width} columns; the spec needs {n_in + n_out} ({n_in} inputs then {n_out} "
                        f"targets){f' or {n_in + 1} ({n_in} inputs then a class label)' if n_out > 1 else ''}")
    values = np.empty((len(rows), width))
    for r, row in enumerate(rows):
        if len(row) != width:
            raise DataError(f"{path}: line {r + 1} has {len(row)} columns, the first has {width}")
        for c, cell in enumerate(row):
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise DataError(f"{path}: line {r + 1}, column {c + 1}: {cell.strip()[:20]!r} is not a number") from None
    if mode == "targets":
        return values[:, :n_in], values[:, n_in:], None
    labels = values[:, n_in]
    targets = one_hot(labels, n_out, str(path))
    return values[:, :n_in], targets, labels.astype(np.int64)


def _numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def split(data: Dataset, fraction: float, seed: int | None) -> tuple[Dataset, Dataset | None]:
    """(training, validation): a random ``fraction`` of the rows held out (None when 0)."""
    if not 0 <= fraction < 1:
        raise DataError(f"--validation-split {fraction} must be at least 0 and below 1")
    held = int(round(data.n * fraction))
    if fraction and (held == 0 or held == data.n):
        raise DataError(f"--validation-split {fraction} leaves no {'validation' if held == 0 else 'training'} "
                        f"examples out of {data.n}")
    if not held:
        return data, None
    order = np.random.default_rng(seed).permutation(data.n)
    return data.rows(np.sort(order[held:])), data.rows(np.sort(order[:held]))


def is_classification(spec: Spec, data: Dataset) -> bool:
    """Softmax outputs, or labels given, or one-hot targets: then accuracy is worth reporting."""
    if data.labels is not None or spec.layers[-1].activation.name == "softmax":
        return True
    return bool(spec.n_outputs > 1 and np.all((data.T == 0) | (data.T == 1)) and np.all(data.T.sum(axis=1) == 1))


def accuracy(module: Any, theta: np.ndarray, data: Dataset) -> float:
    labels = data.labels if data.labels is not None else np.argmax(data.T, axis=1)
    return float(np.mean(np.argmax(module.forward(theta, data.X), axis=1) == labels))


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Progress:
    """A one-line progress bar on a terminal; nothing when the stream is not one, or when quiet."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.active = not quiet and hasattr(stream, "isatty") and stream.isatty()

    def update(self, epoch: int, loss: float, rate: float, extra: str = "") -> None:
        if not self.active:
            return
        width = 24
        done = int(width * epoch / self.total)
        bar = "#" * done + "." * (width - done)
        self.stream.write(f"\r[{bar}] epoch {epoch}/{self.total}  loss {loss:.6g}  {rate:,.0f} examples/s{extra}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\n")
            self.stream.flush()


def fit(module: Any, theta: np.ndarray, state: np.ndarray, train: Dataset, validation: Dataset | None,
        epochs: int, batch_size: int | None, shuffle: bool, seed: int | None, progress: Progress,
        classification: bool) -> History:
    """Train epoch by epoch (one ``module.train`` call each), recording the curves."""
    history = History()
    seeds = np.random.default_rng(seed).integers(0, 2**63 - 1, size=epochs) if shuffle else [None] * epochs
    started = time.perf_counter()
    for epoch in range(epochs):
        losses = module.train(theta, train.X, train.T, 1, batch_size=batch_size, shuffle=shuffle,
                              seed=None if seeds[epoch] is None else int(seeds[epoch]), state=state)
        history.loss.append(float(losses[0]))
        extra = ""
        if validation is not None:
            history.validation_loss.append(module.loss(theta, validation.X, validation.T))
        if classification:
            history.accuracy.append(accuracy(module, theta, train))
            extra += f"  accuracy {history.accuracy[-1]:.4f}"
            if validation is not None:
                history.validation_accuracy.append(accuracy(module, theta, validation))
                extra += f"  validation {history.validation_accuracy[-1]:.4f}"
        elapsed = time.perf_counter() - started
        progress.update(epoch + 1, history.loss[-1], (epoch + 1) * train.n / max(elapsed, 1e-9), extra)
        if not math.isfinite(history.loss[-1]):
            progress.close()
            raise DataError(f"the loss became {history.loss[-1]} in epoch {epoch + 1}; lower the learning rate "
                            "(--lr) or check the data's scale")
    history.seconds = time.perf_counter() - started
    progress.close()
    return history


def save_parameters(path: str | Path, module: Any, theta: np.ndarray, state: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, theta=theta, state=state, parameter_names=np.array(module.PARAMETER_NAMES))
    from .files import write_atomic

    try:
        write_atomic(Path(path), buffer.getvalue())
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}") from None


def load_parameters(path: str | Path, module: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """theta (and the optimizer state, when it fits) saved by :func:`save_parameters`."""
    try:
        with np.load(io.BytesIO(read_limited(path, max_data_bytes())), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: cannot read saved parameters ({error})") from None
    if "theta" not in arrays:
        raise DataError(f"{path}: holds no array theta; save one with --save")
    theta = arrays["theta"]
    if theta.shape != (module.N_PARAMETERS,):
        raise DataError(f"{path}: theta has shape {theta.shape}, this network has {module.N_PARAMETERS} parameters")
    names = arrays.get("parameter_names")
    if names is not None and tuple(str(n) for n in names) != tuple(module.PARAMETER_NAMES):
        raise DataError(f"{path}: was saved for other parameter names; it belongs to another network")
    if not np.all(np.isfinite(theta)):
        raise DataError(f"{path}: theta holds NaN or infinite values")
    state = arrays.get("state")
    if state is not None and state.shape != (module.STATE_SIZE,):
        state = None
    dtype = module.DTYPE
    return (np.ascontiguousarray(theta, dtype=dtype),
            None if state is None else np.ascontiguousarray(state, dtype=dtype))


def plot_history(path: str | Path, history: History, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("--plot needs matplotlib, which is not installed; install it with "
                        "pip install 'symgrad[plot]'") from None
    panels = 2 if history.accuracy else 1
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    epochs = np.arange(1, len(history.loss) + 1)
    axes[0][0].plot(epochs, history.loss, label="training")
    if history.validation_loss:
        axes[0][0].plot(epochs, history.validation_loss, label="validation")
    axes[0][0].set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    axes[0][0].legend()
    if panels == 2:
        axes[0][1].plot(epochs, history.accuracy, label="training")
        if history.validation_accuracy:
            axes[0][1].plot(epochs, history.validation_accuracy, label="validation")
        axes[0][1].set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
        axes[0][1].legend()
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)

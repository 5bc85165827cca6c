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
import re
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from .errors import DataError
from .files import max_data_bytes, read_limited
from .outputs import check_output, write_output
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


Locate = Callable[[str, int], str]  # (array name, 0-based row) -> where the user finds it: "line 7", "X[6]"


def one_hot(labels: np.ndarray, classes: int, source: str, locate: Locate | None = None) -> np.ndarray:
    """One-hot targets for class labels 0 .. classes-1; a :class:`DataError` for anything else."""
    locate = locate or _array_row
    if labels.ndim != 1:
        raise DataError(f"{source}: labels y must be one number per example, got shape {labels.shape}; store a "
                        "1-D array of class numbers")
    if labels.dtype.kind not in "biuf":
        raise DataError(f"{source}: labels y hold {labels.dtype} values, not numbers; store the class numbers "
                        f"0..{classes - 1}")
    bad = (labels < 0) | (labels >= classes)
    if labels.dtype.kind == "f":
        bad |= ~np.isfinite(labels) | (labels != np.round(labels))
    if np.any(bad):
        row = int(np.argmax(bad))
        raise DataError(f"{source}: label {labels[row]} in {locate('y', row)} is not a class of this network; it has "
                        f"{classes} outputs, so labels must be whole numbers 0..{classes - 1}")
    labels = labels.astype(np.int64)
    targets = np.zeros((labels.size, classes))
    targets[np.arange(labels.size), labels] = 1.0
    return targets


def load_data(path: str | Path, spec: Spec) -> Dataset:
    """Read an .npz or .csv data file for ``spec`` (see the module docstring for the layout)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X, T, labels, locate = _read_npz(path, spec)
    elif suffix == ".csv":
        X, T, labels, locate = _read_csv(path, spec)
    else:
        raise DataError(f"{path}: unknown data file type {suffix or '(none)'}; use .npz (arrays X and T, or X and y) "
                        "or .csv")
    for name, array in (("X", X), ("T", T)):
        if array.dtype.kind not in "biuf":
            raise DataError(f"{path}: {name} holds {array.dtype} values, not numbers; store floating-point numbers")
    if X.ndim != 2 or X.shape[1] != spec.n_inputs:
        raise DataError(f"{path}: X has shape {X.shape}, the spec needs (n, {spec.n_inputs}); store one example "
                        "per row")
    if T.ndim != 2 or T.shape[1] != spec.n_outputs:
        raise DataError(f"{path}: T has shape {T.shape}, the spec needs (n, {spec.n_outputs}); store one target "
                        "row per example")
    if X.shape[0] != T.shape[0]:
        raise DataError(f"{path}: X has {X.shape[0]} rows but the targets have {T.shape[0]}; give every example "
                        "its targets")
    if X.shape[0] == 0:
        raise DataError(f"{path}: holds no examples; add at least one")
    dtype = np.dtype(spec.dtype)
    converted = []
    for name, array in (("X", X), ("T", T)):
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.ascontiguousarray(array, dtype=dtype)
        finite = np.isfinite(values)
        if not np.all(finite):
            row = int(np.argmin(finite.all(axis=1)))
            raise DataError(f"{path}: {name} holds NaN or infinite values (or values beyond {dtype.name}'s range), "
                            f"first in {locate(name, row)}; clean the data")
        converted.append(values)
    return Dataset(converted[0], converted[1], labels)


def _array_row(name: str, row: int) -> str:
    return f"{name}[{row}]"


def read_arrays(path: str | Path, what: str, fix: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, never unpickling anything; ``what``/``fix`` word the error."""
    try:
        loaded = np.load(io.BytesIO(read_limited(path, max_data_bytes())), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot read it as {what} ({_reason(error)}); {fix}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array, not an .npz archive of named arrays; {fix}")
    try:
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError) as error:
        raise DataError(f"{path}: cannot read it as {what} ({_reason(error)}); {fix}") from None


def _read_npz(path: Path, spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Locate]:
    fix = "save arrays X and T (or X and y) with numpy.savez"
    arrays = read_arrays(path, ".npz", fix)
    if "X" not in arrays or ("T" not in arrays and "y" not in arrays):
        raise DataError(f"{path}: expected arrays X and T (or X and y), found {', '.join(sorted(arrays)) or 'none'}; "
                        f"{fix}")
    if "T" in arrays:
        return arrays["X"], arrays["T"], None, _array_row
    labels = arrays["y"]
    targets = one_hot(labels, spec.n_outputs, str(path))
    return arrays["X"], targets, labels.astype(np.int64), _array_row


_DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _read_csv(path: Path, spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Locate]:
    """Numbers separated by commas, semicolons or tabs; errors name the file's own 1-based lines."""
    try:
        text = read_limited(path, max_data_bytes()).decode("utf-8-sig")  # a byte-order mark is no cell
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error}); check the path") from None
    except UnicodeDecodeError as error:
        line = text_line(error.object, error.start)
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte {error.start}); save the file as UTF-8") from None
    n_in, n_out = spec.n_inputs, spec.n_outputs
    delimiter, header_line = _sniff(text, (n_in + n_out, n_in + 1) if n_out > 1 else (n_in + n_out,))
    rows: list[list[str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            if any(cell.strip() for cell in row) and reader.line_num != header_line:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num + 1}: {error}; write plain numbers separated by "
                        f"{_DELIMITERS[delimiter]}") from None
    if not rows:
        raise DataError(f"{path}: holds no examples{' after its header line' if header_line else ''}; write one "
                        "example per line: the inputs, then the targets (or a class label), separated by commas")
    width = len(rows[0])
    if width == n_in + n_out:
        mode = "targets"
    elif width == n_in + 1 and n_out > 1:
        mode = "labels"
    else:
        raise DataError(f"{path}: line {lines[0]} has {width} column(s) separated by {_DELIMITERS[delimiter]}; the "
                        f"spec needs {n_in + n_out} ({n_in} inputs then {n_out} targets)"
                        f"{f' or {n_in + 1} ({n_in} inputs then a class label)' if n_out > 1 else ''}; separate "
                        "the numbers with commas, semicolons or tabs")
    values = np.empty((len(rows), width))
    for r, (line, row) in enumerate(zip(lines, rows)):
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} columns, line {lines[0]} (the first example) has "
                            f"{width}; give every example the same columns")
        for c, cell in enumerate(row):
            number = _number(cell)
            if number is None:
                hint = ("use a decimal point, not a comma" if delimiter != "," and "," in cell
                        else "write a number such as 0.5")
                raise DataError(f"{path}: line {line}, column {c + 1}: {cell.strip()[:20]!r} is not a number; {hint}")
            values[r, c] = number

    def locate(name: str, row: int) -> str:
        return f"line {lines[row]}"

    if mode == "targets":
        return values[:, :n_in], values[:, n_in:], None, locate
    labels = values[:, n_in]
    targets = one_hot(labels, n_out, str(path), locate)
    return values[:, :n_in], targets, labels.astype(np.int64), locate


def _sniff(text: str, widths: tuple[int, ...]) -> tuple[str, int]:
    """(delimiter, the header's line number or 0) for a CSV file whose examples have one of ``widths`` columns.

    A first line with words and no numbers is a header.  The delimiter is the first of commas,
    semicolons and tabs that splits the first example into numbers, else into one of ``widths``
    columns (so a decimal-comma file is read with semicolons and its cells are named), else the
    most frequent one.
    """
    lines = [(number, line) for number, line in enumerate(re.split(r"\r\n|\r|\n", text), 1) if line.strip()][:2]
    header = 0
    if lines:
        cells = re.split(r"[,;\t]", lines[0][1])
        if all(_number(cell) is None for cell in cells) and any(char.isalpha() for char in lines[0][1]):
            header = lines[0][0]
            lines = lines[1:]
    if not lines:
        return ",", header
    first = lines[0][1]
    split = {delimiter: next(csv.reader([first], delimiter=delimiter), []) for delimiter in _DELIMITERS}
    for delimiter, cells in split.items():
        if len(cells) > 1 and all(_number(cell) is not None for cell in cells):
            return delimiter, header
    for delimiter, cells in split.items():
        if len(cells) in widths:
            return delimiter, header
    return max(_DELIMITERS, key=lambda d: (first.count(d), d == ",")), header


def text_line(data: bytes, offset: int) -> int:
    """The 1-based line number of byte ``offset`` of ``data``."""
    return data.count(b"\n", 0, offset) + 1


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


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
    best_epoch: int | None = None  # with patience: the 1-based epoch whose parameters were kept
    stopped_at: int | None = None  # with patience: the epoch after which training stopped early


class Progress:
    """A one-line progress bar on a terminal; nothing when the stream is not one, or when quiet.

    Redrawn at most every ``interval`` seconds (and at the last epoch), so thousands of tiny
    epochs do not spend their time writing to the terminal.  symgrad's own rather than tqdm's:
    the bar only ever runs in a terminal (``train``), where tqdm adds a dependency and 40 ms of
    import for the same line.
    """

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False, interval: float = 0.1) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.active = not quiet and callable(isatty) and bool(isatty())
        self.interval = interval
        self._drawn = -math.inf

    def update(self, epoch: int, loss: float, rate: float, extra: str = "") -> None:
        if not self.active:
            return
        now = time.monotonic()
        if epoch < self.total and now - self._drawn < self.interval:
            return
        self._drawn = now
        width = 24
        done = int(width * epoch / self.total)
        bar = "#" * done + "." * (width - done)
        self.stream.write(f"\r[{bar}] epoch {epoch}/{self.total}  loss {loss:.6g}  {rate:,.0f} examples/s{extra}   ")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line; once (a second close, as on an error path, writes nothing)."""
        if self.active:
            self.stream.write("\n")
            self.stream.flush()
            self.active = False


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of 0-based ``epoch`` for ``--seed seed``: a function of both alone.

    So training resumed after k epochs (``--init`` of a file saved then) shuffles exactly as one
    uninterrupted run would have, and the k-th seed costs the same for any k.
    """
    return int(np.random.SeedSequence(seed, spawn_key=(epoch,)).generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpochWatch:
    """What happens after every epoch, wherever it ran (``fit`` here, ``distributed.fit`` on a
    cluster): the curves recorded, the progress bar drawn, a loss that is not a number refused,
    and with ``patience`` K the best epoch's parameters kept until the validation loss has not
    gone below its best for K epochs."""

    def __init__(self, module: Any, theta: np.ndarray, state: np.ndarray, train: Dataset,
                 validation: Dataset | None, progress: Progress, classification: bool,
                 patience: int | None = None) -> None:
        if patience is not None and validation is None:
            raise DataError("--patience needs a validation set to watch; add --validation-split F (e.g. 0.2)")
        self.module, self.train, self.validation = module, train, validation
        self.progress, self.classification, self.patience = progress, classification, patience
        self.history = History()
        # the starting parameters are kept if no epoch beats them (a loss that never becomes a number)
        self._best_loss = math.inf
        self._best = (theta.copy(), state.copy()) if patience is not None else None
        self._started = time.perf_counter()

    def after(self, epoch: int, loss: float, theta: np.ndarray, state: np.ndarray) -> bool:
        """Record 1-based ``epoch``; whether training should stop here."""
        history, module, validation = self.history, self.module, self.validation
        history.loss.append(float(loss))
        extra = ""
        if validation is not None:
            history.validation_loss.append(module.loss(theta, validation.X, validation.T))
        if self.classification:
            history.accuracy.append(accuracy(module, theta, self.train))
            extra += f"  accuracy {history.accuracy[-1]:.4f}"
            if validation is not None:
                history.validation_accuracy.append(accuracy(module, theta, validation))
                extra += f"  validation {history.validation_accuracy[-1]:.4f}"
        elapsed = time.perf_counter() - self._started
        self.progress.update(epoch, history.loss[-1], epoch * self.train.n / max(elapsed, 1e-9), extra)
        if not math.isfinite(history.loss[-1]):
            self.progress.close()
            raise DataError(f"the loss became {history.loss[-1]} in epoch {epoch}; lower the learning rate "
                            "(--lr) or check the data's scale")
        if self.patience is None:
            return False
        if history.validation_loss[-1] < self._best_loss:
            self._best_loss, history.best_epoch = history.validation_loss[-1], epoch
            self._best = (theta.copy(), state.copy())
            return False
        if epoch - (history.best_epoch or 0) >= self.patience:
            history.stopped_at = epoch
            return True
        return False

    def finish(self, theta: np.ndarray, state: np.ndarray) -> History:
        """The history; with patience, ``theta`` and ``state`` put back to the best epoch's, in place."""
        history = self.history
        if self._best is not None and history.best_epoch != len(history.loss):
            theta[...], state[...] = self._best
        history.seconds = time.perf_counter() - self._started
        self.progress.close()
        return history


def fit(module: Any, theta: np.ndarray, state: np.ndarray, train: Dataset, validation: Dataset | None,
        epochs: int, batch_size: int | None, shuffle: bool, seed: int | None, progress: Progress,
        classification: bool, first_epoch: int = 0, patience: int | None = None) -> History:
    """Train epoch by epoch (one ``module.train`` call each), recording the curves.

    ``first_epoch`` is how many epochs the parameters have already had (when resuming).  With
    ``patience`` K (and a validation set), training stops once the validation loss has not gone
    below its best for K epochs, and ``theta`` and ``state`` are put back to the best epoch's.
    """
    watch = EpochWatch(module, theta, state, train, validation, progress, classification, patience)
    for epoch in range(epochs):
        losses = module.train(theta, train.X, train.T, 1, batch_size=batch_size, shuffle=shuffle,
                              seed=epoch_seed(seed, first_epoch + epoch) if shuffle and seed is not None else None,
                              state=state)
        if watch.after(epoch + 1, float(losses[0]), theta, state):
            break
    return watch.finish(theta, state)


@dataclass(frozen=True)
class Checkpoint:
    """What ``--save`` writes and ``--init`` reads: parameters, optimizer state, epochs trained."""

    theta: np.ndarray
    state: np.ndarray | None  # None when the file holds none that fits this network's optimizer
    epochs: int


def save_parameters(path: str | Path, module: Any, theta: np.ndarray, state: np.ndarray, epochs: int = 0) -> None:
    """Write theta, the optimizer state and the number of epochs trained (for an exact resume)."""
    buffer = io.BytesIO()
    np.savez(buffer, theta=theta, state=state, parameter_names=np.array(module.PARAMETER_NAMES),
             epochs=np.int64(epochs))
    write_output(path, buffer.getvalue())


def load_checkpoint(path: str | Path, module: Any) -> Checkpoint:
    """What :func:`save_parameters` wrote, checked against ``module``'s network."""
    arrays = read_arrays(path, "saved parameters", "pass a file written by train --save")
    if "theta" not in arrays:
        raise DataError(f"{path}: holds no array theta; save one with --save")
    theta = arrays["theta"]
    if theta.shape != (module.N_PARAMETERS,):
        raise DataError(f"{path}: theta has shape {theta.shape}, this network has {module.N_PARAMETERS} parameters; "
                        "pass a file saved for this spec")
    if not np.issubdtype(theta.dtype, np.floating) and not np.issubdtype(theta.dtype, np.integer):
        raise DataError(f"{path}: theta holds {theta.dtype} values, not numbers; pass a file saved with --save")
    names = arrays.get("parameter_names")
    if names is not None and tuple(str(n) for n in np.ravel(names)) != tuple(module.PARAMETER_NAMES):
        raise DataError(f"{path}: was saved for other parameter names; it belongs to another network")
    if not np.all(np.isfinite(theta)):
        raise DataError(f"{path}: theta holds NaN or infinite values; pass a file saved before training diverged")
    state = arrays.get("state")
    if state is not None and (state.shape != (module.STATE_SIZE,) or not np.issubdtype(state.dtype, np.number)
                              or not np.all(np.isfinite(state))):
        state = None
    epochs = arrays.get("epochs", np.int64(0))
    if epochs.shape != () or not np.issubdtype(epochs.dtype, np.integer) or not 0 <= int(epochs) < 2**62:
        raise DataError(f"{path}: 'epochs' is not a count of epochs; pass a file saved with --save")
    dtype = module.DTYPE
    return Checkpoint(np.ascontiguousarray(theta, dtype=dtype),
                      None if state is None else np.ascontiguousarray(state, dtype=dtype), int(epochs))


def load_parameters(path: str | Path, module: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """theta (and the optimizer state, when it fits) saved by :func:`save_parameters`."""
    checkpoint = load_checkpoint(path, module)
    return checkpoint.theta, checkpoint.state


def plot_formats() -> dict[str, str]:
    """{extension: description} that matplotlib can write; a user error when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise DataError("--plot needs matplotlib, which is not installed; install it with "
                        "pip install 'symgrad[plot]'") from None
    return dict(FigureCanvasBase.get_supported_filetypes())


def check_plot(path: str | Path) -> None:
    """--plot's file: a writable place, a format matplotlib writes, and matplotlib itself."""
    check_output(path, "--plot")
    formats = plot_formats()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise DataError(f"--plot {path}: unknown image type {'.' + suffix if suffix else '(no extension)'}; "
                        f"end the name with one of {', '.join('.' + name for name in sorted(formats))}")


def plot_history(path: str | Path, history: History, title: str) -> None:
    """Draw the loss (and accuracy) curves into ``path``; its extension chooses the format."""
    plot_formats()
    import matplotlib.pyplot as plt

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
    image = io.BytesIO()
    try:
        figure.savefig(image, dpi=100, format=Path(path).suffix.lower().lstrip("."))
    finally:
        plt.close(figure)
    write_output(path, image.getvalue())


def _reason(error: BaseException) -> str:
    """An exception's message in a few words, without NumPy's advice to load pickles."""
    text = str(error).split("\n")[0]
    if "allow_pickle" in text or "pickle" in text.lower():
        return "it holds Python objects (pickles), which symgrad never loads"
    return text[:160] or type(error).__name__

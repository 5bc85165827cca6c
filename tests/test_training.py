"""python -m symgrad train: data files, validation, saving and resuming, plots, and data errors."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from conftest import EXAMPLES, MAZUR
from symgrad.cli import main

REGRESSION = {"name": "reg", "inputs": 2, "layers": [{"units": 3, "activation": "tanh"},
                                                      {"units": 2, "activation": "linear"}],
              "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5}}
CLASSIFIER = {"name": "clf", "inputs": 2, "layers": [{"units": 4, "activation": "tanh"},
                                                      {"units": 3, "activation": "softmax"}],
              "loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.05}}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    T = np.stack([X[:, 0] * X[:, 1], X[:, 0] - X[:, 1]], axis=1)
    paths = {"reg": tmp_path / "reg.json", "clf": tmp_path / "clf.json"}
    paths["reg"].write_text(json.dumps(REGRESSION))
    paths["clf"].write_text(json.dumps(CLASSIFIER))
    np.savez(tmp_path / "reg.npz", X=X, T=T)
    np.savez(tmp_path / "clf.npz", X=X, y=y)
    lines = ["a,b,c,d"] + [",".join(str(float(v)) for v in row) for row in np.hstack([X, T])]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "clf.csv").write_text("\n".join(f"{float(a)},{float(b)},{label}" for (a, b), label in zip(X, y)) + "\n")
    return tmp_path, paths


def train(*args):
    return main(["train", *map(str, args), "--quiet"])


def numbers(text: str, label: str) -> float:
    return float(re.search(rf"{label}\s*([-0-9.e+]+)", text).group(1))


@pytest.mark.parametrize("kind, data", [("reg", "reg.npz"), ("reg", "reg.csv"), ("clf", "clf.npz"), ("clf", "clf.csv")])
def test_trains_from_npz_and_csv(files, capsys, kind, data):
    folder, specs = files
    assert train(specs[kind], "--data", folder / data, "--epochs", "60", "--out", folder / "gen") == 0
    out = capsys.readouterr().out
    assert numbers(out, "error after:") < numbers(out, "error before:")
    assert ("training accuracy:" in out) == (kind == "clf")


def test_npz_and_csv_give_the_same_training(files, capsys):
    folder, specs = files
    for data in ("clf.npz", "clf.csv"):
        train(specs["clf"], "--data", folder / data, "--epochs", "5", "--out", folder / "gen", "--seed", "3")
    first, second = (line for line in capsys.readouterr().out.splitlines() if line.startswith("error after"))
    assert first == second


def test_validation_split_and_accuracy(files, capsys):
    folder, specs = files
    assert train(specs["clf"], "--data", folder / "clf.npz", "--epochs", "30", "--validation-split", "0.25",
                 "--seed", "1", "--out", folder / "gen") == 0
    out = capsys.readouterr().out
    assert "(10 held-out examples)" in out and "on 30 example(s)" in out
    assert 0 <= numbers(out, "validation accuracy:") <= 1


def test_save_and_init_resume_exactly(files, capsys):
    folder, specs = files
    common = ["--data", folder / "reg.npz", "--batch-size", "8", "--out", folder / "gen"]
    train(specs["reg"], *common, "--epochs", "4", "--save", folder / "straight.npz")
    train(specs["reg"], *common, "--epochs", "2", "--save", folder / "half.npz")
    train(specs["reg"], *common, "--epochs", "2", "--init", folder / "half.npz", "--save", folder / "resumed.npz")
    straight, resumed = np.load(folder / "straight.npz"), np.load(folder / "resumed.npz")
    np.testing.assert_array_equal(straight["theta"], resumed["theta"])
    np.testing.assert_array_equal(straight["state"], resumed["state"])


def test_plot_writes_a_png(files, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the optional 'plot' extra)")
    folder, specs = files
    assert train(specs["clf"], "--data", folder / "clf.npz", "--epochs", "3", "--plot", folder / "curve.png",
                 "--validation-split", "0.2", "--out", folder / "gen") == 0
    assert (folder / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install(files, capsys, monkeypatch):
    folder, specs = files
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert train(specs["reg"], "--data", folder / "reg.npz", "--epochs", "1", "--plot", folder / "c.png",
                 "--out", folder / "gen") == 2
    assert "pip install 'symgrad[plot]'" in capsys.readouterr().err


def test_no_progress_bar_when_not_a_terminal(files, capsys):
    folder, specs = files
    main(["train", str(specs["reg"]), "--data", str(folder / "reg.npz"), "--epochs", "3", "--out", str(folder / "g")])
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out


@pytest.mark.parametrize("write, words", [
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 3)), T=np.zeros((5, 2))), "X has shape (5, 3), the spec needs (n, 2)"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 2)), T=np.zeros((4, 2))), "X has 5 rows but the targets have 4"),
    (lambda p: np.savez(p / "d.npz", X=np.full((5, 2), np.nan), T=np.zeros((5, 2))), "NaN or infinite values"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 2)), y=np.array([0, 1, 2, 3, 1])),
     "label 3 in row 3 is out of range"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 2))), "expected arrays X and T"),
    (lambda p: (p / "d.csv").write_text("1,2,3,4,5,6\n"), "has 6 columns; the spec needs 5"),
    (lambda p: (p / "d.csv").write_text("1,2,3,4\n1,x,3,4\n"), "line 2, column 2: 'x' is not a number"),
    (lambda p: (p / "d.npz").write_bytes(b"not a zip"), "cannot read it as .npz"),
    (lambda p: (p / "d.txt").write_text("1"), "unknown data file type .txt"),
])
def test_bad_data_is_one_line_with_status_2(files, capsys, write, words):
    folder, specs = files
    write(folder)
    data = next(p for p in folder.iterdir() if p.stem == "d")
    spec = specs["clf"] if "label" in words or "columns" in words else specs["reg"]
    assert train(spec, "--data", data, "--out", folder / "gen") == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_options(files, capsys):
    folder, specs = files
    assert train(specs["reg"], "--data", folder / "reg.npz", "--epochs", "0", "--out", folder / "g") == 2
    assert train(specs["reg"], "--data", folder / "reg.npz", "--lr", "-1", "--out", folder / "g") == 2
    assert train(specs["reg"], "--data", folder / "reg.npz", "--validation-split", "1.5", "--out", folder / "g") == 2
    assert train(specs["reg"], "--data", folder / "reg.npz", "--init", folder / "reg.npz", "--out", folder / "g") == 2


def test_digits_reaches_95_percent_on_a_held_out_quarter(tmp_path, capsys):
    """The command documented in README.md."""
    assert main(["train", str(EXAMPLES / "digits.json"), "--data", str(EXAMPLES / "digits.npz"), "--epochs", "30",
                 "--batch-size", "32", "--seed", "0", "--validation-split", "0.25", "--quiet",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(449 held-out examples)" in out
    assert numbers(out, "validation accuracy:") >= 0.95


def _stderr_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the CLI with standard error on a pseudo-terminal; (status, what the terminal showed)."""
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "symgrad", *args], stdout=subprocess.DEVNULL, stderr=slave,
                               stdin=subprocess.DEVNULL)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.wait(timeout=120), shown.decode(errors="replace")


def test_progress_bar_is_drawn_on_a_terminal_and_quiet_hides_it(files):
    folder, specs = files
    common = ["train", str(specs["reg"]), "--data", str(folder / "reg.npz"), "--epochs", "7",
              "--out", str(folder / "gen")]
    status, shown = _stderr_on_a_terminal(*common)
    assert status == 0, shown
    assert "\r[" in shown and "epoch 7/7" in shown and "examples/s" in shown, shown
    assert "#" * 24 in shown, "the last epoch draws a full bar"
    status, shown = _stderr_on_a_terminal(*common, "--quiet")
    assert status == 0, shown
    assert shown == "", shown


def test_progress_bar_redraws_at_most_every_interval():
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from symgrad.training import Progress

    terminal = Terminal()
    progress = Progress(10_000, stream=terminal, interval=3600.0)
    for epoch in range(1, 10_001):
        progress.update(epoch, 0.5, 1.0)
    progress.close()
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 2 and "epoch 1/10000" in drawn and "epoch 10000/10000" in drawn
    quiet = Terminal()
    Progress(3, stream=quiet, quiet=True).update(3, 0.5, 1.0)
    assert quiet.getvalue() == ""

"""python -m symgrad train: data files, validation, saving and resuming, plots, and data errors."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from helpers import EXAMPLES
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


def one_line_error(capsys, words: str) -> str:
    """The error the last command printed: ``words`` in one line, no traceback, no NumPy pickle advice."""
    err = capsys.readouterr().err
    assert words in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and "allow_pickle" not in err, err
    return err


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
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 3)), T=np.zeros((5, 2))),
     "X has shape (5, 3), the spec needs (n, 2)"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 2)), T=np.zeros((4, 2))), "X has 5 rows but the targets have 4"),
    (lambda p: np.savez(p / "d.npz", X=np.full((5, 2), np.nan), T=np.zeros((5, 2))), "NaN or infinite values"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 2)), y=np.array([0, 1, 2, 3, 1])),
     "label 3 in y[3] is not a class of this network"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((5, 2))), "expected arrays X and T"),
    (lambda p: (p / "d.csv").write_text("1,2,3,4,5,6\n"),
     "line 1 has 6 column(s) separated by commas; the spec needs 5"),
    (lambda p: (p / "d.csv").write_text("1,2,3,4\n1,x,3,4\n"), "line 2, column 2: 'x' is not a number"),
    (lambda p: (p / "d.npz").write_bytes(b"not a zip"), "cannot read it as .npz"),
    (lambda p: (p / "d.txt").write_text("1"), "unknown data file type .txt"),
])
def test_bad_data_is_one_line_with_status_2(files, capsys, write, words):
    folder, specs = files
    write(folder)
    data = next(p for p in folder.iterdir() if p.stem == "d")
    spec = specs["clf"] if "label" in words or "column(s)" in words else specs["reg"]
    assert train(spec, "--data", data, "--out", folder / "gen") == 2
    one_line_error(capsys, words)


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
    progress.close()  # a second close (an error path after the trainer's own) ends no second line
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 2 and "epoch 1/10000" in drawn and "epoch 10000/10000" in drawn
    assert drawn.endswith("   \n") and drawn.count("\n") == 1
    quiet = Terminal()
    Progress(3, stream=quiet, quiet=True).update(3, 0.5, 1.0)
    assert quiet.getvalue() == ""


def _c_available() -> bool:
    from symgrad.compiler import unavailable_reason

    return unavailable_reason() is None


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_resuming_with_a_seed_continues_the_shuffle_bitwise(files, capsys, backend):
    """4 epochs, saved, then 6 more from the file == 10 epochs in one run, with --seed shuffling."""
    if backend == "c" and not _c_available():
        pytest.skip("no working C compiler")
    folder, specs = files
    common = ["--data", folder / "reg.npz", "--batch-size", "7", "--seed", "5", "--backend", backend,
              "--out", folder / f"gen-{backend}"]
    assert train(specs["reg"], *common, "--epochs", "10", "--save", folder / "straight.npz") == 0
    assert train(specs["reg"], *common, "--epochs", "4", "--save", folder / "first.npz") == 0
    assert train(specs["reg"], *common, "--epochs", "6", "--init", folder / "first.npz",
                 "--save", folder / "resumed.npz") == 0
    straight, resumed = np.load(folder / "straight.npz"), np.load(folder / "resumed.npz")
    np.testing.assert_array_equal(straight["theta"], resumed["theta"])
    np.testing.assert_array_equal(straight["state"], resumed["state"])
    assert int(straight["epochs"]) == int(resumed["epochs"]) == 10
    # The test can fail: a file that forgets its epoch count restarts the shuffle and ends elsewhere.
    first = dict(np.load(folder / "first.npz"))
    np.savez(folder / "forgetful.npz", **{**first, "epochs": np.int64(0)})
    assert train(specs["reg"], *common, "--epochs", "6", "--init", folder / "forgetful.npz",
                 "--save", folder / "restarted.npz") == 0
    assert not np.array_equal(np.load(folder / "restarted.npz")["theta"], straight["theta"])


def test_epoch_seeds_depend_on_the_seed_and_the_epoch_only():
    from symgrad.training import epoch_seed

    seeds = [epoch_seed(5, k) for k in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[37] == epoch_seed(5, 37) and epoch_seed(6, 37) != seeds[37]
    assert 0 <= epoch_seed(2**200, 10**15) < 2**63


def _outputs_checked_first(files, capsys, *extra):
    folder, specs = files
    status = train(specs["reg"], "--data", folder / "reg.npz", "--epochs", "3", "--out", folder / "gen", *extra)
    captured = capsys.readouterr()
    assert status == 2, captured
    assert "trained" not in captured.out and captured.out == "", "the error came after the training"
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize("option, target, words", [
    ("--save", "missing/theta.npz", "does not exist"),
    ("--save", "deeper/still/theta.npz", "does not exist"),
    ("--save", ".", "is a folder"),
    ("--plot", "missing/curve.png", "does not exist"),
    ("--plot", "nowhere/curve.svg", "does not exist"),
])
def test_outputs_are_checked_before_training(files, capsys, option, target, words):
    folder, _ = files
    err = _outputs_checked_first(files, capsys, option, folder / target)
    assert words in err and option in err, err


def test_plot_without_matplotlib_fails_before_training(files, capsys, monkeypatch):
    folder, _ = files
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    err = _outputs_checked_first(files, capsys, "--plot", folder / "c.png")
    assert "pip install 'symgrad[plot]'" in err


@pytest.mark.parametrize("name", ["curve.xyz", "curve", "curve.png.bak"])
def test_plot_with_an_unknown_image_type_fails_before_training(files, capsys, name):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the optional 'plot' extra)")
    folder, _ = files
    err = _outputs_checked_first(files, capsys, "--plot", folder / name)
    assert "unknown image type" in err and ".png" in err and ".svg" in err, err


def test_plot_writes_svg_and_pdf(files, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the optional 'plot' extra)")
    folder, specs = files
    for name, magic in (("curve.svg", b"<?xml"), ("curve.pdf", b"%PDF")):
        assert train(specs["reg"], "--data", folder / "reg.npz", "--epochs", "2", "--plot", folder / name,
                     "--out", folder / "gen") == 0
        assert (folder / name).read_bytes().startswith(magic)


def _rows(X, T):
    return [[*map(float, x), *map(float, t)] for x, t in zip(X, T)]


def _examples_trained(out: str) -> int:
    return int(re.search(r"on (\d+) example\(s\)", out).group(1))


@pytest.mark.parametrize("prefix", ["\ufeff", "\ufeffx1,x2,t1,t2\n", "x1;x2;t1;t2\r\n", "\n\n"])
@pytest.mark.parametrize("delimiter, newline", [(",", "\n"), (";", "\n"), ("\t", "\r\n"), (", ", "\n")])
def test_csv_variants_keep_every_example(files, capsys, prefix, delimiter, newline):
    """A byte-order mark, a header, blank lines, semicolons, tabs, CRLF: the same examples, the same training."""
    folder, specs = files
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    body = newline.join(delimiter.join(repr(v) for v in row) for row in _rows(X, T)) + newline
    path = folder / "variant.csv"
    path.write_bytes((prefix + body).encode("utf-8"))
    np.savez(folder / "same.npz", X=X, T=T)
    results = []
    for data in (path, folder / "same.npz"):
        assert train(specs["reg"], "--data", data, "--epochs", "3", "--out", folder / "gen") == 0
        out = capsys.readouterr().out
        results.append((_examples_trained(out), [line for line in out.splitlines() if line.startswith("error")]))
    assert results[0] == results[1] and results[0][0] == 6


@pytest.mark.parametrize("text, spec, words", [
    # The file's own 1-based line numbers, with a header, a byte-order mark and blank lines before the error.
    ("\ufeffa,b,c,d\n\n1,2,3,4\n1,x,3,4\n", "reg", "line 4, column 2: 'x' is not a number"),
    ("1,2,3,4\n\n\n1,2,3,nan\n", "reg", "first in line 4"),
    ("a,b,c,d\n1,2,3,4\n1e999,2,3,4\n", "reg", "first in line 3"),
    ("1,2,3,4\n1,2,3\n", "reg", "line 2 has 3 columns, line 1 (the first example) has 4"),
    ("x,y,label\n0.1,0.2,1\n\n0.3,0.4,7\n", "clf", "label 7.0 in line 4 is not a class"),
    ("0.1,0.2,1\n0.3,0.4,1.5\n", "clf", "label 1.5 in line 2 is not a class"),
    ("0.1,0.2,-1\n", "clf", "label -1.0 in line 1"),
    # Separators: semicolons with decimal commas, and a file whose lines hold one column.
    ("0,5;1,5;2,5;3,5\n", "reg", "line 1, column 1: '0,5' is not a number; use a decimal point"),
    ("1 2 3 4\n", "reg", "line 1 has 1 column(s) separated by commas; the spec needs 4"),
    ("a|b|c|d\n1|2|3|4\n", "reg", "line 2 has 1 column(s)"),
    # Nothing to train on.
    ("", "reg", "holds no examples; write one example per line"),
    ("\ufeff\n\n", "reg", "holds no examples"),
    ("x1;x2;t1;t2\n", "reg", "holds no examples after its header line"),
    (b"1,2,3,4\n\xff,2,3,4\n", "reg", "line 2 is not UTF-8 text"),
    ("1,2,3,4\n1,2,3,\x004\n", "reg", "line 2"),
])
def test_csv_errors_name_the_files_own_line(files, capsys, text, spec, words):
    folder, specs = files
    path = folder / "bad.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    assert train(specs[spec], "--data", path, "--out", folder / "gen") == 2
    one_line_error(capsys, words)


@pytest.mark.parametrize("write, words", [
    (lambda p: (p / "d.npz").write_text("X,T\n1,2\n"), "holds Python objects (pickles), which symgrad never loads"),
    (lambda p: np.save(p / "d.npy", np.zeros(3)) or (p / "d.npy").rename(p / "d.npz"), "single .npy array"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((3, 2)), y=np.array(["a", "b", "c"])), "labels y hold <U1 values"),
    (lambda p: np.savez(p / "d.npz", X=np.array([["a", "b"]] * 3), T=np.zeros((3, 2))), "X holds <U1 values"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((3, 2), complex), T=np.zeros((3, 2))), "X holds complex128"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((3, 2)), y=np.array([0, 1, 10**18])),
     "label 1000000000000000000 in y[2]"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((3, 2)), y=np.array([0.0, 1e300, 1.0])), "in y[1] is not a class"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros((3, 2)), y=np.zeros((3, 2))), "one number per example"),
    (lambda p: np.savez(p / "d.npz", X=np.zeros(3), T=np.zeros((3, 2))), "X has shape (3,)"),
    (lambda p: np.savez(p / "d.npz", X=np.array([[0, 1], [1e300, 0]]), T=np.zeros((2, 2))), "first in X[1]"),
])
def test_bad_npz_files_are_one_line(files, capsys, write, words):
    folder, specs = files
    write(folder)
    spec = specs["clf"] if "label" in words or "one number" in words else specs["reg"]
    if "first in X[1]" in words:  # 1e300 fits float64 but not the float32 network
        spec = folder / "reg32.json"
        spec.write_text(json.dumps(REGRESSION | {"name": "reg32", "dtype": "float32"}))
    assert train(spec, "--data", folder / "d.npz", "--out", folder / "gen") == 2
    one_line_error(capsys, words)


@pytest.mark.parametrize("write, words", [
    (lambda p: (p / "t.npz").write_text("theta"), "pickles"),
    (lambda p: np.savez(p / "t.npz", weights=np.zeros(3)), "holds no array theta"),
    (lambda p: np.savez(p / "t.npz", theta=np.zeros(5)), "theta has shape (5,)"),
    (lambda p: np.savez(p / "t.npz", theta=np.array(["a"] * 17)), "not numbers"),
    (lambda p: np.savez(p / "t.npz", theta=np.full(17, np.inf)), "NaN or infinite"),
    (lambda p: np.savez(p / "t.npz", theta=np.zeros(17), epochs=np.int64(-3)), "'epochs' is not a count"),
    (lambda p: np.savez(p / "t.npz", theta=np.zeros(17), epochs=np.array([1, 2])), "'epochs' is not a count"),
    (lambda p: np.savez(p / "t.npz", theta=np.zeros(17), parameter_names=np.array(["a"] * 17)), "other parameter"),
])
def test_bad_init_files_are_one_line(files, capsys, write, words):
    folder, specs = files
    write(folder)
    assert train(specs["reg"], "--data", folder / "reg.npz", "--init", folder / "t.npz", "--out", folder / "gen") == 2
    one_line_error(capsys, words)


@pytest.mark.parametrize("option, value, words", [
    ("--seed", "-1", "--seed: -1 is negative"),
    ("--digits", "-1", "--digits: -1 is out of range"),
    ("--digits", "18", "--digits: 18 is out of range"),
    ("--batch-size", "0", "--batch-size: 0 is too small"),
    ("--epochs", "-5", "--epochs: -5 is too small"),
])
def test_bad_numbers_are_one_line(files, capsys, option, value, words):
    folder, specs = files
    assert train(specs["reg"], "--data", folder / "reg.npz", option, value, "--out", folder / "gen") == 2
    one_line_error(capsys, words)


def test_a_batch_larger_than_the_data_is_the_whole_set(files, capsys):
    folder, specs = files
    results = []
    for extra in ([], ["--batch-size", str(10**30)], ["--batch-size", "40"]):
        assert train(specs["reg"], "--data", folder / "reg.npz", "--epochs", "3", "--out", folder / "gen", *extra) == 0
        results.append([line for line in capsys.readouterr().out.splitlines() if line.startswith("error")])
    assert results[0] == results[1] == results[2]


def test_init_from_another_optimizer_says_the_state_starts_fresh(files, capsys):
    folder, specs = files
    assert train(specs["reg"], "--data", folder / "reg.npz", "--epochs", "2", "--save", folder / "sgd.npz",
                 "--out", folder / "gen") == 0
    adam = folder / "adam.json"
    adam.write_text(json.dumps(REGRESSION | {"name": "reg_adam", "optimizer": {"name": "adam", "learning_rate": 0.01}}))
    capsys.readouterr()
    assert train(adam, "--data", folder / "reg.npz", "--epochs", "2", "--init", folder / "sgd.npz",
                 "--out", folder / "gen") == 0
    assert "holds no optimizer state for adam; starting a fresh one" in capsys.readouterr().err

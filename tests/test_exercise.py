"""`exercise`: random hand-sized networks whose answer keys match an independent computation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, central_differences, reference_loss
from symgrad.exercise import BIASES, HIDDEN, OPTIMIZERS, OUTPUTS, draw_spec, exercises, write_exercises


def _theta(spec: dict) -> np.ndarray:
    """DESIGN.md's order: layer by layer, weights[j][i], then the biases."""
    names = []
    for layer in spec["layers"]:
        names += [w for row in layer["weights"] for w in row]
        bias = layer["bias"]
        if bias != "none":
            names += [bias["name"]] if bias["mode"] == "shared" else bias["names"]
    return np.array([spec["initial"][n] for n in names]), names


def _one_step(optimizer: dict, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """One step from a fresh state, as torch.optim documents each rule."""
    rate = optimizer["learning_rate"]
    g = grad + optimizer.get("weight_decay", 0.0) * theta
    if optimizer["name"] == "adam":
        m_hat, v_hat = g, g * g  # (1 - beta) g / (1 - beta) after the first step
        return theta - rate * m_hat / (np.sqrt(v_hat) + 1e-8)
    return theta - rate * g  # momentum's first buffer is the gradient itself


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_answers_match_an_independent_computation(seed: int) -> None:
    for item in exercises(seed, count=3):
        spec = item.spec
        theta, names = _theta(spec)
        assert list(item.gradient) == names
        X, T = np.array([item.inputs]), np.array([item.targets])
        assert item.loss == pytest.approx(reference_loss(spec, theta, X, T), rel=1e-12)
        numeric = central_differences(lambda t: reference_loss(spec, t, X, T), theta)
        np.testing.assert_allclose([item.gradient[n] for n in names], numeric, rtol=1e-6, atol=1e-9)
        expected = _one_step(spec["optimizer"], theta, np.array([item.gradient[n] for n in names]))
        np.testing.assert_allclose([item.updated[n] for n in names], expected, rtol=1e-12, atol=1e-15)


def test_exercises_are_hand_sized_complete_specs_and_vary() -> None:
    seen = {"hidden": set(), "output": set(), "bias": set(), "optimizer": set()}
    rng = np.random.default_rng(123)
    for k in range(60):
        spec = draw_spec(rng, f"x{k}")
        assert 2 <= len(spec["inputs"]) <= 3 and 2 <= len(spec["layers"][0]["units"]) <= 3
        theta, names = _theta(spec)
        assert set(spec["initial"]) == set(names), "every parameter is named and has a value"
        assert all(abs(v * 10 - round(v * 10)) < 1e-9 for v in theta), "one decimal"
        seen["hidden"].add(spec["layers"][0]["activation"])
        seen["output"].add((spec["layers"][1]["activation"], spec["loss"]))
        seen["bias"].update(layer["bias"] if isinstance(layer["bias"], str) else layer["bias"]["mode"]
                            for layer in spec["layers"])
        seen["optimizer"].add(json.dumps(spec["optimizer"], sort_keys=True))
    assert seen["hidden"] == set(HIDDEN)
    assert seen["output"] == set(OUTPUTS)
    assert seen["bias"] == set(BIASES)
    assert len(seen["optimizer"]) == len(OPTIMIZERS)


@pytest.mark.parametrize("format", ["md", "html"])
def test_files_are_byte_identical_for_a_seed_and_differ_between_seeds(tmp_path: Path, format: str) -> None:
    first = write_exercises(5, tmp_path / "a", count=2, format=format)
    write_exercises(5, tmp_path / "b", count=2, format=format)
    write_exercises(6, tmp_path / "c", count=2, format=format)
    names = sorted(p.name for p in first)
    assert names == sorted(["answers.json", f"answers.{format}", f"questions.{format}", f"worked-1.{format}",
                            f"worked-2.{format}"])
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    a = json.loads((tmp_path / "a" / "answers.json").read_text())
    c = json.loads((tmp_path / "c" / "answers.json").read_text())
    assert a["exercises"][0]["spec"] != c["exercises"][0]["spec"]


def test_html_sheets_write_negative_numbers_with_a_minus_sign(tmp_path: Path) -> None:
    """Typeset pages show −0.5 (U+2212), as the worked pages' MathML does; Markdown keeps the
    hyphen-minus a reader can paste into code."""
    html = write_exercises(3, tmp_path / "html", count=3, format="html")
    md = write_exercises(3, tmp_path / "md", count=3, format="md")
    answers = json.loads((tmp_path / "html" / "answers.json").read_text())
    negative = [value for exercise in answers["exercises"] for value in exercise["gradient"].values() if value < 0]
    assert negative, "seed 3 should give a negative gradient for this test to mean anything"
    for path in html:
        if path.suffix == ".html":
            assert not re.search(r"(?<![\w-])-\d", path.read_text()), f"{path.name} has a hyphen-minus before a digit"
    text = (tmp_path / "html" / "answers.html").read_text()
    assert text.count("\u2212") >= len(negative)
    assert re.search(r"(?<![\w-])-\d", (tmp_path / "md" / "answers.md").read_text()) and md


def test_cli_writes_the_sheet_and_refuses_bad_options(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONHASHSEED="123")
    done = subprocess.run([sys.executable, "-m", "symgrad", "exercise", "--seed", "5", "--out", str(tmp_path / "x"),
                           "--count", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    write_exercises(5, tmp_path / "y", count=2)
    for name in ("questions.md", "answers.md", "answers.json", "worked-1.md"):
        assert (tmp_path / "x" / name).read_bytes() == (tmp_path / "y" / name).read_bytes(), name
    answers = json.loads((tmp_path / "x" / "answers.json").read_text())
    assert set(answers["exercises"][0]) == {"spec", "inputs", "targets", "loss", "gradient", "updated"}
    for bad in (["--seed", "-1"], ["--seed", "1", "--count", "0"], ["--seed", "1", "--format", "pdf"],
                ["--seed", "1", "--count", "1000"]):
        done = subprocess.run([sys.executable, "-m", "symgrad", "exercise", *bad, "--out", str(tmp_path / "z")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1

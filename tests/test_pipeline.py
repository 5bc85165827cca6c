"""The driver: each command goes through the stages in order, and stops where it has what it needs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import symgrad
from helpers import MAZUR, reference_loss, subprocess_env
from symgrad.pipeline import analyze, build, build_and_load


def test_analyze_returns_the_stage_values_and_remembers_them():
    analysis = analyze(MAZUR)
    assert analysis.spec.name == "mazur" and analysis.model.spec is analysis.spec
    assert analysis.gradients.model is analysis.model
    assert analyze(json.loads(MAZUR.read_text())) is analysis, "the same document is analyzed once"
    changed = json.loads(MAZUR.read_text())
    changed["optimizer"]["learning_rate"] = 0.25
    assert analyze(changed) is not analysis


def test_the_package_face_is_the_driver():
    assert symgrad.build is build and symgrad.analyze is analyze
    assert symgrad.load.__module__ == "symgrad.pipeline"


def test_build_and_load_returns_the_build_and_its_module(tmp_path):
    spec = json.loads(MAZUR.read_text()) | {"name": "driven"}
    result, module = build_and_load(spec, "numpy", out=tmp_path)
    assert result.package_dir == tmp_path / "driven" and str(result.cache_dir) in module.__file__
    X, T = np.array([[0.05, 0.1]]), np.array([[0.01, 0.99]])
    theta = module.initial_parameters()
    assert module.loss(theta, X, T) == pytest.approx(reference_loss(spec, theta, X, T), rel=1e-12)


_HIT = """
import sys, symgrad
symgrad.load(sys.argv[1], backend="numpy")
print(sorted(m for m in ("sympy", "jinja2", "symgrad.model", "symgrad.gradients", "symgrad.emit") if m in sys.modules))
"""


def test_a_cache_hit_runs_no_stage_before_build(tmp_path):
    symgrad.load(MAZUR, backend="numpy")
    result = subprocess.run([sys.executable, "-c", _HIT, str(MAZUR)], capture_output=True, text=True, timeout=120,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

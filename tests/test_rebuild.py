"""Rebuilds and concurrent builds never mix code: what is loaded is what was built.

A compiled extension cannot be loaded twice from one path in a process, and Python's bytecode
cache trusts a source file of the same size and second; so a rebuild in place, a concurrent
build of another spec with the same name, or a damaged cache could hand out old or foreign code.
Every check here compares the loaded module with the independent reference in conftest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import ROOT, reference_loss, subprocess_env
from symgrad.builder import MANIFEST


def _env() -> dict[str, str]:
    """subprocess_env without PYTHONDONTWRITEBYTECODE: these tests need the bytecode a plain import writes."""
    return {k: v for k, v in subprocess_env().items() if k != "PYTHONDONTWRITEBYTECODE"}


X = np.array([[0.3, -0.2], [0.1, 0.7], [-0.5, 0.4]])
T = np.array([[0.2, 0.9], [0.6, 0.1], [0.4, 0.5]])


def _c_available() -> bool:
    from symgrad.compiler import unavailable_reason

    return unavailable_reason() is None


def _backends() -> list[str]:
    return ["numpy"] + (["c"] if _c_available() else [])


def _spec(name: str = "same", activation: str = "sigmoid", learning_rate: float = 0.25,
          w1: float = 0.15) -> dict:
    return {"name": name, "inputs": 2,
            "layers": [{"units": 2, "activation": activation}, {"units": 2, "activation": "sigmoid"}],
            "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": learning_rate},
            "initial": {"scheme": "xavier_uniform", "seed": 1, "W1_0_0": w1}}


#: Pairs of specs with one name that differ in one thing each; the learning rates and initial
#: values have the same number of digits, so the generated files keep their sizes.
CHANGES = {
    "learning_rate": (_spec(learning_rate=0.25), _spec(learning_rate=0.75)),
    "initial_value": (_spec(w1=0.15), _spec(w1=0.35)),
    "activation": (_spec(activation="sigmoid"), _spec(activation="tanh")),
}


def _observed(module) -> dict:
    """What the module computes on X, T: what a stale module would get wrong."""
    theta = module.initial_parameters()
    loss, grad = module.gradient(theta, X, T)
    stepped = theta.copy()
    module.step(stepped, X, T)
    return {"theta": theta.tolist(), "loss": float(loss), "grad": grad.tolist(), "stepped": stepped.tolist()}


def _assert_is(observed: dict, spec: dict) -> None:
    """``observed`` belongs to ``spec``: its loss is the reference's, its step moves by spec's rate."""
    theta = np.array(observed["theta"])
    names = ["W1_0_0"]  # the one named initial value sits first in theta
    assert theta[0] == spec["initial"][names[0]]
    assert observed["loss"] == pytest.approx(reference_loss(spec, theta, X, T), rel=1e-12)
    expected = theta - spec["optimizer"]["learning_rate"] * np.array(observed["grad"])
    np.testing.assert_allclose(observed["stepped"], expected, rtol=1e-12, atol=1e-15)


_FRESH = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
package = importlib.import_module(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from test_rebuild import _observed
print(json.dumps({b: _observed(importlib.import_module(f"{sys.argv[2]}.{b}_backend")) for b in sys.argv[4:]}))
"""


def _fresh_import(out: Path, name: str, backends: list[str]) -> dict:
    """Import ``out/<name>`` with a plain ``import`` in a new process; what each backend computes."""
    result = subprocess.run([sys.executable, "-c", _FRESH, str(out), name, str(ROOT / "tests"), *backends],
                            capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_rebuild_with_the_same_name_into_the_same_folder_gives_the_new_code(tmp_path, change):
    first, second = CHANGES[change]
    backends = _backends()
    for spec in (first, second, first):  # and back again, within the same second
        for backend in backends:
            _assert_is(_observed(symgrad.load(spec, backend=backend, out=tmp_path)), spec)
        for observed in _fresh_import(tmp_path, spec["name"], backends).values():
            _assert_is(observed, spec)


def test_rebuild_after_a_plain_import_wrote_bytecode_gives_the_new_code(tmp_path):
    """A process that imported the folder left __pycache__ behind; the rebuild must not reuse it."""
    first, second = CHANGES["learning_rate"]
    symgrad.build(first, out=tmp_path, backend="numpy")
    _assert_is(_fresh_import(tmp_path, "same", ["numpy"])["numpy"], first)
    assert list((tmp_path / "same" / "__pycache__").iterdir())
    symgrad.build(second, out=tmp_path, backend="numpy")
    _assert_is(_fresh_import(tmp_path, "same", ["numpy"])["numpy"], second)
    _assert_is(_observed(symgrad.load(second, backend="numpy", out=tmp_path)), second)


_CONCURRENT = """
import json, sys
sys.path.insert(0, sys.argv[4])
import symgrad
from test_rebuild import _observed
spec = json.loads(sys.argv[1])
print(json.dumps([_observed(symgrad.load(spec, backend=sys.argv[3], out=sys.argv[2])) for _ in range(4)]))
"""


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_concurrent_builds_of_two_specs_with_one_name_into_one_folder(tmp_path, backend):
    specs = CHANGES["activation"]
    env = {**_env(), "SYMGRAD_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "out"
    processes = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, json.dumps(specs[k % 2]), str(out), backend,
                                   str(ROOT / "tests")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for k in range(6)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-1000:] for _, err in outputs]
    for k, (stdout, _) in enumerate(outputs):
        for observed in json.loads(stdout):
            _assert_is(observed, specs[k % 2])
    # the folder holds one whole build: every file its manifest lists, intact, and nothing else of ours
    folder = out / "same"
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert {p.name for p in folder.iterdir()} <= set(manifest["files"]) | {MANIFEST, "__pycache__"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging folders were left behind"

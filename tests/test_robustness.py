"""Behaving like a compiler people can trust: wrong calls, concurrent and killed builds, determinism."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import EXAMPLES, ROOT, assert_gradient_matches, make_spec, subprocess_env
from symgrad.builder import MANIFEST

STATEFUL = make_spec([3, 4, 2], ["relu", "softmax"], "cross_entropy",
                     optimizer={"name": "adam", "learning_rate": 0.01}, frozen=["b1_0"]) | {"name": "fuzz_adam"}
# a schedule: step and update read the rate of the state's epoch, which the wrong calls corrupt too
SCHEDULED = make_spec([3, 4, 2], ["tanh", "sigmoid"], "half_sse",
                      optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                                 "schedule": {"name": "cosine", "T_max": 5}}) | {"name": "fuzz_cosine"}


def _c_available() -> bool:
    from symgrad.compiler import unavailable_reason

    return unavailable_reason() is None


def _backends() -> list[str]:
    return ["numpy"] + (["c"] if _c_available() else [])


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("spec_name", ["mazur", "stateful", "scheduled"])
def test_a_thousand_wrong_calls_raise_type_or_value_errors(tmp_path, backend, spec_name):
    if backend == "c" and not _c_available():
        pytest.skip("no working C compiler")
    if spec_name != "mazur":
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(STATEFUL if spec_name == "stateful" else SCHEDULED))
        try:
            symgrad.build(path, out=tmp_path / "probe", backend=backend)
        except symgrad.BuildError as error:
            pytest.skip(f"the {backend} backend cannot build this spec here: {error}")
    else:
        path = EXAMPLES / "mazur.json"
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "wrong_call_runner.py"), str(path), backend,
                             "1000", "7"], capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert result.returncode == 0, f"the process died with status {result.returncode}: {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    assert report["backend"] == backend
    assert sum(report["outcomes"].values()) == 1000
    assert report["surprises"] == []
    assert report["outcomes"].get("TypeError", 0) + report["outcomes"].get("ValueError", 0) >= 300


_BUILD = """
import sys, numpy as np, symgrad
m = symgrad.load(sys.argv[1], backend=sys.argv[2])
theta = m.initial_parameters()
print(m.loss(theta, np.full((2, m.N_INPUTS), 0.3, m.DTYPE), np.full((2, m.N_OUTPUTS), 0.5, m.DTYPE)))
"""


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_eight_processes_building_one_spec_at_once(tmp_path, backend):
    spec = make_spec([4, 6, 3], ["tanh", "softmax"], "cross_entropy") | {"name": "together"}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    env = {**subprocess_env(), "SYMGRAD_CACHE": str(tmp_path / "cache")}
    processes = [subprocess.Popen([sys.executable, "-c", _BUILD, str(path), backend], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-500:] for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1
    entries = list((tmp_path / "cache" / "packages").iterdir())
    assert len(entries) == 1
    leftovers = list((tmp_path / "cache" / "tmp").iterdir()) if (tmp_path / "cache" / "tmp").exists() else []
    assert leftovers == [] or all(not p.name.startswith(entries[0].name[:12]) for p in leftovers)
    env_hit = subprocess.run([sys.executable, "-c", "import sys, symgrad; r = symgrad.build(sys.argv[1], "
                              "backend=sys.argv[2]); print(r.cache_hit)", str(path),
                              "all" if backend == "auto" else backend],
                             env=env, capture_output=True, text=True, check=True)
    assert env_hit.stdout.strip() == "True"


def test_eight_processes_building_into_one_folder(tmp_path):
    processes = [subprocess.Popen([sys.executable, "-m", "symgrad", "build", str(EXAMPLES / "mazur.json"),
                                   "--out", str(tmp_path / "out")], env=subprocess_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(8)]
    for process in processes:
        process.communicate(timeout=300)
        assert process.returncode == 0
    result = symgrad.build(EXAMPLES / "mazur.json", out=tmp_path / "out")
    assert result.cache_hit
    assert not [p for p in (tmp_path / "out" / "mazur").iterdir() if p.name.startswith(".")]
    module = symgrad.load(EXAMPLES / "mazur.json", out=tmp_path / "out", backend="numpy")
    assert module.loss(module.initial_parameters(), np.array([[0.05, 0.1]]), np.array([[0.01, 0.99]])) \
        == pytest.approx(0.298371108760003, rel=1e-12)


@pytest.mark.parametrize("target", ["cache", "folder"])
def test_a_build_killed_halfway_leaves_a_usable_cache(tmp_path, target):
    spec = json.loads((EXAMPLES / "mnist_mlp.json").read_text())
    spec["name"] = "killed"
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    env = {**subprocess_env(), "SYMGRAD_CACHE": str(tmp_path / "cache")}
    out = ["--out", str(tmp_path / "out")] if target == "folder" else []
    code = ("import sys, symgrad; symgrad.build(sys.argv[1], out=sys.argv[2] if len(sys.argv) > 2 else None)")
    for delay in (0.3, 0.8, 1.5):
        process = subprocess.Popen([sys.executable, "-c", code, str(path), *out[1:]], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    check = ("import sys, numpy as np, symgrad; r = symgrad.build(sys.argv[1], out=sys.argv[2] if len(sys.argv) > 2 "
             "else None); m = symgrad.load(sys.argv[1], out=sys.argv[2] if len(sys.argv) > 2 else None, "
             "backend='numpy'); t = m.initial_parameters(); X = np.ones((2, 784)); T = np.eye(10)[:2]; "
             "print(m.gradient(t, X, T)[0])")
    result = subprocess.run([sys.executable, "-c", check, str(path), *out[1:]], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.isfinite(float(result.stdout))


def test_truncated_and_corrupted_cache_entries_are_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path / "cache"))
    spec = make_spec([2, 3, 2], ["sigmoid", "sigmoid"], "half_sse") | {"name": "corrupted"}
    first = symgrad.build(spec, backend="all")
    for damage in ("truncate", "garbage", "delete", "manifest"):
        for path in sorted(first.package_dir.iterdir()):
            if damage == "manifest" and path.name == MANIFEST:
                path.write_text("{not json")
            elif damage != "manifest" and path.name != MANIFEST and path.suffix in (".py", ".so", ".c"):
                if damage == "truncate":
                    path.write_bytes(path.read_bytes()[:10])
                elif damage == "garbage":
                    path.write_bytes(b"\x7fELF garbage")
                else:
                    path.unlink()
                break
        rebuilt = symgrad.build(spec, backend="all")
        assert not rebuilt.cache_hit, damage
        assert symgrad.build(spec, backend="all").cache_hit
    for backend in _backends():
        assert_gradient_matches(spec, symgrad.load(spec, backend=backend))


@pytest.mark.parametrize("example", ["mazur", "mnist_mlp", "digits"])
def test_every_example_builds_byte_identical_sources_in_two_processes(tmp_path, example):
    spec = EXAMPLES / f"{example}.json"
    name = json.loads(spec.read_text())["name"]
    for folder, seed in (("a", "1"), ("b", "2")):
        env = {**subprocess_env(), "PYTHONHASHSEED": seed, "SYMGRAD_CACHE": str(tmp_path / f"cache-{folder}")}
        subprocess.run([sys.executable, "-m", "symgrad", "build", str(spec), "--out", str(tmp_path / folder)],
                       env=env, check=True, capture_output=True, cwd=tmp_path)
        if _c_available():
            subprocess.run([sys.executable, "-m", "symgrad", "build", str(spec), "--backend", "c", "--out",
                            str(tmp_path / folder / "c")], env=env, capture_output=True, cwd=tmp_path)

    def sources(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and p.suffix not in (".so", ".pyd", ".o") and p.name != MANIFEST}

    a, b = sources(tmp_path / "a"), sources(tmp_path / "b")
    assert a == b and any(name in key for key in a)

"""Smoke tests of the benchmark tools: they run with --quick, exit 0 and print their tables.

Timings are never asserted here (the machine is shared and noisy); tools/bench_*.py report them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_tool(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYMGRAD_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, f"tools/{name}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def test_bench_build_quick(tmp_path):
    done = run_tool("bench_build.py", tmp_path, "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "| mnist_mlp 784-256-10" in out
    assert "| hand-written NumPy step" in out
    assert "| ratio generated / hand-written" in out
    for target in ("cold build, mnist_mlp", "cached build, mnist_mlp", "step generated / hand-written"):
        line = next(line for line in table_lines(out) if target in line)
        assert line.rstrip(" |").endswith(("PASS", "FAIL", "n/a")), line
    assert "MISMATCH" not in out


def test_bench_tiny_quick(tmp_path):
    done = run_tool("bench_tiny.py", tmp_path, "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    rows = {line.split("|")[1].strip(): line for line in table_lines(out)}
    for name in ("hand-written C (ctypes)", "plain Python floats", "hand-written NumPy", "symgrad NumPy m.train"):
        assert name in rows, out
    # Every contender that ran reproduced DESIGN.md's E; absent ones say why instead of crashing.
    assert "PASS" in rows["symgrad NumPy m.train"]
    assert "symgrad C m.train" in rows and ("PASS" in rows["symgrad C m.train"] or "n/a (" in rows["symgrad C m.train"])
    assert "symgrad C m.step" in rows
    assert "n/a (skipped (--quick))" in rows["PyTorch eager (autograd.grad)"]


def test_check_autodiff_runs_or_skips(tmp_path):
    done = run_tool("check_autodiff.py", tmp_path, "--quick", "--cases", "0", "--backend", "numpy", "--form", "scalar")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped: neither torch nor jax" in done.stdout or "result: PASS" in done.stdout


def test_bench_mlp_quick(tmp_path):
    done = run_tool("bench_mlp.py", tmp_path, "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for row in ("| symgrad c ", "| symgrad numpy ", "| hand-written NumPy ", "| symgrad numpy m.step",
                "| hand-written NumPy step"):
        assert row in out, row
    for target in ("digits epoch (momentum): best symgrad", "784-256-10 step: NumPy backend / hand NumPy",
                   "backend=\"auto\" picks the faster backend"):
        line = next(line for line in table_lines(out) if target in line)
        assert line.rstrip(" |").endswith(("PASS", "FAIL", "n/a")), line
    assert "MISMATCH" not in out

"""A float32 spec gives a float-only kernel; a float64 spec keeps double and libm.

Every activation, loss, optimizer and penalty is printed into a kernel that compiles under the
strictest warnings (-Wdouble-promotion -Wfloat-conversion as errors) and, cross-compiled for a
Cortex-M4F, references no software double routine and no libm function but the exact float
ones.  The digits network and a 2-2-2 one are among them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT
from symgrad.emit import emit_package
from symgrad.initialize import initial_parameters
from symgrad.pipeline import analyze, lower

HOST_FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion",
              "-ffp-contract=off", "-O2"]
M4F = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2"]
#: what a float-only kernel may leave to the C library: exact float functions and memory moves
ALLOWED = {"memset", "memcpy", "sqrtf", "fabsf", "fmaxf", "fminf"}


def _net(name: str, activation, loss, out_activation="sigmoid", optimizer=None, **layer) -> dict:
    return {"name": name, "inputs": 3, "dtype": "float32",
            "layers": [{"units": 4, "activation": activation, **layer}, {"units": 2, "activation": out_activation}],
            "loss": loss, "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.1}}


SPECS = {
    "digits": json.loads((ROOT / "examples" / "digits.json").read_text()),
    "mazur32": {**json.loads((ROOT / "examples" / "mazur.json").read_text()), "name": "mazur32", "dtype": "float32"},
    "sigmoid": _net("f_sigmoid", "sigmoid", "half_sse", optimizer={"name": "adam", "learning_rate": 0.01}),
    "tanh": _net("f_tanh", "tanh", "mse", optimizer={"name": "adamw", "learning_rate": 0.01}),
    "relu": _net("f_relu", "relu", "sse", optimizer={"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5},
                 l2=0.01, l1=0.001),
    "leaky": _net("f_leaky", {"name": "leaky_relu", "slope": 0.1}, "binary_cross_entropy",
                  optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    "softplus": _net("f_softplus", "softplus", "cross_entropy", out_activation="softmax"),
    "linear": _net("f_linear", "linear", {"expr": "(t - o)**4 + abs(t - o)**1.5"}, out_activation="linear"),
    "custom": _net("f_custom", {"expr": "x*erf(x) + log(1 + exp(x))"}, {"expr": "-t*log(o) + o**2"}),
}


def _kernel(spec: dict, form: str = "auto") -> tuple[bytes, bytes]:
    analysis = analyze(spec)
    program = lower(analysis.gradients, form)
    files = emit_package(program, initial_parameters(analysis.spec), ("c",))
    return files[f"{spec['name']}.c"], files[f"{spec['name']}.h"]


def _write(tmp_path: Path, spec: dict, form: str = "auto") -> Path:
    source, header = _kernel(spec, form)
    (tmp_path / f"{spec['name']}.h").write_bytes(header)
    path = tmp_path / f"{spec['name']}.c"
    path.write_bytes(source)
    return path


def _code(text: str) -> str:
    """C source without its comments."""
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


@needs_cc
@pytest.mark.parametrize("key", list(SPECS))
@pytest.mark.parametrize("form", ["scalar", "vector"])
def test_float32_kernel_has_no_double_and_compiles_under_the_strictest_warnings(tmp_path, key, form):
    if key == "digits" and form == "scalar":
        pytest.skip("digits is too large for straight-line code (it is printed as loops anyway)")
    path = _write(tmp_path, SPECS[key], form)
    text = path.read_text() + (tmp_path / path.name.replace(".c", ".h")).read_text()
    assert "double" not in _code(text)
    for libm in ("exp", "log", "tanh", "log1p", "erf", "pow", "expf", "logf", "tanhf", "powf", "erff", "log1pf"):
        assert not re.search(rf"\b{libm}\(", _code(text)), f"{key}: calls libm's {libm}"
    result = subprocess.run(["cc", *HOST_FLAGS, "-c", str(path), "-o", str(tmp_path / "k.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-nm") is None,
                    reason="arm-none-eabi-gcc is not installed (Debian package gcc-arm-none-eabi)")
@pytest.mark.parametrize("key", list(SPECS))
def test_cortex_m4f_object_references_no_double_routine(tmp_path, key):
    path = _write(tmp_path, SPECS[key])
    obj = tmp_path / "k.o"
    result = subprocess.run([*M4F, *HOST_FLAGS, "-c", str(path), "-o", str(obj)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()
    symbols = {word for word in undefined if word != "U"}
    assert not {s for s in symbols if s.startswith("__aeabi_d")}, symbols
    assert symbols <= ALLOWED, f"{key}: references {sorted(symbols - ALLOWED)}"


@needs_cc
def test_the_check_fails_on_a_double_sum(tmp_path):
    """The M4F check above is not vacuous: the same kernel with one double accumulator fails it."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    path = _write(tmp_path, SPECS["mazur32"])
    text = path.read_text()
    mutated = text.replace("real total = 0;", "double total = 0;", 1)
    assert mutated != text
    path.write_text(mutated)
    subprocess.run([*M4F, "-std=c99", "-ffp-contract=off", "-c", str(path), "-o", str(tmp_path / "k.o")], check=True)
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "k.o")], capture_output=True, text=True,
                               check=True).stdout
    assert "__aeabi_d" in undefined


def test_float64_kernel_keeps_double_and_libm():
    spec = {**SPECS["custom"], "name": "f_custom64", "dtype": "float64"}
    source, header = _kernel(spec)
    code = _code(source.decode())
    assert "sg_expf" not in code and "float" not in code
    assert re.search(r"\bexp\(", code) and re.search(r"\berf\(", code)
    assert "typedef double f_custom64_real;" in header.decode()


def test_float32_kernel_carries_only_the_math_it_calls():
    plain, _ = _kernel(_net("f_plain", "relu", "half_sse", out_activation="linear"))
    assert "sg_" + "expf" not in plain.decode() and "stdint" not in plain.decode()  # relu and linear need none
    digits, _ = _kernel(SPECS["digits"])
    text = digits.decode()
    for name in ("sg_expf", "sg_logf", "sg_tanhf"):
        assert f"float {name}(" in text
    assert "sg_erff" not in text and "sg_powf" not in text

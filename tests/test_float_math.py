"""The float-only math of float32 kernels: accurate, warning-free under strict flags, the same bits at
every optimization level, and free of double-precision routines when built for a Cortex-M4F."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_float_math", ROOT / "tools" / "check_float_math.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


@needs_cc
def test_every_function_is_within_its_ulp_bound_of_the_correctly_rounded_value() -> None:
    results = check.measure(points=20_000)
    for name, (worst, at, _) in results.items():
        assert worst <= check.BOUNDS[name], f"{name}: {worst:.2f} ulp at x = {at!r}, bound {check.BOUNDS[name]}"


@needs_cc
def test_special_values() -> None:
    with check.tempfile.TemporaryDirectory() as folder:
        library = check.compile_harness(Path(folder))

        def run(name: str, values: list[float]) -> np.ndarray:
            x = np.array(values, dtype=np.float32)
            y = np.empty_like(x)
            getattr(library, f"map_{name}")(x.ctypes.data_as(check.ctypes.c_void_p),
                                            y.ctypes.data_as(check.ctypes.c_void_p), check.ctypes.c_long(x.size))
            return y

        inf, nan = float("inf"), float("nan")
        assert list(run("sg_expf", [0.0, 89.0, -104.0, -inf, inf])) == [1.0, inf, 0.0, 0.0, inf]
        assert np.isnan(run("sg_expf", [nan])[0]) and np.isnan(run("sg_logf", [-1.0])[0])
        assert list(run("sg_logf", [1.0, 0.0, inf])) == [0.0, -inf, inf]
        assert run("sg_logf", [1e-45])[0] == np.float32(np.log(np.float64(np.float32(1e-45))))
        assert list(run("sg_tanhf", [0.0, 20.0, -20.0])) == [0.0, 1.0, -1.0]
        assert list(run("sg_erff", [0.0, 5.0, -5.0])) == [0.0, 1.0, -1.0]
        assert list(run("sg_sigmoidf", [-200.0, 200.0])) == [0.0, 1.0]
        assert list(run("sg_softplusf", [-200.0, 200.0])) == [0.0, 200.0]


def _object_bits(cc: list[str], flags: list[str], folder: Path) -> bytes:
    """Every function's results on a fixed grid, from a harness built with ``flags``."""
    source = folder / "bits.c"
    calls = " ".join(f"y = {name}(x); fwrite(&y, sizeof y, 1, stdout);" for name in check.UNARY)
    calls += " y = sg_powf(x, 1.5f); fwrite(&y, sizeof y, 1, stdout); y = sg_powf(0.999f, (float)(i + 4001));"
    calls += " fwrite(&y, sizeof y, 1, stdout);"
    source.write_text(f'#include <stdio.h>\n#include "{check.HEADER}"\nint main(void) {{ int i; float x, y; '
                      f"for (i = -4000; i <= 4000; i++) {{ x = (float)i * 0.00731f; {calls} }} return 0; }}\n")
    binary = folder / f"bits{len(list(folder.iterdir()))}"
    subprocess.run([*cc, *flags, str(source), "-o", str(binary)], check=True)
    return subprocess.run([str(binary)], check=True, capture_output=True).stdout


@needs_cc
def test_the_same_bits_at_every_optimization_level(tmp_path: Path) -> None:
    base = ["-std=c99", "-ffp-contract=off"]
    reference = _object_bits(["cc"], base + ["-O0"], tmp_path)
    for extra in (["-O2"], ["-O3", "-march=native"], ["-Os", "-funroll-loops"]):
        assert _object_bits(["cc"], base + extra, tmp_path) == reference, f"bits differ with {extra}"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc is not installed (Debian package gcc-arm-none-eabi)")
def test_cortex_m4f_object_calls_no_double_routine(tmp_path: Path) -> None:
    source = tmp_path / "m4.c"
    source.write_text(f'#include "{check.HEADER}"\n' + "".join(
        f"float use_{name}(float x) {{ return {name}(x); }}\n" for name in check.UNARY)
        + "float use_sg_powf(float x, float y) { return sg_powf(x, y); }\n")
    obj = tmp_path / "m4.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
                    *check.STRICT_FLAGS, "-c", str(source), "-o", str(obj)], check=True)
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], check=True, capture_output=True,
                               text=True).stdout.split()
    doubles = [s for s in undefined if s.startswith("__aeabi_d") or s in
               {"exp", "log", "log1p", "tanh", "erf", "pow", "sqrt", "expm1", "fabs"}]
    assert not doubles, f"the M4F object calls double routines: {doubles}"
    assert not [s for s in undefined if not s.startswith("__")], f"libm or libc calls: {undefined}"

"""``export --target c``: a self-contained package whose self-test proves the board computes what the host did.

The self-test must pass for a float32 and a float64 spec with make (and CMake when installed),
and must fail, naming the first difference, when the kernel or its golden file is changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import EXAMPLES, MAZUR
from symgrad import compiler
from symgrad.cli import main
from symgrad.training import save_parameters

pytestmark = [
    pytest.mark.skipif(compiler.unavailable_reason() is not None, reason="no C toolchain"),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]

DIGITS = EXAMPLES / "digits.json"


def _export(capsys, spec: Path | str, out: Path, *extra: str) -> tuple[int, str, str]:
    status = main(["export", str(spec), "--target", "c", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _make_test(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(folder), "test"], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def digits_package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "digits_c"
    assert main(["export", str(DIGITS), "--target", "c", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def mazur_package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "mazur_c"
    assert main(["export", str(MAZUR), "--target", "c", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("package", ["digits_package", "mazur_package"], ids=["float32", "float64"])
def test_make_test_builds_and_passes_the_self_test(request, package):
    folder = request.getfixturevalue(package)
    for name in ("Makefile", "CMakeLists.txt", "example.c", "selftest.c", "selftest_expected.h"):
        assert (folder / name).is_file()
    result = _make_test(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok"), result.stdout
    assert "-ffp-contract=off" in (folder / "Makefile").read_text()
    assert "-ffp-contract=off" in (folder / "CMakeLists.txt").read_text()
    strict = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion"]
    for source in ("selftest.c", "example.c", f"{folder.name.split('_')[0]}_init.c"):
        built = subprocess.run([*compiler.compiler(), *strict, "-c", str(folder / source), "-o", "/dev/null"],
                               capture_output=True, text=True)
        assert built.returncode == 0, f"{source}: {built.stderr}"


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ctest") is None, reason="cmake is not installed")
def test_cmake_builds_and_ctest_passes(digits_package, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(digits_package, source)
    build = tmp_path / "build"
    for argv in (["cmake", "-S", str(source), "-B", str(build)], ["cmake", "--build", str(build)],
                 ["ctest", "--test-dir", str(build), "--output-on-failure"]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}"
    assert "100% tests passed" in result.stdout


def test_the_example_trains_and_predicts(mazur_package):
    built = subprocess.run(["make", "-s", "-C", str(mazur_package), "example"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    result = subprocess.run([str(mazur_package / "example")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    before = float(re.search(r"loss before training (\S+)", result.stdout).group(1))
    last = float(re.search(r"epoch 200 (\S+)", result.stdout).group(1))
    assert before == pytest.approx(0.298371108760003, rel=1e-5)  # DESIGN.md section 6
    assert last < before / 2
    assert "first row: predicted" in result.stdout


@pytest.mark.parametrize("package", ["digits_package", "mazur_package"], ids=["float32", "float64"])
def test_a_mutated_kernel_fails_the_self_test_naming_the_first_difference(request, package, tmp_path):
    folder = tmp_path / "mutated"
    shutil.copytree(request.getfixturevalue(package), folder)
    kernel = next(p for p in folder.glob("*.c") if p.name in ("digits.c", "mazur.c"))
    text = kernel.read_text()
    # every update of a parameter (the scalar form updates its locals p_*, the vector form theta[k])
    mutated = text.replace(" -= ", " -= (real)1.0001 * ")
    assert mutated != text
    kernel.write_text(mutated)
    result = _make_test(folder)
    assert result.returncode != 0
    assert "FAIL: parameter " in result.stdout and "differs" in result.stdout


def _with_a_mutated_golden(package: Path, folder: Path) -> Path:
    """A copy of ``package`` whose golden file has the last bit of the first parameter flipped."""
    shutil.copytree(package, folder)
    golden = folder / "selftest_expected.h"
    text = golden.read_text()
    first = re.search(r"EXPECTED_THETA\[[^]]*\] = \{\s*0x([0-9a-f]+)UL", text)
    bits = int(first.group(1), 16) ^ 1
    golden.write_text(text[:first.start(1)] + f"{bits:0{len(first.group(1))}x}" + text[first.end(1):])
    return folder


@pytest.mark.parametrize("package, first_name", [("digits_package", "W1_0_0"), ("mazur_package", "w1")],
                         ids=["float32", "float64"])
def test_a_mutated_golden_file_fails_the_self_test(request, package, first_name, tmp_path):
    folder = _with_a_mutated_golden(request.getfixturevalue(package), tmp_path / "mutated")
    result = _make_test(folder)
    assert result.returncode != 0
    assert f"FAIL: parameter {first_name} (index 0)" in result.stdout


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-nm") is None,
                    reason="arm-none-eabi-gcc is not installed (Debian package gcc-arm-none-eabi)")
def test_make_objects_cross_compiles_for_a_cortex_m4f_without_double_routines(digits_package, tmp_path):
    folder = tmp_path / "m4"
    shutil.copytree(digits_package, folder)
    flags = "-O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
    result = subprocess.run(["make", "-s", "-C", str(folder), "CC=arm-none-eabi-gcc", f"CFLAGS={flags}", "objects"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for obj in ("digits.o", "digits_init.o"):
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(folder / obj)], capture_output=True, text=True,
                                   check=True).stdout.split()
        assert {word for word in undefined if word != "U"} <= {"memset", "memcpy", "sqrtf", "fabsf"}, undefined


def _m4f_tools_missing() -> str | None:
    if shutil.which("arm-none-eabi-gcc") is None:
        return "arm-none-eabi-gcc is not installed (Debian package gcc-arm-none-eabi)"
    found = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=rdimon.specs"], capture_output=True, text=True)
    if not Path(found.stdout.strip()).is_file():
        return "arm-none-eabi-gcc has no newlib (rdimon.specs; Debian package libnewlib-arm-none-eabi)"
    if shutil.which("qemu-system-arm") is None:
        return "qemu-system-arm is not installed (Debian package qemu-system-arm)"
    return None


M4F_MISSING = _m4f_tools_missing()  # asked once: it starts the cross-compiler


def _make_test_m4f(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(folder), "test-m4f"], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def adam_scheduled_package(tmp_path_factory) -> Path:
    """float32 Adam (sg_powf for beta**step) with a cosine schedule: the optimizer the board finds hardest."""
    spec = json.loads(DIGITS.read_text())
    spec["name"] = "digits_adam"
    spec["optimizer"] = {"name": "adam", "learning_rate": 0.01, "schedule": {"name": "cosine", "T_max": 8}}
    folder = tmp_path_factory.mktemp("export")
    (folder / "spec.json").write_text(json.dumps(spec))
    assert main(["export", str(folder / "spec.json"), "--target", "c", "--out", str(folder / "adam_c")]) == 0
    return folder / "adam_c"


@pytest.mark.skipif(M4F_MISSING is not None, reason=str(M4F_MISSING))
@pytest.mark.parametrize("package", ["digits_package", "mazur_package", "adam_scheduled_package"],
                         ids=["float32", "float64", "float32-adam"])
def test_the_self_test_passes_on_an_emulated_cortex_m4f(request, package, tmp_path):
    """The same bits as the host on a Cortex-M4F's single-precision FPU (and its software double)."""
    folder = tmp_path / "m4f"
    shutil.copytree(request.getfixturevalue(package), folder)
    result = _make_test_m4f(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ") and "bit-identical to the host" in result.stdout, result.stdout
    header = subprocess.run(["arm-none-eabi-readelf", "-h", "-A", str(folder / "selftest-m4f")], capture_output=True,
                            text=True).stdout
    assert "ARM" in header and "Tag_FP_arch: VFPv4-D16" in header and "Tag_ABI_VFP_args: VFP registers" in header


@pytest.mark.skipif(M4F_MISSING is not None, reason=str(M4F_MISSING))
def test_a_mutated_golden_file_fails_on_the_emulated_board_too(digits_package, tmp_path):
    result = _make_test_m4f(_with_a_mutated_golden(digits_package, tmp_path / "mutated"))
    assert result.returncode != 0
    assert "FAIL: parameter W1_0_0 (index 0)" in result.stdout, result.stdout


def test_export_prints_the_budget_and_the_header_repeats_it(capsys, tmp_path):
    status, out, _ = _export(capsys, DIGITS, tmp_path / "p")
    assert status == 0
    train = re.search(r"to train: theta \+ state \+ scratch\s+([\d,]+) bytes", out)
    header = (tmp_path / "p" / "digits.h").read_text()
    assert train and re.search(rf"to train: theta \+ state \+ scratch\s+{train.group(1).replace(',', '')} bytes",
                               header)
    parameters = int(re.search(r"parameters \(theta\)\s+([\d,]+) bytes", out).group(1).replace(",", ""))
    assert parameters == 2410 * 4  # 64-32-10: 64*32 + 32 + 32*10 + 10 float32 values
    for macro in ("DIGITS_N_PARAMETERS 2410L", "DIGITS_N_INPUTS 64", "DIGITS_N_OUTPUTS 10", "DIGITS_STATE_SIZE 2411L",
                  "DIGITS_SCRATCH_SIZE(batch)", "DIGITS_PREDICT_SIZE", "DIGITS_LEARNING_RATE"):
        assert f"#define {macro}" in header
    assert "note:" not in out  # float32: no note


def test_float64_export_notes_that_the_budget_doubles(capsys, tmp_path):
    status, out, _ = _export(capsys, MAZUR, tmp_path / "p")
    assert status == 0
    assert "note: this spec is float64, so every number above is twice its float32 size" in out


def test_the_package_holds_the_very_kernel_the_extension_was_built_from(digits_package, tmp_path):
    built = symgrad.build(DIGITS, out=tmp_path, backend="c").package_dir
    for name in ("digits.c", "digits.h"):
        assert (digits_package / name).read_bytes() == (built / name).read_bytes()


def test_init_puts_trained_parameters_in_as_const_arrays(capsys, tmp_path):
    module = symgrad.load(MAZUR, backend="c")
    theta = module.initial_parameters()
    X, T = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    module.train(theta, X, T, 50)
    saved = tmp_path / "theta.npz"
    save_parameters(saved, module, theta, module.initial_state(), epochs=50)
    status, _, err = _export(capsys, MAZUR, tmp_path / "p", "--init", str(saved))
    assert status == 0, err
    source = (tmp_path / "p" / "mazur_init.c").read_text()
    assert "const mazur_real mazur_init_theta[MAZUR_N_PARAMETERS]" in source
    assert float(theta[5]).hex() in source and float(module.initial_parameters()[5]).hex() not in source
    result = _make_test(tmp_path / "p")
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stdout


def test_init_for_another_network_is_a_one_line_error(capsys, tmp_path):
    digits = symgrad.load(DIGITS, backend="numpy")
    saved = tmp_path / "digits.npz"
    save_parameters(saved, digits, digits.initial_parameters(), digits.initial_state())
    status, out, err = _export(capsys, MAZUR, tmp_path / "p", "--init", str(saved))
    assert status == 2
    assert err.count("\n") == 1 and "digits.npz" in err and "parameters" in err
    assert not (tmp_path / "p").exists()


def test_a_folder_with_other_files_is_refused_and_left_alone(capsys, tmp_path):
    folder = tmp_path / "firmware"
    folder.mkdir()
    (folder / "main.c").write_text("int main(void) { return 0; }\n")
    (folder / "Makefile").write_text("# mine\n")
    status, _, err = _export(capsys, MAZUR, folder)
    assert status == 2
    assert err.count("\n") == 1 and "did not write" in err and "Makefile" in err
    assert (folder / "Makefile").read_text() == "# mine\n" and sorted(p.name for p in folder.iterdir()) == [
        "Makefile", "main.c"]


def test_exporting_again_into_its_own_folder_replaces_only_its_files(capsys, tmp_path):
    folder = tmp_path / "p"
    assert _export(capsys, MAZUR, folder)[0] == 0
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert _export(capsys, MAZUR, folder)[0] == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first  # deterministic, nothing left over
    (folder / "notes.txt").write_text("mine\n")
    assert _export(capsys, MAZUR, folder)[0] == 2
    assert (folder / "notes.txt").read_text() == "mine\n"


def test_unknown_target_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["export", str(MAZUR), "--target", "fpga", "--out", str(tmp_path / "p")])
    assert stop.value.code == 2
    assert "fpga" in capsys.readouterr().err


def test_the_example_follows_the_specs_schedule(tmp_path, capsys):
    """A scheduled spec's example.c trains at each epoch's rate: its last loss is the module's train's, not the
    base rate's (which ends elsewhere)."""
    document = json.loads(MAZUR.read_text())
    document["name"] = "mazur_step"
    document["optimizer"]["schedule"] = {"name": "step", "step_size": 50, "gamma": 0.5}
    spec_path = tmp_path / "mazur_step.json"
    spec_path.write_text(json.dumps(document))
    out = tmp_path / "mazur_step_c"
    assert _export(capsys, spec_path, out)[0] == 0
    assert "static const real learning_rates[EPOCHS]" in (out / "example.c").read_text()
    built = subprocess.run(["make", "-s", "-C", str(out), "example"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    result = subprocess.run([str(out / "example")], capture_output=True, text=True, timeout=60)
    last = float(re.search(r"epoch 200 (\S+)", result.stdout).group(1))
    scheduled, constant = symgrad.load(document, backend="numpy"), symgrad.load(MAZUR, backend="numpy")
    X, T = np.array([document["example"]["inputs"]]), np.array([document["example"]["targets"]])
    expected = scheduled.train(scheduled.initial_parameters(), X, T, 200, state=scheduled.initial_state())[-1]
    base_rate = constant.train(constant.initial_parameters(), X, T, 200)[-1]
    assert last == pytest.approx(expected, rel=1e-5)
    assert abs(base_rate - expected) > 1e-3 * expected

"""The command line: outputs, and one-line errors with exit status 2 for every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import MAZUR, ROOT
from symgrad.cli import main
from symgrad.schema import SCHEMA


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "symgrad", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("build", "formulas", "train", "schema"):
        assert command in result.stdout


def test_build_then_cache_hit(tmp_path, capsys):
    assert main(["build", str(MAZUR), "--out", str(tmp_path)]) == 0
    assert f"built {tmp_path / 'mazur'}" in capsys.readouterr().out
    assert main(["build", str(MAZUR), "--out", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_bad_spec_is_one_line_and_status_2(tmp_path):
    spec = json.loads(MAZUR.read_text())
    spec["layers"][0]["activation"] = "sigmod"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    result = run("build", path, "--out", tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith('symgrad: error: $.layers[0].activation: "sigmod" is not a known activation')


@pytest.mark.parametrize("args", [
    ["build", "missing.json"],
    ["build", str(MAZUR), "--backend", "fortran"],
    ["formulas", str(MAZUR), "--param", "w9"],
    ["formulas", str(MAZUR), "--at", "nowhere.json"],
    ["formulas", str(MAZUR), "--digits", "0"],
    ["explode"],
    ["build"],
])
def test_user_errors_exit_2_without_traceback(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        code = main(args + ["--out", str(tmp_path / "x")] if args[0] == "build" and len(args) > 1 else args)
        raise SystemExit(code)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("symgrad: error: ") and "Traceback" not in err and err.count("\n") == 1


def test_schema_prints_the_validators_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(SCHEMA))


def test_formulas_at_initial_shows_the_walkthrough_numbers(capsys):
    assert main(["formulas", str(MAZUR), "--at", "initial", "--param", "w5"]) == 0
    out = capsys.readouterr().out
    assert "dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5" in out
    assert "= 0.741365 * 0.186816 * 0.59327" in out
    assert "= 0.082167" in out


def test_formulas_at_a_values_file(tmp_path, capsys):
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"parameters": {"w5": 0.0}, "inputs": [0.05, 0.1], "targets": [0.01, 0.99]}))
    assert main(["formulas", str(MAZUR), "--at", str(values), "--param", "w6", "--digits", "4"]) == 0
    assert "dE/dw6" in capsys.readouterr().out


def test_formulas_latex_and_expanded(capsys):
    assert main(["formulas", str(MAZUR), "--latex", "--expanded", "--param", "w1"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\partial E}{\partial \mathrm{w1}}" in out and r"\sigma\left(" in out


def test_train_on_the_spec_example(tmp_path, capsys):
    assert main(["train", str(MAZUR), "--epochs", "10000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "error before: 0.298371" in out
    assert "error after:  3.51019e-05" in out
    assert f"generated code: {tmp_path / 'mazur'}" in out


def test_train_without_data_or_example_is_a_user_error(tmp_path, capsys):
    spec = json.loads(MAZUR.read_text())
    del spec["example"]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert main(["train", str(path), "--out", str(tmp_path)]) == 2
    assert "no --data given" in capsys.readouterr().err


def test_help_states_every_backend_and_option(capsys):
    for command, words in (("build", ["numpy, c (the C extension", "or all"]),
                           ("train", ["auto (default", "numpy or c", "significant digits of the errors"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for word in words:
            assert word in text, (command, word)


@pytest.mark.parametrize("args, words", [
    (["train", str(MAZUR), "--backend", "all"], "invalid choice: 'all' (choose from 'auto', 'numpy', 'c')"),
    (["build", str(MAZUR), "--backend", "C"], "invalid choice: 'C' (choose from 'numpy', 'c', 'all')"),
])
def test_backend_choices_are_named(args, words, capsys):
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_misspelled_key_is_named_with_did_you_mean(tmp_path, capsys):
    spec = json.loads(MAZUR.read_text())
    spec["layers"][0]["activaton"] = spec["layers"][0].pop("activation")
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(spec))
    assert main(["formulas", str(path)]) == 2
    assert 'unknown key "activaton" (did you mean "activation"?)' in capsys.readouterr().err


@pytest.mark.parametrize("command", [["formulas", str(MAZUR)], ["explain", str(MAZUR), "--steps", "1"], ["schema"]])
def test_text_outputs_are_checked_before_the_work(command, tmp_path, capsys):
    assert main([*command, "--out", str(tmp_path / "missing" / "out.txt")]) == 2
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and captured.out == ""


def test_a_spec_with_a_byte_order_mark_is_read(tmp_path, capsys):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + MAZUR.read_bytes())
    assert main(["formulas", str(path), "--param", "w5"]) == 0
    assert "dE/dw5" in capsys.readouterr().out

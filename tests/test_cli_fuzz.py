"""A fuzzer over every command's options and files: each run ends with status 0 or 2, never a traceback.

Cases run in-process through ``symgrad.cli.main`` with standard output and error captured (fast
enough for the suite); the files are the hostile and ordinary ones of tests/cli_fuzz_files.py.
Two tests: a sweep that tries every hostile file and value alone (everything else ordinary), and
a hypothesis fuzzer that mixes them.  A failing case is printed as its command line.
SYMGRAD_FUZZ_EXAMPLES sets the fuzzer's number of cases (default 150).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_fuzz_files import write_files
from symgrad.cli import main

EXAMPLES_PER_RUN = int(os.environ.get("SYMGRAD_FUZZ_EXAMPLES", "150"))

# Values by kind: the ordinary ones, and (kind + "!") hostile ones.  File kinds come from write_files.
VALUES = {
    "count": ["1", "2", "3"], "count!": ["-1", "0", str(10**30), "-" + str(10**30), "x", "1.5", "", "nan"],
    "digits": ["1", "6", "17"], "digits!": ["-1", "0", "18", str(10**30), "x"],
    "rate": ["0.1", "0.5"], "rate!": ["-1", "0", "1e308", "1e999", "-1e999", "nan", "inf", "x", ""],
    "split": ["0", "0.25", "0.5"], "split!": ["-1", "1", "0.99", "0.001", "nan", "1e999"],
    "param": ["w5", "w1", "b1"], "param!": ["W5", "nope", "", "x" * 500, "w5\n", "$.layers"],
    "steps": ["0", "1", "3"], "steps!": ["-3", "x", str(10**30)],
    "epochs": ["1", "2", "3"], "epochs!": ["0", "-1", "x", "1e3"],
    "build-backend": ["numpy", "c", "all"], "build-backend!": ["x", "auto", ""],
    "train-backend": ["auto", "numpy", "c"], "train-backend!": ["all", "x"],
    "form": ["auto", "scalar", "vector"], "form!": ["x"],
    "format": ["txt", "md", "html"], "format!": ["pdf", ""],
}

# Each command: its positional spec, then (option, kind); kind None is a flag.  Options in ALWAYS are
# given in every case (their defaults, 10,000 steps or 100 epochs, would make cases slow).
COMMANDS: dict[str, list[tuple[str, str | None]]] = {
    "build": [("--out", "out_dir"), ("--backend", "build-backend"), ("--form", "form"),
              ("--max-parameters", "count")],
    "formulas": [("--param", "param"), ("--expanded", None), ("--latex", None), ("--at", "values"),
                 ("--digits", "digits"), ("--out", "output")],
    "explain": [("--format", "format"), ("--out", "output"), ("--at", "values"), ("--steps", "steps"),
                ("--digits", "digits"), ("--param", "param")],
    "train": [("--data", "data"), ("--epochs", "epochs"), ("--batch-size", "count"), ("--lr", "rate"),
              ("--backend", "train-backend"), ("--seed", "count"), ("--validation-split", "split"),
              ("--init", "init"), ("--save", "output"), ("--plot", "output"), ("--quiet", None),
              ("--max-parameters", "count"), ("--out", "out_dir"), ("--digits", "digits")],
    "schema": [("--out", "output")],
}
ALWAYS = {"explain": ["--steps", "3"], "train": ["--epochs", "2"]}
TAKES_SPEC = {"build", "formulas", "explain", "train"}

# Failures in other modules' code, each with where it is; a known failure that passes now is
# reported as a warning, so whoever fixes one deletes its line here.
KNOWN_FAILURES = {
    ("formulas", "exp1000.json", "--at"): "formulas.evaluate: sp.Float(0.3775*exp(1000)) raises TypeError (the "
                                          "learn branch refuses the constant, 11146b0)",
    ("explain", "exp1000.json", ""): "the same evaluation, through explain",
    ("formulas", "exp2.json", "--at"): "formulas.evaluate: sp.Float(0.3775*exp(2)) raises TypeError (fixed on the "
                                       "learn branch)",
    ("explain", "exp2.json", ""): "the same, through explain",
    ("train", "float32_big.json", ""): "an initial value beyond float32 becomes an inf literal: NameError 'inf' at "
                                       "import (fixed on the codegen branch, 5e7a78e: refused at its JSON path)",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return write_files(tmp_path_factory.mktemp("cli-fuzz"))


def _table(files: dict[str, list[str]]) -> dict[str, list[str]]:
    return {**VALUES, **files}


def _base(command: str, spec: str, files: dict[str, list[str]]) -> list[str]:
    argv = [command] + ([spec] if command in TAKES_SPEC else []) + ALWAYS.get(command, [])
    return argv + (["--out", files["out_dir"][0]] if command in ("build", "train") else [])


def sweep_cases(files: dict[str, list[str]]) -> list[list[str]]:
    """Every hostile spec with each command (plain and with --at initial), every hostile value alone."""
    table, good_spec = _table(files), files["spec"][0]
    cases = []
    for command in COMMANDS:
        for spec in (files["spec!"] if command in TAKES_SPEC else []):
            cases.append(_base(command, spec, files))
            if command in ("formulas", "explain"):
                cases.append(_base(command, spec, files) + ["--at", "initial"])
        for option, kind in COMMANDS[command]:
            for value in ([] if kind is None else table[kind + "!"]):
                cases.append(_base(command, good_spec, files) + [option, value])
    return cases


def run_case(argv: list[str]) -> tuple[int, str]:
    """(exit status, standard error) of ``python -m symgrad ARGV``, in this process."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's --help and its errors
            status = exit_.code if isinstance(exit_.code, int) else 2
    return status, stderr.getvalue()


def problem(argv: list[str]) -> str | None:
    """What is wrong with how ``python -m symgrad ARGV`` ends, or None when it ends cleanly."""
    shown = "python -m symgrad " + " ".join(argv)
    try:
        status, err = run_case(argv)
    except Exception as error:  # noqa: BLE001 -- an escaping exception is the traceback a user would see
        return f"{shown}\n  raised {type(error).__name__}: {str(error)[:200]}"
    if status not in (0, 2):
        return f"{shown}\n  exit {status}: {err[-300:]}"
    if status == 2:
        errors = [line for line in err.splitlines() if line.startswith("symgrad: error: ")]
        if len(errors) != 1 or not err.endswith("\n") or "Traceback" in err:
            return f"{shown}\n  not one error line: {err[-300:]!r}"
        if len(errors[0]) > 2000:
            return f"{shown}\n  an error of {len(errors[0])} characters"
    return None


def _known(argv: list[str]) -> str | None:
    names = {Path(a).name for a in argv}
    for (command, name, option), reason in KNOWN_FAILURES.items():
        if argv[0] == command and name in names and (option in argv or not option):
            return reason
    return None


def test_every_hostile_file_and_value_alone_ends_cleanly(files):
    cases = sweep_cases(files)
    assert len(cases) > 150
    failures = {" ".join(argv): message for argv in cases if (message := problem(argv)) is not None}
    unexpected = {case: message for case, message in failures.items() if _known(case.split()) is None}
    assert not unexpected, "\n".join(unexpected.values())
    fixed = [reason for reason in KNOWN_FAILURES.values()
             if not any(_known(case.split()) == reason for case in failures)]
    if fixed:
        warnings.warn(f"known CLI failures that pass now; delete them from KNOWN_FAILURES: {fixed}", stacklevel=1)


def _commands(files: dict[str, list[str]]) -> st.SearchStrategy[list[str]]:
    table = _table(files)

    def value(kind: str, odds: int) -> st.SearchStrategy[str]:
        good, bad = st.sampled_from(table[kind]), st.sampled_from(table[kind + "!"])
        return st.integers(1, odds).flatmap(lambda roll: bad if roll == 1 else good)  # one hostile in `odds`

    def option(name: str, kind: str | None) -> st.SearchStrategy[list[str]]:
        given_ = st.just([name]) if kind is None else value(kind, 8).map(lambda v: [name, v])
        return st.one_of(st.just([]), st.just([]), given_)

    def command(name: str) -> st.SearchStrategy[list[str]]:
        spec = value("spec", 3)
        parts = [option(option_name, kind) for option_name, kind in COMMANDS[name]]
        return st.tuples(spec, *parts).map(lambda drawn: _base(name, drawn[0], files) + sum(drawn[1:], []))

    return st.sampled_from(sorted(COMMANDS)).flatmap(command)


def test_fuzzed_command_lines_end_cleanly(files):
    @settings(max_examples=EXAMPLES_PER_RUN, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_commands(files))
    def case(argv: list[str]) -> None:
        message = problem(argv)
        assert message is None or _known(argv) is not None, message

    case()

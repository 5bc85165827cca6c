"""Hostile and broken specs: a SpecError with a JSON path, or a working build; nothing else.

The corpus (tests/data/hostile_specs.jsonl, written by tools/make_hostile_corpus.py) runs in a
subprocess, so a crash fails the test instead of killing it; each entry has 10 s.  A hypothesis
fuzzer mutates a valid spec and checks the same promise in-process.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symgrad
from helpers import ROOT, assert_gradient_matches, subprocess_env

CORPUS = ROOT / "tests" / "data" / "hostile_specs.jsonl"


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hostile")
    (workdir / "specs").mkdir()
    cwd = workdir / "cwd"
    cwd.mkdir()
    outside_before = set(os.listdir(workdir))
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "hostile_runner.py"), str(CORPUS), str(workdir)],
                            cwd=cwd, capture_output=True, text=True, timeout=600, env=subprocess_env())
    assert result.returncode == 0, f"the runner died (status {result.returncode}):\n{result.stderr[-3000:]}"
    results = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    return {"results": results, "workdir": workdir, "cwd": cwd, "outside_before": outside_before}


def test_corpus_is_large_and_varied():
    entries = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    assert len(entries) >= 200
    assert sum(e["expect"] == "accept" for e in entries) >= 50


def _entries():
    return [json.loads(line) for line in CORPUS.read_text().splitlines()]


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: f"{e['id']}-{e['why'][:40]}")
def test_each_hostile_spec_has_the_promised_outcome(corpus_results, entry):
    result = corpus_results["results"].get(entry["id"])
    assert result is not None, "the runner never reported this entry"
    assert result["outcome"] == entry["expect"], f"{entry['why']}: {result['outcome']}: {result['message']}"
    if result["outcome"] == "error":
        message = result["message"]
        assert message.startswith("$") or message.startswith("--"), message
        assert "; " in message, f"no hint on how to fix it: {message}"
        assert "\n" not in message and "Traceback" not in message
    assert result["seconds"] < 10


def test_nothing_is_written_outside_the_output_directory(corpus_results):
    workdir = corpus_results["workdir"]
    assert list(corpus_results["cwd"].iterdir()) == [], "something wrote into the working directory"
    assert set(os.listdir(workdir)) <= corpus_results["outside_before"] | {"out"}
    for path in (workdir / "out").iterdir():
        assert path.is_dir() and (path / "symgrad-build.json").is_file(), path


def test_names_that_are_keywords_everywhere_still_differentiate_correctly():
    """Every unit and parameter named after a C or Python keyword or a generated-code identifier."""
    words = iter(["int", "return", "class", "for", "static", "double", "float", "main", "theta", "grad", "X",
                  "T", "np", "self", "None", "real", "scale", "total", "E", "n", "row", "scratch", "exp",
                  "state", "NULL", "sizeof", "struct", "goto", "volatile", "restrict", "inline", "printf",
                  "x_i1", "p_w1", "delta_h1", "net_h1", "t_o1", "lambda", "import", "while", "if", "else"])
    spec = {
        "name": "keywords",
        "inputs": [next(words), next(words)],
        "layers": [
            {"units": [next(words), next(words), next(words)], "activation": "tanh",
             "weights": [[next(words), next(words)] for _ in range(3)],
             "bias": {"mode": "per_unit", "names": [next(words), next(words), next(words)]}},
            {"units": [next(words), next(words)], "activation": "sigmoid",
             "weights": [[next(words), next(words), next(words)] for _ in range(2)],
             "bias": {"mode": "shared", "name": next(words)}},
        ],
        "loss": "binary_cross_entropy",
    }
    backends = ["numpy"] + (["c"] if _c_available() else [])
    for backend in backends:
        for form in ("scalar", "vector"):
            assert_gradient_matches(spec, symgrad.load(spec, backend=backend, form=form), rows=4)


def _c_available() -> bool:
    from symgrad.compiler import unavailable_reason

    return unavailable_reason() is None


VALID = json.loads((ROOT / "examples" / "mazur.json").read_text())

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, path + (index,))


@st.composite
def mutated_specs(draw):
    document = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))[1:]
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_json)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(_json)
        else:
            parent.append(draw(_json))
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_fuzzed_specs_give_a_spec_error_or_a_working_module(tmp_path_factory, document):
    try:
        spec = symgrad.parse_spec(document)
    except symgrad.SpecError as error:
        assert str(error).startswith("$") and "\n" not in str(error)
        return
    module = symgrad.load(spec, backend="numpy")
    theta = module.initial_parameters()
    X = np.zeros((2, module.N_INPUTS), dtype=module.DTYPE)
    T = np.zeros((2, module.N_OUTPUTS), dtype=module.DTYPE)
    loss, grad = module.gradient(theta, X, T)
    assert grad.shape == theta.shape


@pytest.mark.parametrize("start, words", [
    ("misspelled", "(did you mean"),
    ("1e999", "beyond the range of a float"),
    ("-1e999", "beyond the range of a float"),
    ("1e400", "beyond the range of a float"),
    ("an integer beyond a float", "is not a finite number"),
])
def test_errors_of_a_class_say_what_is_wrong(corpus_results, start, words):
    chosen = [e for e in _entries() if e["why"].startswith(start)]
    assert chosen, start
    for entry in chosen:
        message = corpus_results["results"][entry["id"]]["message"]
        assert words in message, f"{entry['why']}: {message}"

"""`check`: hand derivations judged right or wrong, for several networks.

The right and wrong derivations below are written by hand from the chain rule (as a learner
would), and the values from the seed walk-through; none comes from symgrad's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import MAZUR, ROOT
from symgrad import SpecError
from symgrad.check import check_formula, check_value
from symgrad.pipeline import analyze


def _gradients(spec):
    return analyze(spec).gradients


SOFTMAX = {
    "name": "softmax_ce", "inputs": ["x1", "x2"],
    "layers": [{"units": ["h1", "h2"], "activation": "sigmoid", "weights": [["a", "b"], ["c", "d"]],
                "bias": {"mode": "per_unit", "names": ["p", "q"]}},
               {"units": ["o1", "o2", "o3"], "activation": "softmax",
                "weights": [["v1", "v2"], ["v3", "v4"], ["v5", "v6"]], "bias": "none"}],
    "loss": "cross_entropy",
}
TANH_MSE = {
    "name": "tanh_mse", "inputs": ["x1", "x2"],
    "layers": [{"units": ["h1", "h2"], "activation": "tanh", "weights": [["a", "b"], ["c", "d"]], "bias": "none"},
               {"units": ["o1", "o2"], "activation": "linear", "weights": [["e", "f"], ["g", "k"]],
                "bias": {"mode": "shared", "name": "s"}, "l2": 0.01}],
    "loss": "mse",
}
CUSTOM = {
    "name": "custom_act", "inputs": ["x1"],
    "layers": [{"units": ["h1"], "activation": {"expr": "x/(1+abs(x))"}, "weights": [["a"]], "bias": "none"},
               {"units": ["o1"], "activation": "linear", "weights": [["e"]], "bias": "none"}],
    "loss": {"expr": "(o-t)**4/4"},
}

RELU = {
    "name": "relu_net", "inputs": ["x1", "x2"],
    "layers": [{"units": ["h1", "h2"], "activation": "relu", "weights": [["a", "b"], ["c", "d"]]},
               {"units": ["o1"], "activation": {"name": "leaky_relu", "slope": 0.1}, "weights": [["e", "f"]]}],
    "loss": "half_sse",
}

RIGHT = [
    (MAZUR, "w5", "(out_o1 - t_o1)*out_o1*(1 - out_o1)*out_h1"),
    (MAZUR, "w5", "delta_o1*out_h1"),
    (MAZUR, "w5", "-(t_o1 - out_o1) * out_o1 * (1 - out_o1) * out_h1"),
    (MAZUR, "w5", "out_h1*(out_o1^2 - out_o1^3 - t_o1*out_o1 + t_o1*out_o1^2)"),
    (MAZUR, "w5", "(sigmoid(net_o1) - t_o1)*sigmoid(net_o1)*(1 - sigmoid(net_o1))*sigmoid(net_h1)"),
    (MAZUR, "w5", "(out_o1 - t_o1)*out_o1*(1 - out_o1)/(1 + exp(-(w1*i1 + w2*i2 + b1)))"),
    (MAZUR, "w1", "(delta_o1*w5 + delta_o2*w7)*out_h1*(1 - out_h1)*i1"),
    (MAZUR, "w1", "((out_o1-t_o1)*out_o1*(1-out_o1)*w5 + (out_o2-t_o2)*out_o2*(1-out_o2)*w7)*out_h1*(1-out_h1)*i1"),
    (MAZUR, "w1", "delta_h1*i1"),
    (MAZUR, "b1", "delta_h1 + delta_h2"),
    (MAZUR, "b2", "delta_o1 + delta_o2"),
    (SOFTMAX, "v1", "(out_o1 - t_o1)*out_h1"),
    (SOFTMAX, "v4", "(out_o2 - t_o2)*out_h2"),
    (SOFTMAX, "a", "((out_o1 - t_o1)*v1 + (out_o2 - t_o2)*v3 + (out_o3 - t_o3)*v5)*out_h1*(1 - out_h1)*x1"),
    (SOFTMAX, "q", "(delta_o1*v2 + delta_o2*v4 + delta_o3*v6)*out_h2*(1 - out_h2)"),
    (TANH_MSE, "e", "(out_o1 - t_o1)*out_h1 + 2*0.01*e"),
    (TANH_MSE, "e", "2/2*(out_o1 - t_o1)*out_h1 + 0.02*e"),
    (TANH_MSE, "s", "out_o1 - t_o1 + out_o2 - t_o2"),
    (TANH_MSE, "a", "((out_o1 - t_o1)*e + (out_o2 - t_o2)*g)*(1 - out_h1**2)*x1"),
    (TANH_MSE, "a", "((out_o1 - t_o1)*e + (out_o2 - t_o2)*g)*(1 - tanh(net_h1)^2)*x1"),
    (CUSTOM, "e", "(out_o1 - t_o1)^3*out_h1"),
    (CUSTOM, "a", "(out_o1 - t_o1)^3*e/(1 + abs(net_h1))^2*x1"),
    (RELU, "e", "(out_o1 - t_o1)*leaky_step(net_o1, 0.1)*out_h1"),
    (RELU, "a", "delta_o1*e*step(net_h1)*x1"),
    (RELU, "a", "(out_o1 - t_o1)*leaky_step(net_o1, 0.1)*e*step(net_h1)*x1"),
]

WRONG = [
    (MAZUR, "w5", "(out_o1 - t_o1)*out_o1*out_h1", "dout_o1/dnet_o1"),
    (MAZUR, "w5", "(t_o1 - out_o1)*out_o1*(1 - out_o1)*out_h1", "dE/dout_o1"),
    (MAZUR, "w5", "2*(out_o1 - t_o1)*out_o1*(1 - out_o1)*out_h1", "dE/dout_o1"),
    (MAZUR, "w5", "(out_o1 - t_o1)*out_o1*(1 - out_o1)*out_h2", "dnet_o1/dw5"),
    (MAZUR, "w5", "(out_o1 - t_o2)*out_o1*(1 - out_o1)*out_h1", "dE/dout_o1"),
    (MAZUR, "w5", "delta_o1*out_h1*w5", "also multiplies by w5"),
    (MAZUR, "w1", "(delta_o1*w5 + delta_o2*w6)*out_h1*(1 - out_h1)*i1", "dE/dout_h1"),
    (MAZUR, "w1", "delta_o1*w5*out_h1*(1 - out_h1)*i1", "dE/dout_h1"),
    (MAZUR, "w1", "(delta_o1*w5 + delta_o2*w7)*out_h1*(1 - out_h1)*i2", "dnet_h1/dw1"),
    (MAZUR, "b1", "delta_h1", None),
    (SOFTMAX, "v1", "(out_o1 - t_o1)*out_o1*(1 - out_o1)*out_h1", None),
    (SOFTMAX, "v1", "-t_o1/out_o1*out_h1", None),
    (TANH_MSE, "e", "(out_o1 - t_o1)*out_h1", None),  # the l2 penalty's 2*0.01*e is missing
    (TANH_MSE, "e", "2*(out_o1 - t_o1)*out_h1 + 0.02*e", None),  # mse averages over the 2 outputs
    (TANH_MSE, "a", "((out_o1 - t_o1)*e + (out_o2 - t_o2)*g)*(1 - out_h1)*x1", None),
    (CUSTOM, "a", "(out_o1 - t_o1)^3*e/(1 + abs(net_h1))*x1", None),
    (RELU, "e", "(out_o1 - t_o1)*out_h1", "dout_o1/dnet_o1"),  # right only where net_o1 > 0
    (RELU, "a", "delta_o1*e*x1", None),  # relu's step is missing: right only where net_h1 > 0
]


@pytest.mark.parametrize("spec, parameter, formula", RIGHT)
def test_equivalent_forms_are_correct(spec, parameter, formula) -> None:
    verdict = check_formula(_gradients(spec), parameter, formula)
    assert verdict.correct, str(verdict)
    assert str(verdict).startswith("correct")


@pytest.mark.parametrize("spec, parameter, formula, factor", WRONG)
def test_wrong_derivations_are_incorrect_with_a_point_and_the_factor(spec, parameter, formula, factor) -> None:
    verdict = check_formula(_gradients(spec), parameter, formula)
    text = str(verdict)
    assert not verdict.correct, text
    assert text.startswith("incorrect")
    assert "yours = " in text and f"dE/d{parameter} = " in text
    if factor is not None:
        assert factor in text.splitlines()[3], text


@pytest.mark.parametrize("number, correct", [
    ("0.082167041", True), ("0.0821670", True), ("0.08217", True), ("0.0822", True),  # the seed: 0.082167041
    ("0.0821", False), ("0.08216", False), ("0.0823", False), ("-0.082167", False), ("0.74136507", False),
])
def test_value_within_the_rounding_of_the_digits_given(number, correct) -> None:
    verdict = check_value(_gradients(MAZUR), "w5", number)
    assert verdict.correct is correct, str(verdict)


def test_value_of_a_hidden_weight_from_the_seed() -> None:
    assert check_value(_gradients(MAZUR), "w1", "0.000438568").correct
    assert not check_value(_gradients(MAZUR), "w1", "0.000438569").correct


def test_value_is_the_mean_over_every_example(tmp_path: Path) -> None:
    spec = json.loads(MAZUR.read_text())
    spec["example"] = {"inputs": [[0.05, 0.10], [0.5, -0.2]], "targets": [[0.01, 0.99], [0.3, 0.6]]}
    gradients = _gradients(spec)
    import numpy as np

    import symgrad

    module = symgrad.load(spec, backend="numpy")
    _, grad = module.gradient(module.initial_parameters(), np.array(spec["example"]["inputs"]),
                              np.array(spec["example"]["targets"]))
    exact = grad[module.PARAMETER_NAMES.index("w5")]
    verdict = check_value(gradients, "w5", f"{exact:.8f}")
    assert verdict.correct and "mean over 2 examples" in str(verdict)
    assert not check_value(gradients, "w5", "0.082167041").correct  # the first example's value alone


@pytest.mark.parametrize("formula, message", [
    ("delta_o1*out_H1", 'did you mean "out_h1"'),
    ("delta_o1*out_h3", "unknown name"),
    ("delta_o1*__import__", "unknown name"),
    ("delta_o1*out_h1)", "unexpected"),
    ("delta_o1.real", "position"),
])
def test_bad_formulas_are_user_errors(formula, message) -> None:
    with pytest.raises(SpecError, match=message):
        check_formula(_gradients(MAZUR), "w5", formula)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symgrad", "check", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_exit_codes_and_first_lines() -> None:
    right = _cli(str(MAZUR), "--param", "w5", "delta_o1*out_h1")
    assert right.returncode == 0 and right.stdout.startswith("correct")
    wrong = _cli(str(MAZUR), "--param", "w5", "--", "-delta_o1*out_h1")
    assert wrong.returncode == 1 and wrong.stdout.startswith("incorrect")
    value = _cli(str(MAZUR), "--param", "w1", "--value", "0.000438568")
    assert value.returncode == 0 and value.stdout.startswith("correct")
    for bad in ([str(MAZUR), "--param", "W5", "delta_o1*out_h1"], [str(MAZUR), "--param", "w5", "delta_o1*out_H1"],
                [str(MAZUR), "--param", "w5"], [str(MAZUR), "--param", "w5", "--value", "abc"]):
        done = _cli(*bad)
        assert done.returncode == 2, done
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr

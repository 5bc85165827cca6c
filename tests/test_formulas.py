"""Inspecting derivatives: chain-rule factors, values at numbers, closed forms."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import sympy as sp

import symgrad
from helpers import MAZUR, make_spec
from symgrad.formulas import Point, chain_rule, evaluate, formula_texts, point_from_spec, value_of


@pytest.fixture(scope="module")
def mazur():
    return symgrad.differentiate(symgrad.build_model(symgrad.parse_spec(MAZUR)))


def test_w5_is_the_three_factor_chain(mazur):
    chain = chain_rule(mazur, "w5")
    assert [f.label for f in chain.paths[0].factors] == ["dE/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dw5"]
    assert chain.text() == ("dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5 = "
                            "(out_o1 - t_o1) * out_o1*(1 - out_o1) * out_h1")


def test_factor_values_match_the_walkthrough(mazur):
    """The seed's printed intermediate numbers (9 significant digits)."""
    values = evaluate(mazur, point_from_spec(mazur))
    w5 = [value_of(f.expr, values) for f in chain_rule(mazur, "w5").paths[0].factors]
    assert w5 == pytest.approx([0.74136507, 0.186815602, 0.593269992], abs=1e-9)
    w1_chain = chain_rule(mazur, "w1")
    w1 = [value_of(f.expr, values) for f in w1_chain.paths[0].factors]
    assert w1 == pytest.approx([0.036350306, 0.241300709, 0.05], abs=1e-9)
    paths = [value_of(a.expr * b.expr, values) for a, b in w1_chain.upstream[0].terms]
    assert paths == pytest.approx([0.055399425, -0.019049119], abs=1e-9)
    assert value_of(w1_chain.total, values) == pytest.approx(0.000438568, abs=1e-9)


def test_shared_bias_sums_over_the_units_it_feeds(mazur):
    chain = chain_rule(mazur, "b1")
    assert [p.unit for p in chain.paths] == ["h1", "h2"]


def test_chain_rule_equals_sympy_diff_of_the_closed_form():
    """Assembled chain rule == SymPy differentiating the whole expanded loss, at a random point."""
    spec = symgrad.parse_spec(make_spec([2, 3, 3], ["tanh", "softmax"], "cross_entropy", "shared"))
    gradients = symgrad.differentiate(symgrad.build_model(spec))
    model = gradients.model
    loss = gradients.closed_form(model.example_loss)
    rng = np.random.default_rng(5)
    point = Point(dict(zip(spec.parameter_names, rng.normal(size=spec.n_parameters))),
                  list(rng.normal(size=2)), list(rng.dirichlet(np.ones(3))))
    values = evaluate(gradients, point)
    leaves = {s: v for s, v in values.items() if s in set(model.parameters) | set(model.inputs) | set(model.targets)}
    for name in spec.parameter_names:
        symbol = model.parameter_symbol(name)
        direct = float(sp.diff(loss, symbol).xreplace({s: sp.Float(v) for s, v in leaves.items()}))
        assert value_of(gradients.parameter(name).expr, values) == pytest.approx(direct, rel=1e-10, abs=1e-13), name


def test_formula_texts_cover_every_parameter(mazur):
    texts = formula_texts(mazur)
    assert list(texts) == list(mazur.model.spec.parameter_names)
    assert "delta_o1*w5 + delta_o2*w7" in texts["w1"]


def test_unknown_parameter_is_a_clear_error(mazur):
    with pytest.raises(symgrad.SpecError, match='"w9" is not a parameter'):
        chain_rule(mazur, "w9")


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symgrad", *args], capture_output=True, text=True, timeout=timeout)


def _spec_file(tmp_path, spec) -> str:
    path = tmp_path / f"{spec['name']}.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_expanded_closed_forms_are_refused_past_a_size_and_fast(tmp_path):
    deep = _spec_file(tmp_path, make_spec([2, 3, 3, 3, 3, 3, 2], ["sigmoid"] * 6, name="deep"))
    started = time.perf_counter()
    result = _cli("formulas", deep, "--expanded")
    assert time.perf_counter() - started < 20
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--expanded" in result.stderr and "operations, more than 25000" in result.stderr
    # near the output, the closed form is small and printed
    near = _cli("formulas", deep, "--expanded", "--param", "W6_0_0")
    assert near.returncode == 0, near.stderr
    assert "closed form: dE/dW6_0_0 = " in near.stdout
    shallow = _cli("formulas", _spec_file(tmp_path, make_spec([2, 2, 2], ["sigmoid"] * 2, name="shallow")), "--expanded")
    assert shallow.returncode == 0 and shallow.stdout.count("closed form") == 12


def test_expanded_size_counts_what_the_substitution_builds(mazur):
    from symgrad.formulas.report import expanded_size

    for name in ("w1", "w5", "b1"):  # an upper bound (SymPy merges some terms), and a close one
        expr = chain_rule(mazur, name).total
        built = _tree_size(mazur.closed_form(expr))
        assert built <= expanded_size(expr, mazur.substitutions()) <= 2 * built


def _tree_size(expr) -> int:
    return 1 + sum(_tree_size(arg) for arg in expr.args)


def test_a_parameter_in_the_wrong_case_gets_a_suggestion(tmp_path):
    result = _cli("formulas", str(MAZUR), "--param", "W5")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert '--param: "W5" is not a parameter of this network (did you mean "w5"?)' in result.stderr


def test_latex_at_initial_shows_the_numbers(tmp_path):
    """The seed's w5 factors: 0.74136507, 0.186815602, 0.593269992, product 0.082167041."""
    result = _cli("formulas", str(MAZUR), "--latex", "--at", "initial", "--param", "w5", "--param", "w1")
    assert result.returncode == 0, result.stderr
    assert (r"$$ \frac{\partial E}{\partial \mathrm{w5}} = 0.741365 \cdot 0.186816 \cdot 0.59327 = 0.082167 $$"
            in result.stdout)
    assert r"= 0.138499 \cdot 0.4 + \left(-0.0380982\right) \cdot 0.5 = 0.0363503 $$" in result.stdout
    assert r"= 0.000438568 $$" in result.stdout


@pytest.mark.parametrize("activation, where", [
    ("x*exp(1000)", "$.layers[0].activation.expr: a constant in the formula is too large"),
    ("exp(exp(exp(3)*x))", "--at: out_h1 is too large for a float at these values"),
    ("exp(exp(30*x))*x", "--at: out_h1 is too large for a float at these values"),
])
def test_overflowing_formulas_are_one_line_errors(activation, where, tmp_path):
    spec = json.loads(MAZUR.read_text())
    spec["layers"][0]["activation"] = {"expr": activation}
    path = _spec_file(tmp_path, spec)
    for command in (["formulas", "--at", "initial"], ["explain"], ["formulas", "--latex", "--at", "initial"]):
        result = _cli(command[0], path, *command[1:])
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert where in result.stderr


def test_the_layer_report_says_which_options_it_did_not_apply(capsys):
    from symgrad.cli import main

    digits = MAZUR.parent / "digits.json"
    assert main(["formulas", str(digits)]) == 0
    assert "apply to single parameters" not in capsys.readouterr().out
    assert main(["formulas", str(digits), "--at", "initial", "--expanded"]) == 0
    assert "# --at, --expanded apply to single parameters: add --param NAME to use them" in capsys.readouterr().out

"""Custom formulas: parsed by a whitelist, never evaluated, and differentiated like the built-ins."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
import sympy as sp

import symgrad
from helpers import central_differences, make_spec
from symgrad import SpecError
from symgrad.rules import formula_expr

X = sp.Symbol("x", real=True)


def parse(text: str) -> sp.Expr:
    return formula_expr(text, {"x": X}, "$.layers[0].activation.expr")


@pytest.mark.parametrize("text, expected", [
    ("x/(1+abs(x))", X / (1 + sp.Abs(X))),
    ("-x**2", -(X ** 2)),
    ("2**-x", 2 ** (-X)),
    ("x**2**2", X ** 4),
    ("max(x, 0.5*x) - min(x, 0)", sp.Max(X, sp.Float(0.5) * X) - sp.Min(X, 0)),
    ("exp(log(sqrt(x*x)))", sp.sqrt(X ** 2)),
    ("1.5e-3 * tanh(x)", sp.Float(1.5e-3) * sp.tanh(X)),
    ("  x  +  1 ", X + 1),
])
def test_accepted_formulas(text, expected):
    assert sp.simplify(parse(text) - expected) == 0


HOSTILE = [
    ("__import__('os').system('x')", "unexpected character"),
    ("x.__class__", "unexpected character '.'"),
    ("().__class__.__bases__[0]", "unexpected"),
    ("lambda: 1", "unexpected character ':'"),
    ("lambda", "unknown name 'lambda'"),
    ("[x for x in range(9)]", "unexpected character '['"),
    ("x[0]", "unexpected character '['"),
    ("9**9**9", "too large"),
    ("x**1000", "exponent 1000"),
    ("(" * 200 + "x" + ")" * 200, "nested too deeply"),
    ("-" * 500 + "x", "nested too deeply"),
    ("x+" * 600 + "x", "characters, more than 1000"),
    ("open('/etc/passwd')", "unexpected character"),
    ("open", "unknown name 'open'"),
    ("eval(x)", "unknown function 'eval'"),
    ("exec(x)", "unknown function 'exec'"),
    ("getattr(x, 'y')", "unexpected character"),
    ("y + x", "unknown name 'y'"),
    ("x if x else 0", "unexpected 'if'"),
    ("x; import os", "unexpected character ';'"),
    ("x == 1", "unexpected character '='"),
    ("x ^ 2", "use ** for powers"),
    ("x @ x", "unexpected character '@'"),
    ("'x'", "unexpected character"),
    ('"x"', "unexpected character"),
    ("x # comment", "unexpected character '#'"),
    ("1e400", "too large"),
    ("10000000000000000000000", "too large"),
    ("log(0)", "undefined or infinite"),
    ("1/0", "division by zero"),
    ("0**-1", "non-positive power"),
    ("sqrt(-1)", "complex"),
    ("exp", "is a function"),
    ("exp(x, x)", "takes 1 argument"),
    ("max(x)", "takes 2 argument"),
    ("x +", "ends too early"),
    ("(x", "ends too early"),
    ("x)", "unexpected ')'"),
    ("", "empty"),
    ("   ", "empty"),
    ("x x", "unexpected 'x'"),
    ("sigmoid(x)(x)", "unexpected '('"),
    ("\\x00", "unexpected character"),
    ("x\u2212 1", "unexpected character"),
    ("pi", "unknown name 'pi'"),
    ("__builtins__", "unknown name"),
]


@pytest.mark.parametrize("text, words", HOSTILE)
def test_hostile_formulas_are_rejected_quickly(text, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        parse(text)
    assert time.perf_counter() - started < 1.0
    assert words in str(caught.value)
    assert str(caught.value).startswith("$.layers[0].activation.expr: ")
    assert list(tmp_path.iterdir()) == []  # no side effect


def test_rejection_in_a_spec_names_the_json_path():
    spec = make_spec([2, 2, 1], [{"expr": "x.real"}, "linear"], "mse")
    with pytest.raises(SpecError, match=r"^\$\.layers\[0\]\.activation\.expr: unexpected character '\.' at position 1"):
        symgrad.parse_spec(spec)
    spec = make_spec([2, 2, 1], ["tanh", "linear"], {"expr": "(o - t)**2 + q"})
    with pytest.raises(SpecError, match=r"^\$\.loss\.expr: unknown name 'q' at position 13"):
        symgrad.parse_spec(spec)
    spec = make_spec([2, 2, 1], ["tanh", "linear"], {"expr": "(o-t)**2", "name": "mse"})
    with pytest.raises(SpecError, match='give either "name" or "expr"'):
        symgrad.parse_spec(spec)


def softsign(z):
    return z / (1 + np.abs(z))


def erf_mix(z):
    return np.maximum(z, 0.1 * z) + np.vectorize(math.erf)(z)


CUSTOM = [
    ("x/(1+abs(x))", softsign, "(o-t)**2/2", lambda o, t: 0.5 * (o - t) ** 2),
    ("max(x, 0.1*x) + erf(x)", erf_mix, "softplus(o) - t*o + sqrt(1+(o-t)**2)",
     lambda o, t: np.log1p(np.exp(o)) - t * o + np.sqrt(1 + (o - t) ** 2)),
    ("tanh(x)**2 + sigmoid(x)*min(x, 1)", lambda z: np.tanh(z) ** 2 + np.minimum(z, 1) / (1 + np.exp(-z)),
     "abs(o-t)**1.5", lambda o, t: np.abs(o - t) ** 1.5),
]


@pytest.mark.parametrize("form", ["scalar", "vector"])
@pytest.mark.parametrize("activation, act_np, loss, loss_np", CUSTOM)
def test_custom_formulas_match_central_differences(activation, act_np, loss, loss_np, form):
    spec = make_spec([3, 4, 2], [{"expr": activation}, {"expr": activation}], {"expr": loss})
    module = symgrad.load(spec, backend="numpy", form=form)
    rng = np.random.default_rng(11)
    theta = rng.normal(0, 0.8, module.N_PARAMETERS)
    X_ = rng.normal(size=(5, 3))
    T = rng.normal(size=(5, 2))

    def reference(t):  # written here, from the formulas, independently of symgrad
        W1, b1 = t[:12].reshape(4, 3), t[12:16]
        W2, b2 = t[16:24].reshape(2, 4), t[24:26]
        out = act_np(act_np(X_ @ W1.T + b1) @ W2.T + b2)
        return float(loss_np(out, T).sum(axis=1).mean())

    loss_value, grad = module.gradient(theta, X_, T)
    assert loss_value == pytest.approx(reference(theta), rel=1e-12)
    np.testing.assert_allclose(grad, central_differences(reference, theta), rtol=1e-6, atol=1e-8)


# -- validation needs no SymPy; the work SymPy will do is bounded ---------------------------------

def _run(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def test_spec_validation_imports_no_sympy():
    code = (
        "import sys, symgrad.spec\n"
        "spec = symgrad.spec.parse_spec({'name': 'n', 'inputs': 2, 'layers': ["
        "{'units': 2, 'activation': {'expr': 'x/(1+abs(x)) + sigmoid(x)*erf(x)'}},"
        "{'units': 1, 'activation': 'linear'}], 'loss': {'expr': '(o-t)**2/2 + max(o, t)**2'}})\n"
        "assert spec.loss.formula.startswith('(o-t)')\n"
        "assert 'sympy' not in sys.modules, 'validating a spec imported sympy'\n"
        "try:\n"
        "    symgrad.spec.parse_spec({'name': 'n', 'inputs': 1, 'layers': [{'units': 1, 'activation': "
        "{'expr': 'sqrt(-1)*x'}}], 'loss': 'mse'})\n"
        "except symgrad.SpecError as error:\n"
        "    print(error)\n"
        "assert 'sympy' not in sys.modules, 'rejecting a formula imported sympy'\n")
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "$.layers[0].activation.expr: the formula is complex" in result.stdout


@pytest.mark.parametrize("text, words", [
    ("1/((o-t+2)**16)**16", "degree 256"),
    ("((o-t)**8)**8", "degree 64"),
    ("(o+t)**20 * (o-t)**20", "degree 40"),
    ("exp((o-t)**40)", "degree 40"),
    ("1/((o-t+2)**4*(o+2)**10*(t+1)**10*(o*t)**5)", "degree 34"),
    ("(o-t)**(2*3*4*5)", "exponent 120"),
])
def test_high_degree_formulas_fail_fast_on_the_command_line(text, words, tmp_path):
    spec = make_spec([2, 2, 1], ["sigmoid", "sigmoid"], {"expr": text})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    for command in (["formulas"], ["explain"], ["build", "--out", str(tmp_path / "out")]):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "symgrad", *command, str(path)], capture_output=True,
                                text=True, timeout=60)
        assert time.perf_counter() - started < 15
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("error: $.loss.expr: ") or "$.loss.expr: " in result.stderr
        assert words in result.stderr


def test_the_degree_bound_admits_ordinary_formulas():
    for text in ("(o-t)**2/2", "abs(o-t)**1.5", "1/(1+(o-t)**2)", "(o-t)**32", "exp(-(o-t)**2)*(o+t)**30"):
        formula_expr(text, {"o": sp.Symbol("o"), "t": sp.Symbol("t")}, "$.loss.expr")


@pytest.mark.parametrize("text, position, char", [
    ("x\n+1", 1, "U+000A"), ("x +\r 1", 3, "U+000D"), ("x\t* 2", 1, "U+0009"), ("x\x00", 1, "U+0000"),
    ("x \u2028+ 1", 2, "U+2028"), ("x\x85", 1, "U+0085"), ("x\u200b+1", 1, "U+200B"), ("\x0cx", 0, "U+000C"),
    ("x\u00a0+1", 1, "U+00A0"),
])
def test_control_characters_are_refused_with_their_position(text, position, char):
    with pytest.raises(SpecError) as caught:
        parse(text)
    message = str(caught.value)
    assert f"{char}" in message and f"at position {position}" in message
    assert "\n" not in message and "\r" not in message
    spec = make_spec([2, 2, 1], [{"expr": text}, "linear"], "mse")
    with pytest.raises(SpecError, match=r"^\$\.layers\[0\]\.activation\.expr: control or space character"):
        symgrad.parse_spec(spec)


@pytest.mark.parametrize("text", ["(-1)**x", "0**x", "(-2)**(x+1)", "(1-1)**x", "(-0.5)**(2*x)", "(0*3)**abs(x)",
                                  "(-exp(1))**x"])
def test_a_non_positive_constant_base_needs_a_constant_exponent(text):
    with pytest.raises(SpecError, match=r"is not positive.*exp\(x\*log\(b\)\)"):
        parse(text)


@pytest.mark.parametrize("text", ["x*exp(1000)", "exp(exp(10))*x", "x + 10**15*10", "x/exp(-800)", "exp(36)*x"])
def test_huge_constants_are_refused_before_they_overflow(text):
    with pytest.raises(SpecError, match="too large|rounds to 0"):
        parse(text)


@pytest.mark.parametrize("text", ["(-2)**2*x", "2**x", "0**2 + x", "(-8)**3*x"])
def test_constant_powers_that_are_real_still_pass(text):
    parse(text)


def test_the_parser_and_sympy_know_the_same_functions_with_the_same_values():
    """Constant parts are computed in floats by the parser: they must agree with SymPy's functions."""
    from symgrad import expression, rules

    assert set(expression.FUNCTIONS) == set(rules.FORMULA_FUNCTIONS)
    for name, (arity, value) in expression.FUNCTIONS.items():
        for args in ([0.3, -1.7], [2.5, 0.4], [-30.0, 12.0]):
            args = args[:arity] if name not in ("log", "sqrt") else [abs(args[0])]
            expected = float(rules.FORMULA_FUNCTIONS[name](*(sp.Rational(str(a)) for a in args)).evalf(30))
            assert value(*args) == pytest.approx(expected, rel=1e-14, abs=1e-300), (name, args)

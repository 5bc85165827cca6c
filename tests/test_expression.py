"""Custom formulas: parsed by a whitelist, never evaluated, and differentiated like the built-ins."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import sympy as sp

import symgrad
from helpers import central_differences, make_spec
from symgrad import SpecError
from symgrad.expression import parse_formula

X = sp.Symbol("x", real=True)


def parse(text: str) -> sp.Expr:
    return parse_formula(text, {"x": X}, "$.layers[0].activation.expr")


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

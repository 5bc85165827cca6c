"""``explain`` for specs with l1/l2 penalties and with every optimizer.

The walk-through's numbers (the gradient with the penalty's derivative, the first update from a
fresh optimizer state, the error after it and after K steps) are checked against a forward pass,
backward pass, penalty and optimizer loop written here in plain Python floats, following the
update rules PyTorch documents for torch.optim.SGD, RMSprop, Adam and AdamW.  The error after K
steps is also checked against the generated NumPy module's ``train`` on the same example.
"""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pytest

import symgrad
from helpers import SECOND
from symgrad.cli import main
from symgrad.explain import render, worked_example

# The 2-2-2 network of test_explain.py's second example: tanh hidden units, sigmoid outputs,
# per-unit biases, weight names laid out column-major in the hidden layer.
BASE = SECOND
HIDDEN = ("u1", "u3", "u2", "u4")
HIDDEN_BIASES = ("c1", "c2")
OUTPUT = ("v2", "v1", "v4", "v3")
OUTPUT_BIASES = ("d1", "d2")


def _variant(name, optimizer=None, penalties=((), ()), frozen=()):
    spec = copy.deepcopy(BASE)
    spec["name"] = name
    if optimizer is not None:
        spec["optimizer"] = optimizer
    for layer, options in zip(spec["layers"], penalties):
        layer.update(options)
    if frozen:
        spec["frozen"] = list(frozen)
    return spec


PENALIZED = _variant("penalized", penalties=({"l2": 0.02, "l1": 0.005, "regularize_bias": True},
                                             {"l2": 0.01, "l1": 0.003}))
ADAM = _variant("adam", {"name": "adam", "learning_rate": 0.05}, frozen=("d2",))
NESTEROV = _variant("nesterov", {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
                    penalties=({}, {"l2": 0.01}))
ADAMW = _variant("adamw", {"name": "adamw", "learning_rate": 0.02, "weight_decay": 0.05},
                 penalties=({"l1": 0.002}, {}))
RMSPROP = _variant("rmsprop", {"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "weight_decay": 0.01},
                   frozen=("c1",))
MOMENTUM = _variant("momentum", {"name": "sgd", "learning_rate": 0.2, "momentum": 0.8, "dampening": 0.1,
                                 "weight_decay": 0.003}, penalties=({"l2": 0.001, "regularize_bias": True}, {}))
STEPS = 200


# -- the reference, in plain Python floats ---------------------------------------------------------

def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def _sign(v):
    return (v > 0) - (v < 0)


def _covered(spec):
    """{parameter: (l1, l2)} for every parameter a penalty covers."""
    covered = {}
    for layer, weights, biases in zip(spec["layers"], (HIDDEN, OUTPUT), (HIDDEN_BIASES, OUTPUT_BIASES)):
        l1, l2 = layer.get("l1", 0.0), layer.get("l2", 0.0)
        if l1 or l2:
            for name in weights + (biases if layer.get("regularize_bias") else ()):
                covered[name] = (l1, l2)
    return covered


def _reference(spec, p):
    """(outputs' loss, penalty, {dE/dp with the penalty's derivative}) at parameters p."""
    x, t = spec["example"]["inputs"], spec["example"]["targets"]
    a = math.tanh(p["u1"] * x[0] + p["u3"] * x[1] + p["c1"])
    b = math.tanh(p["u2"] * x[0] + p["u4"] * x[1] + p["c2"])
    y = _sigmoid(p["v2"] * a + p["v1"] * b + p["d1"])
    z = _sigmoid(p["v4"] * a + p["v3"] * b + p["d2"])
    loss = 0.5 * (t[0] - y) ** 2 + 0.5 * (t[1] - z) ** 2
    delta_y = (y - t[0]) * y * (1 - y)
    delta_z = (z - t[1]) * z * (1 - z)
    delta_a = (delta_y * p["v2"] + delta_z * p["v4"]) * (1 - a * a)
    delta_b = (delta_y * p["v1"] + delta_z * p["v3"]) * (1 - b * b)
    gradient = {"v2": delta_y * a, "v1": delta_y * b, "d1": delta_y, "v4": delta_z * a, "v3": delta_z * b,
                "d2": delta_z, "u1": delta_a * x[0], "u3": delta_a * x[1], "c1": delta_a,
                "u2": delta_b * x[0], "u4": delta_b * x[1], "c2": delta_b}
    penalty = 0.0
    for name, (l1, l2) in _covered(spec).items():
        penalty += l2 * p[name] ** 2 + l1 * abs(p[name])
        gradient[name] += 2 * l2 * p[name] + l1 * _sign(p[name])
    return loss, penalty, gradient


class ReferenceOptimizer:
    """PyTorch's documented update rules, one parameter at a time, in Python floats."""

    def __init__(self, spec):
        self.o = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0, "alpha": 0.99,
                  "eps": 1e-8, "betas": [0.9, 0.999]} | spec["optimizer"]
        if self.o["name"] == "adamw" and "weight_decay" not in spec["optimizer"]:
            self.o["weight_decay"] = 0.01
        self.frozen = set(spec.get("frozen", ()))
        self.t = 0
        self.state = {}   # (quantity, parameter) -> float
        self.shown = {}   # the quantities of the last step

    def step(self, p, gradient):
        o, lr, wd = self.o, self.o["learning_rate"], self.o["weight_decay"]
        self.t += 1
        new = {}
        for name, value in p.items():
            g = gradient[name]
            if o["name"] != "adamw":
                g += wd * value
            shown = {"g": g}
            if o["name"] == "sgd":
                direction = g
                if o["momentum"]:
                    buffer = g if self.t == 1 else \
                        o["momentum"] * self.state["buffer", name] + (1 - o["dampening"]) * g
                    self.state["buffer", name] = shown["buffer"] = buffer
                    direction = g + o["momentum"] * buffer if o["nesterov"] else buffer
                updated = value - lr * direction
            elif o["name"] == "rmsprop":
                v = o["alpha"] * self.state.get(("v", name), 0.0) + (1 - o["alpha"]) * g * g
                self.state["v", name] = shown["square_avg"] = v
                direction = g / (math.sqrt(v) + o["eps"])
                if o["momentum"]:
                    direction = o["momentum"] * self.state.get(("buffer", name), 0.0) + direction
                    self.state["buffer", name] = shown["buffer"] = direction
                updated = value - lr * direction
            else:
                beta1, beta2 = o["betas"]
                start = value * (1 - lr * wd) if o["name"] == "adamw" else value
                m = beta1 * self.state.get(("m", name), 0.0) + (1 - beta1) * g
                v = beta2 * self.state.get(("v", name), 0.0) + (1 - beta2) * g * g
                self.state["m", name], self.state["v", name] = m, v
                m_hat, v_hat = m / (1 - beta1 ** self.t), v / (1 - beta2 ** self.t)
                shown.update(exp_avg=m, exp_avg_sq=v, exp_avg_hat=m_hat, exp_avg_sq_hat=v_hat)
                updated = start - lr * m_hat / (math.sqrt(v_hat) + o["eps"])
            new[name] = value if name in self.frozen else updated
            self.shown[name] = shown
        return new


def _initial(spec):
    return {name: float(value) for name, value in spec["initial"].items()}


def _gradients(spec):
    return symgrad.differentiate(symgrad.build_model(symgrad.parse_spec(spec)))


_EXAMPLES = {}


def _example(spec, steps=STEPS):
    key = (spec["name"], steps)
    if key not in _EXAMPLES:
        _EXAMPLES[key] = worked_example(_gradients(spec), steps=steps)
    return _EXAMPLES[key]


# -- penalties -------------------------------------------------------------------------------------

def test_penalties_in_the_error_the_gradient_and_the_steps():
    example = _example(PENALIZED)
    p = _initial(PENALIZED)
    loss, penalty, gradient = _reference(PENALIZED, p)
    # l2 * sum p^2 + l1 * sum |p|, computed term by term here
    hidden = HIDDEN + HIDDEN_BIASES
    expected_penalty = (0.02 * sum(p[n] ** 2 for n in hidden) + 0.005 * sum(abs(p[n]) for n in hidden)
                        + 0.01 * sum(p[n] ** 2 for n in OUTPUT) + 0.003 * sum(abs(p[n]) for n in OUTPUT))
    assert penalty == pytest.approx(expected_penalty, rel=1e-14)
    assert example.penalty == pytest.approx(penalty, rel=1e-13)
    assert example.error == pytest.approx(loss + penalty, rel=1e-13)
    for name, expected in gradient.items():
        assert example.gradient[name] == pytest.approx(expected, rel=1e-12, abs=1e-16), name
    # the penalty reaches biases only with regularize_bias: d1's derivative is its delta alone
    assert gradient["d1"] == pytest.approx(_reference(BASE, p)[2]["d1"], rel=1e-15)
    assert gradient["c1"] != pytest.approx(_reference(BASE, p)[2]["c1"], rel=1e-3)

    after = {name: value - 0.3 * gradient[name] for name, value in p.items()}
    for name, expected in after.items():
        assert example.updated[name] == pytest.approx(expected, rel=1e-13), name
    loss1, penalty1, _ = _reference(PENALIZED, after)
    assert example.error_after_step == pytest.approx(loss1 + penalty1, rel=1e-12)
    assert example.descent.errors[1] == pytest.approx(loss1 + penalty1, rel=1e-12)
    for _ in range(STEPS - 1):
        gradient = _reference(PENALIZED, after)[2]
        after = {name: value - 0.3 * gradient[name] for name, value in after.items()}
    final_loss, final_penalty, _ = _reference(PENALIZED, after)
    assert example.descent.errors[-1] == pytest.approx(final_loss + final_penalty, rel=1e-9)
    assert example.descent.parameters == pytest.approx(after, rel=1e-9)


def test_penalties_are_shown_with_their_numbers():
    example = _example(PENALIZED)
    p = _initial(PENALIZED)
    loss, penalty, gradient = _reference(PENALIZED, p)
    text = render(example, "txt", 6)
    hidden = HIDDEN + HIDDEN_BIASES
    squares, absolute = sum(p[n] ** 2 for n in hidden), sum(abs(p[n]) for n in hidden)
    assert (f"= 0.02 × {squares:.6g} + 0.005 × {absolute:.6g} + 0.01 × {sum(p[n] ** 2 for n in OUTPUT):.6g}"
            f" + 0.003 × {sum(abs(p[n]) for n in OUTPUT):.6g}\n            = {penalty:.6g}\n") in text
    assert "penalty = 0.02 · (c1**2 + c2**2 + u1**2 + u2**2 + u3**2 + u4**2) + 0.005 · (abs(c1) + " in text
    assert "E = E_y + E_z + penalty = " in text and f" = {loss + penalty:.6g}\n" in text
    # the chain of u2 ends with the penalty's derivative: 2 * 0.02 * u2 + 0.005 * sign(u2)
    lines = text.splitlines()
    start = lines.index("    dE/du2 = dE/dout_b · dout_b/dnet_b · dnet_b/du2 + dpenalty/du2")
    assert lines[start + 1].endswith(" · x1 + 0.04*u2 + 0.005*sign(u2)")
    derivative = 2 * 0.02 * p["u2"] - 0.005  # u2 = -0.2: sign -1
    assert lines[start + 2].endswith(f" + {derivative:.6g}" if derivative >= 0 else f" + ({derivative:.6g})")
    assert lines[start + 3].strip() == f"= {gradient['u2']:.6g}"
    assert "dE/dd1 = dE/dout_y · dout_y/dnet_y · dnet_y/dd1\n" in text  # d1 is not covered
    shown = f"{gradient['u2']:.6g}" if gradient["u2"] >= 0 else f"({gradient['u2']:.6g})"
    assert f"u2+ = u2 - η · dE/du2 = -0.2 - 0.3 × {shown} = {p['u2'] - 0.3 * gradient['u2']:.6g}" in text


# -- optimizers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [ADAM, NESTEROV, ADAMW, RMSPROP, MOMENTUM], ids=lambda s: s["name"])
def test_first_step_and_steps_match_pytorchs_rules_in_plain_python(spec):
    example = _example(spec)
    p = _initial(spec)
    loss, penalty, gradient = _reference(spec, p)
    assert example.error == pytest.approx(loss + penalty, rel=1e-13)
    for name, expected in gradient.items():
        assert example.gradient[name] == pytest.approx(expected, rel=1e-12, abs=1e-16), name
    optimizer = ReferenceOptimizer(spec)
    after = optimizer.step(p, gradient)
    for name, expected in after.items():
        assert example.updated[name] == pytest.approx(expected, rel=1e-12), name
    for name in spec.get("frozen", ()):
        assert example.updated[name] == p[name]
    for name, quantities in optimizer.shown.items():  # what the walk-through shows of the first step
        for key, expected in quantities.items():
            assert example.first_step[key][name] == pytest.approx(expected, rel=1e-12, abs=1e-300), (key, name)
    loss1, penalty1, _ = _reference(spec, after)
    assert example.error_after_step == pytest.approx(loss1 + penalty1, rel=1e-12)
    assert example.descent.errors[1] == pytest.approx(loss1 + penalty1, rel=1e-12)
    errors = [loss + penalty, loss1 + penalty1]
    for _ in range(STEPS - 1):
        after = optimizer.step(after, _reference(spec, after)[2])
        errors.append(sum(_reference(spec, after)[:2]))
    assert example.descent.errors == pytest.approx(errors, rel=1e-9)
    assert example.descent.parameters == pytest.approx(after, rel=1e-9)
    assert example.descent.errors[-1] < 0.5 * example.error  # it trains


def test_adam_first_step_reads_like_its_rule():
    example = _example(ADAM)
    p = _initial(ADAM)
    _, _, gradient = _reference(ADAM, p)
    g = gradient["v3"]
    m, v = 0.1 * g, 0.001 * g * g  # (1 - beta1) g, (1 - beta2) g^2
    m_hat, v_hat = m / 0.1, v / 0.001
    new = p["v3"] - 0.05 * m_hat / (math.sqrt(v_hat) + 1e-8)
    text = render(example, "txt", 6)
    number = f"{g:.6g}" if g >= 0 else f"({g:.6g})"
    assert f"m_v3 = (1 - β1) · dE/dv3 = 0.1 × {number} = {m:.6g}\n" in text
    assert f"v_v3 = (1 - β2) · (dE/dv3)² = 0.001 × {number}² = {v:.6g}\n" in text
    assert "m̂_v3 = m_v3/(1 - β1) = " in text and f" = {m_hat:.6g}\n" in text
    assert f"v̂_v3 = v_v3/(1 - β2) = {v:.6g}/0.001 = {v_hat:.6g}\n" in text
    assert (f"v3+ = v3 - η · m̂_v3/(√v̂_v3 + ε) = 0.7 - 0.05 × {m_hat:.6g}/(√{v_hat:.6g} + 1e-08) = "
            f"{new:.6g}\n") in text
    assert "d2+ = d2 = -0.25   (frozen: unchanged)" in text
    assert "Adam (torch.optim.Adam)" in text and "from a fresh state (m = v = 0, t = 1)" in text
    assert f"The error after {STEPS} steps, the optimizer's state carried from each step to the next:" in text


def test_nesterov_first_step_reads_like_its_rule():
    example = _example(NESTEROV)
    _, _, gradient = _reference(NESTEROV, _initial(NESTEROV))
    g = gradient["u4"]
    text = render(example, "txt", 6)
    assert f"b_u4 = dE/du4 = {g:.6g}\n" in text
    number = f"{g:.6g}" if g >= 0 else f"({g:.6g})"
    assert (f"u4+ = u4 - η · (dE/du4 + μ · b_u4) = 0.4 - 0.1 × ({g:.6g} + 0.9 × {number}) = "
            f"{0.4 - 0.1 * (g + 0.9 * g):.6g}\n") in text


@pytest.mark.parametrize("spec", [PENALIZED, ADAM, NESTEROV, ADAMW, RMSPROP, MOMENTUM], ids=lambda s: s["name"])
def test_error_after_k_steps_is_the_generated_modules(spec):
    steps = 60
    example = _example(spec, steps)
    module = symgrad.load(spec, backend="numpy")
    theta = module.initial_parameters()
    X = np.array([spec["example"]["inputs"]])
    T = np.array([spec["example"]["targets"]])
    losses = module.train(theta, X, T, steps)  # full batch: the loss before each step
    assert module.loss(theta, X, T) == pytest.approx(example.descent.errors[steps], rel=1e-10)
    assert list(losses) == pytest.approx(example.descent.errors[:steps], rel=1e-10)
    # and the first step, shown with SymPy's numbers, is the module's step
    theta = module.initial_parameters()
    module.step(theta, X, T, state=module.initial_state())
    assert list(theta) == pytest.approx([example.updated[n] for n in module.PARAMETER_NAMES], rel=1e-12)
    assert module.loss(theta, X, T) == pytest.approx(example.error_after_step, rel=1e-12)


@pytest.mark.parametrize("spec", [PENALIZED, ADAM, ADAMW, RMSPROP, MOMENTUM], ids=lambda s: s["name"])
def test_every_format_renders_penalties_and_optimizers(tmp_path, spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    for format in ("txt", "md", "html"):
        out = tmp_path / f"out.{format}"
        assert main(["explain", str(path), "--format", format, "--out", str(out), "--steps", "5"]) == 0
        text = out.read_text(encoding="utf-8")
        assert "Update" in text and not re.search(r"\b(nan|inf)\b", text)
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    if spec["optimizer"]["name"] in ("adam", "adamw", "rmsprop"):
        assert "<msqrt>" in page and "<mfrac>" in page
    markdown = (tmp_path / "out.md").read_text(encoding="utf-8")
    if spec["optimizer"]["name"] in ("adam", "adamw"):
        assert r"\sqrt{{\hat{v}}_{" in markdown and r"\beta_{1}" in markdown

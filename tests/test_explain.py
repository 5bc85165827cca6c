"""``explain``: the worked example's numbers and its three formats.

The Mazur walk-through is checked against the numbers the seed prints (within the seed's own
rounding) wherever its arithmetic is right, and against DESIGN.md section 6 where it is not.  A
second 2-2-2 network (another weight layout, tanh, trainable per-unit biases) is checked against
a forward pass, backward pass and SGD loop written here in plain Python floats.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import symgrad
from helpers import SECOND, SECOND_STEPS
from symgrad.cli import main
from symgrad.explain import Section, explain, markdown_escape, render, worked_example
from symgrad.formulas import chain_rule, evaluate, value_of

MAZUR = Path(__file__).resolve().parent.parent / "examples" / "mazur.json"


def _gradients(spec):
    return symgrad.differentiate(symgrad.build_model(symgrad.parse_spec(spec)))


def assert_printed(value: float, printed: str, last_digit: float = 0.5) -> None:
    """``value`` rounds to ``printed`` (the seed prints rounded decimals), within ``last_digit``
    units of its last decimal."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert abs(value - float(printed)) <= last_digit * 10 ** -decimals + 1e-15, (value, printed)


# -- Mazur ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mazur():
    return worked_example(_gradients(MAZUR), steps=10_000)


SEED_VALUES = {  # as the seed prints them
    "net_h1": "0.3775", "out_h1": "0.593269992", "out_h2": "0.596884378", "net_o1": "1.105905967",
    "out_o1": "0.75136507", "out_o2": "0.772928465", "E": "0.298371109", "delta_o1": "0.138498562",
}
SEED_UPDATED = {
    "w5": "0.35891648", "w6": "0.408666186", "w7": "0.511301270", "w8": "0.561370121",
    "w1": "0.149780716", "w2": "0.19956143", "w3": "0.24975114", "w4": "0.29950229",
}


def test_mazur_forward_pass_and_error_match_the_seed(mazur):
    for name, printed in SEED_VALUES.items():
        assert_printed(mazur.value(name), printed)
    out_o1, out_o2 = mazur.value("out_o1"), mazur.value("out_o2")
    assert_printed(0.5 * (0.01 - out_o1) ** 2, "0.274811083")   # E_o1
    assert_printed(0.5 * (0.99 - out_o2) ** 2, "0.023560026")   # E_o2
    assert mazur.error == pytest.approx(0.298371108760003, rel=1e-13)


def test_mazur_chain_rule_matches_the_seed(mazur):
    assert_printed(mazur.gradient["w5"], "0.082167041")
    assert_printed(mazur.gradient["w1"], "0.000438568")
    chain = chain_rule(_gradients(MAZUR), "w5")
    factors = [value_of(f.expr, mazur.values) for f in chain.paths[0].factors]
    for value, printed in zip(factors, ("0.74136507", "0.186815602", "0.593269992")):
        assert_printed(value, printed)
    hidden = chain_rule(_gradients(MAZUR), "w1")
    (upstream,) = hidden.upstream
    paths = [value_of(a.expr, mazur.values) * value_of(b.expr, mazur.values) for a, b in upstream.terms]
    assert_printed(paths[0], "0.055399425")     # dE_o1/dout_h1
    # dE_o2/dout_h1 = -0.0190491183: the seed's last digit comes from its rounded delta_o2 x w7.
    assert_printed(paths[1], "-0.019049119", last_digit=1)
    assert_printed(value_of(upstream.factor.expr, mazur.values), "0.036350306")
    assert_printed(value_of(hidden.paths[0].factors[1].expr, mazur.values), "0.241300709")


def test_mazur_update_matches_the_seed_and_design(mazur):
    for name, printed in SEED_UPDATED.items():
        assert_printed(mazur.updated[name], printed)
    assert mazur.updated["b1"] == 0.35 and mazur.updated["b2"] == 0.6  # frozen
    assert mazur.updated["w5"] == pytest.approx(0.358916479717885, rel=1e-14)
    assert mazur.updated["w1"] == pytest.approx(0.149780716132763, rel=1e-14)


def test_mazur_error_after_the_step_is_designs_not_the_seeds(mazur):
    # The seed prints 0.291027924 (output weights updated first); simultaneous SGD gives this.
    assert mazur.error_after_step == pytest.approx(0.291027773693599, rel=1e-12)
    assert abs(mazur.error_after_step - 0.291027924) > 1e-7
    assert mazur.descent.errors[1] == pytest.approx(0.291027773693599, rel=1e-12)
    # After 10,000 steps; the seed's 0.0000351085 is the error after 9,999.
    assert mazur.descent.errors[10_000] == pytest.approx(3.51018778297886e-05, rel=1e-9)
    assert mazur.descent.outputs == pytest.approx((0.0159136204435506, 0.984064273514624), rel=1e-9)


def test_mazur_text_reads_like_the_walk_through(mazur):
    text = render(mazur, "txt", 6)
    assert "net_h1 = w1 · i1 + w2 · i2 + b1 = 0.15 × 0.05 + 0.2 × 0.1 + 0.35 = 0.3775" in text
    assert "out_h1 = sigmoid(net_h1) = sigmoid(0.3775) = 0.59327" in text
    assert "E = E_o1 + E_o2 = 0.274811 + 0.02356 = 0.298371" in text
    lines = text.splitlines()
    start = lines.index("    dE/dw5 = dE/dout_o1 · dout_o1/dnet_o1 · dnet_o1/dw5")
    assert [line.strip() for line in lines[start + 1:start + 4]] == [
        "= (out_o1 - t_o1) · out_o1*(1 - out_o1) · out_h1", "= 0.741365 × 0.186816 × 0.59327", "= 0.082167"]
    assert "dE/dout_h1 = dE/dnet_o1 · dnet_o1/dout_h1 + dE/dnet_o2 · dnet_o2/dout_h1" in text
    assert "w5+ = w5 - η · dE/dw5 = 0.4 - 0.5 × 0.082167 = 0.358916" in text
    assert "b1+ = b1 = 0.35   (frozen: unchanged)" in text
    precise = render(mazur, "txt", 9)
    for printed in ("0.593269992", "0.0821670406", "0.000438567734", "0.149780716", "0.35891648", "0.291027774",
                    "3.51018778e-05"):
        assert printed in precise
    assert "0.291027924" not in precise


def test_the_committed_docs_page_is_current(mazur):
    committed = (MAZUR.parent.parent / "docs" / "explain-mazur.html").read_text(encoding="utf-8")
    assert render(mazur, "html", 6) == committed, (
        "docs/explain-mazur.html is out of date: python -m symgrad explain examples/mazur.json --format html "
        "--out docs/explain-mazur.html (and retake docs/explain-mazur.png)")


# -- a second 2-2-2 network, against plain Python ------------------------------------------------



def _reference_forward(p, x, t):
    def sigmoid(v):
        return 1.0 / (1.0 + math.exp(-v))

    net_a = p["u1"] * x[0] + p["u3"] * x[1] + p["c1"]
    net_b = p["u2"] * x[0] + p["u4"] * x[1] + p["c2"]
    a, b = math.tanh(net_a), math.tanh(net_b)
    net_y = p["v2"] * a + p["v1"] * b + p["d1"]
    net_z = p["v4"] * a + p["v3"] * b + p["d2"]
    y, z = sigmoid(net_y), sigmoid(net_z)
    error = 0.5 * (t[0] - y) ** 2 + 0.5 * (t[1] - z) ** 2
    return {"net_a": net_a, "net_b": net_b, "out_a": a, "out_b": b, "net_y": net_y, "net_z": net_z,
            "out_y": y, "out_z": z, "E": error}


def _reference_gradient(p, x, t):
    v = _reference_forward(p, x, t)
    a, b, y, z = v["out_a"], v["out_b"], v["out_y"], v["out_z"]
    delta_y = (y - t[0]) * y * (1 - y)
    delta_z = (z - t[1]) * z * (1 - z)
    delta_a = (delta_y * p["v2"] + delta_z * p["v4"]) * (1 - a * a)
    delta_b = (delta_y * p["v1"] + delta_z * p["v3"]) * (1 - b * b)
    return v, {"v2": delta_y * a, "v1": delta_y * b, "d1": delta_y, "v4": delta_z * a, "v3": delta_z * b,
               "d2": delta_z, "u1": delta_a * x[0], "u3": delta_a * x[1], "c1": delta_a,
               "u2": delta_b * x[0], "u4": delta_b * x[1], "c2": delta_b}


def _reference_step(p, x, t, rate):
    _, gradient = _reference_gradient(p, x, t)
    return {name: value - rate * gradient[name] for name, value in p.items()}


@pytest.fixture(scope="module")
def second():
    return worked_example(_gradients(SECOND), steps=SECOND_STEPS)


def test_second_network_matches_plain_python(second):
    x, t = SECOND["example"]["inputs"], SECOND["example"]["targets"]
    p = {name: float(value) for name, value in SECOND["initial"].items()}
    values, gradient = _reference_gradient(p, x, t)
    for name, expected in values.items():
        assert second.value(name) == pytest.approx(expected, rel=1e-12, abs=1e-15), name
    assert set(second.gradient) == set(gradient)
    for name, expected in gradient.items():
        assert second.gradient[name] == pytest.approx(expected, rel=1e-12, abs=1e-16), name
    after = _reference_step(p, x, t, 0.3)
    for name, expected in after.items():
        assert second.updated[name] == pytest.approx(expected, rel=1e-13), name
    assert second.error_after_step == pytest.approx(_reference_forward(after, x, t)["E"], rel=1e-12)
    for _ in range(SECOND_STEPS - 1):
        after = _reference_step(after, x, t, 0.3)
    final = _reference_forward(after, x, t)
    assert second.descent.errors[-1] == pytest.approx(final["E"], rel=1e-9)
    assert second.descent.outputs == pytest.approx((final["out_y"], final["out_z"]), rel=1e-9)


def test_second_network_text_shows_its_own_layout(second):
    text = render(second, "txt", 6)
    p = {name: float(value) for name, value in SECOND["initial"].items()}
    values, gradient = _reference_gradient(p, SECOND["example"]["inputs"], SECOND["example"]["targets"])
    assert "net_b = u2 · x1 + u4 · x2 + c2 = -0.2 × 0.6 + 0.4 × (-0.4) + (-0.1) = " + f"{values['net_b']:.6g}" in text
    assert "dE/du2 = dE/dout_b · dout_b/dnet_b · dnet_b/du2" in text
    assert "dE/dout_b = dE/dnet_y · dnet_y/dout_b + dE/dnet_z · dnet_z/dout_b" in text
    assert f"= {gradient['u2']:.6g}\n" in text
    shown = f"{gradient['c1']:.6g}" if gradient["c1"] >= 0 else f"({gradient['c1']:.6g})"
    assert f"c1+ = c1 - η · dE/dc1 = 0.05 - 0.3 × {shown} = " in text
    assert "unchanged" not in text


# -- formats, other networks ---------------------------------------------------------------------

SOFTMAX = {
    "name": "pets", "inputs": ["x1", "x2", "x3"],
    "layers": [{"units": 4, "activation": "relu"},
               {"units": ["cat", "dog", "eel"], "activation": "softmax"}],
    "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "initial": {"scheme": "he_uniform", "seed": 1},
    "example": {"inputs": [0.5, -1.0, 2.0], "targets": [0, 1, 0]},
}
WIDE = {
    "name": "wide", "inputs": 30,
    "layers": [{"units": 20, "activation": "sigmoid"}, {"units": 5, "activation": "sigmoid", "bias": "shared"}],
    "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.2},
    "initial": {"scheme": "xavier_uniform", "seed": 3},
    "example": {"inputs": [round(math.sin(i), 3) for i in range(30)], "targets": [0.1, 0.9, 0.2, 0.8, 0.5]},
}
WIDE_PARAMS = ("W1_3_7", "b1_2", "W2_4_19", "b2")


@pytest.fixture(scope="module")
def examples(mazur, second):
    return {"mazur": mazur, "second": second,
            "softmax": worked_example(_gradients(SOFTMAX), steps=100),
            "wide": worked_example(_gradients(WIDE), steps=100, params=WIDE_PARAMS)}


def _math_fragments(page: str) -> list[str]:
    return re.findall(r"<math display=\"block\">.*?</math>", page, flags=re.S)


@pytest.mark.parametrize("name", ["mazur", "second", "softmax", "wide"])
def test_every_format_renders(examples, name):
    example = examples[name]
    text = render(example, "txt", 6)
    for title in ("Network", "Forward pass", "Error", "Backward pass", "Update"):
        assert f"\n{title}\n{'-' * len(title)}\n" in text
    markdown = render(example, "md", 6)
    assert markdown.count("$$") % 2 == 0 and r"\frac{\partial" in markdown
    assert "<svg" in markdown and "\n\n" not in markdown[markdown.index("<svg"):markdown.index("</svg>")]
    page = render(example, "html", 6)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert not re.search(r"<script|\bsrc=|\bhref=|@import|url\(", page)  # offline, no JavaScript
    fragments = _math_fragments(page)
    assert len(fragments) >= 10
    for fragment in fragments:  # each formula is well-formed MathML
        ElementTree.fromstring(fragment.replace("&InvisibleTimes;", "&#8290;"))
    ElementTree.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])


def test_softmax_walk_through_agrees_with_sympy(examples):
    example = examples["softmax"]
    assert example.error == pytest.approx(-math.log(example.value("out_dog")), rel=1e-12)
    assert sum(example.value(f"out_{u}") for u in ("cat", "dog", "eel")) == pytest.approx(1.0, rel=1e-14)
    assert example.error_after_step == pytest.approx(example.descent.errors[1], rel=1e-12)
    assert "E_dog = -t_dog*log(out_dog) = -1*log(" in render(example, "txt", 6)


def test_wide_network_shows_layer_rules_and_named_chains(examples):
    example = examples["wide"]
    assert example.layer_rules and example.shown == WIDE_PARAMS
    text = render(example, "txt", 6)
    assert "dE/dW2 = delta_2 out_1ᵀ" in text
    assert "delta_1 = (W2ᵀ delta_2) ⊙ out_1*(1 - out_1)" in text
    assert "dE/db2 = sum(delta_2)" in text and "dE/dW1 = delta_1 xᵀ" in text
    assert text.count("\n    dE/dW1_3_7 = ") == 1 and "W1_0_0" not in text
    # The float64 values of a big network agree with SymPy's evaluation of the same chains.
    gradients = _gradients(WIDE)
    exact = evaluate(gradients, example.point)
    for name in WIDE_PARAMS:
        assert example.gradient[name] == pytest.approx(value_of(chain_rule(gradients, name).total, exact),
                                                       rel=1e-10, abs=1e-15), name
    assert example.error == pytest.approx(exact[next(s for s in exact if s.name == "E")], rel=1e-12)


def test_param_limits_a_small_network_to_those_parameters():
    text = explain(MAZUR, "txt", steps=0, params=["w6"])
    assert "dE/dw6 = " in text and "dE/dw5 = " not in text and "w6+ = " in text and "w5+ = " not in text
    assert "steps, each one like this" not in text


def test_nothing_from_a_spec_reaches_markup_unescaped(mazur):
    hostile = dataclasses.replace(mazur, sections=(Section("<b>x</b>", "a <script>alert(1)</script> _b_", ()),)
                                  + mazur.sections[1:])
    page = render(hostile, "html", 6)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    markdown = render(hostile, "md", 6)
    assert "<script>" not in markdown and r"\_b\_" in markdown
    assert markdown_escape("a_b*c [d](e) <f> & `g`") == r"a\_b\*c \[d\](e) &lt;f&gt; &amp; \`g\`"


# -- the command line ----------------------------------------------------------------------------

def test_cli_writes_each_format(tmp_path, capsys):
    for format in ("txt", "md", "html"):
        out = tmp_path / f"mazur.{format}"
        assert main(["explain", str(MAZUR), "--format", format, "--out", str(out), "--steps", "10"]) == 0
        assert "0.082167" in out.read_text(encoding="utf-8")
    assert main(["explain", str(MAZUR), "--digits", "9", "--steps", "1"]) == 0
    assert "0.0821670406" in capsys.readouterr().out


def test_cli_uses_a_values_file(tmp_path, capsys):
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"parameters": {"w5": 0.1}, "inputs": [1.0, 0.0], "targets": [0.5, 0.5]}))
    assert main(["explain", str(MAZUR), "--at", str(values), "--steps", "0"]) == 0
    text = capsys.readouterr().out
    assert "net_h1 = w1 · i1 + w2 · i2 + b1 = 0.15 × 1 + 0.2 × 0 + 0.35 = 0.5" in text
    assert "w5 = 0.1\n" in text


@pytest.mark.parametrize("arguments, message", [
    (["--steps", "-1"], "--steps"),
    (["--digits", "0"], "--digits"),
    (["--param", "w9"], '"w9" is not a parameter'),
    (["--format", "pdf"], "invalid choice"),
    (["--at", "/nonexistent/values.json"], "cannot read"),
])
def test_cli_user_errors_exit_2_with_one_line(capsys, arguments, message):
    try:
        status = main(["explain", str(MAZUR)] + arguments)
    except SystemExit as exit:  # argparse's own checks exit from parse_args
        status = exit.code
    assert status == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_cli_values_file_that_is_not_an_object_is_a_user_error(tmp_path, capsys):
    values = tmp_path / "values.json"
    values.write_text("[0.05, 0.1]")
    assert main(["explain", str(MAZUR), "--at", str(values)]) == 2
    assert "not an object" in capsys.readouterr().err


def test_cli_spec_without_an_example_is_a_user_error(tmp_path, capsys):
    spec = json.loads(MAZUR.read_text())
    del spec["example"]
    path = tmp_path / "no_example.json"
    path.write_text(json.dumps(spec))
    assert main(["explain", str(path)]) == 2
    assert "example" in capsys.readouterr().err


# -- several examples: nothing is dropped --------------------------------------------------------

def _three_examples(reduction: str, optimizer: dict | None = None, l2: float = 0.01) -> dict:
    spec = json.loads(MAZUR.read_text())
    spec["name"] = f"three_{reduction}"
    spec["example"] = {"inputs": [[0.05, 0.10], [0.3, -0.2], [1.0, 0.5]],
                       "targets": [[0.01, 0.99], [0.5, 0.2], [0.9, 0.1]]}
    spec["loss"] = {"name": "half_sse", "reduction": reduction}
    spec["layers"][1]["l2"] = l2
    if optimizer:
        spec["optimizer"] = optimizer
    return spec


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("optimizer", [None, {"name": "adam", "learning_rate": 0.05}])
def test_explain_reduces_every_example_like_the_generated_module(reduction, optimizer):
    """The error, dE/dp, the first step and the K steps all use the three examples, as m.step does."""
    import numpy as np

    spec = _three_examples(reduction, optimizer)
    module = symgrad.load(spec, backend="numpy")
    X, T = np.array(spec["example"]["inputs"]), np.array(spec["example"]["targets"])
    theta = module.initial_parameters()
    loss, grad = module.gradient(theta, X, T)
    example = worked_example(_gradients(spec), steps=25)
    assert example.error == pytest.approx(loss, rel=1e-12)
    assert [example.gradient[n] for n in module.PARAMETER_NAMES] == pytest.approx(list(grad), rel=1e-10, abs=1e-15)
    stepped = theta.copy()
    state = module.initial_state()
    module.step(stepped, X, T, state=state)
    assert [example.updated[n] for n in module.PARAMETER_NAMES] == pytest.approx(list(stepped), rel=1e-10)
    assert example.error_after_step == pytest.approx(module.loss(stepped, X, T), rel=1e-10)
    trained = theta.copy()
    module.train(trained, X, T, 25)
    assert example.descent.errors[-1] == pytest.approx(module.loss(trained, X, T), rel=1e-9)
    text = " ".join(render(example).split())
    assert "The spec's example holds 3 examples; the forward and backward passes below show example 1" in text
    assert f"{reduction} over all 3 examples" in text
    assert "each on all 3 examples" in text


def test_formulas_at_shows_each_example_and_their_reduction(tmp_path, capsys):
    import numpy as np

    for reduction in ("mean", "sum"):
        spec = _three_examples(reduction)
        path = tmp_path / f"{reduction}.json"
        path.write_text(json.dumps(spec))
        assert main(["formulas", str(path), "--at", "initial", "--digits", "12"]) == 0
        out = capsys.readouterr().out
        assert out.count("(example 3)") >= 10
        module = symgrad.load(spec, backend="numpy")
        X, T = np.array(spec["example"]["inputs"]), np.array(spec["example"]["targets"])
        _, grad = module.gradient(module.initial_parameters(), X, T)
        shown = dict(re.findall(rf"^dE/d(\w+) = .*?\n(?:\s+= .*\n)*?\s+= the {reduction} over the 3 examples.*= (\S+)$",
                                out, re.MULTILINE))
        assert sorted(shown) == sorted(module.PARAMETER_NAMES)
        for name, value in zip(module.PARAMETER_NAMES, grad):
            assert float(shown[name]) == pytest.approx(value, rel=1e-10, abs=1e-14), name


def test_a_values_file_with_half_an_example_is_refused_when_the_spec_has_several(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(_three_examples("mean")))
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"inputs": [0.1, 0.2]}))
    for command in ("formulas", "explain"):
        assert main([command, str(path), "--at", str(values)]) == 2
        assert '$.targets: the values file gives one example\'s inputs but not its targets' in capsys.readouterr().err


def test_explain_scales_the_steps_down_on_a_big_network_and_says_so(tmp_path):
    import subprocess
    import sys
    import time

    spec = json.loads((MAZUR.parent / "mnist_mlp.json").read_text())
    spec["example"] = {"inputs": [0.01 * (i % 10) for i in range(784)], "targets": [0.0] * 9 + [1.0]}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(spec))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "symgrad", "explain", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 60
    limit = symgrad.explain.STEP_BUDGET // 203530
    assert f"The error after {limit} steps" in result.stdout
    assert re.search(rf"not the 10000 asked for: explain runs at most {limit} steps on a network\s+of 203530 parameters",
                     result.stdout)


def test_a_big_network_reduces_every_example_too():
    """Past LAYER_RULE_LIMIT the values come from the float64 loop: the same reduction as the module's."""
    import numpy as np

    spec = json.loads((MAZUR.parent / "digits.json").read_text())
    spec.update(name="digits_three", dtype="float64", loss={"name": "cross_entropy", "reduction": "sum"})
    spec["example"] = {"inputs": [[0.1 * ((i + k) % 5) for i in range(64)] for k in range(3)],
                       "targets": [[1.0 if j == k else 0.0 for j in range(10)] for k in range(3)]}
    module = symgrad.load(spec, backend="numpy")
    X, T = np.array(spec["example"]["inputs"]), np.array(spec["example"]["targets"])
    loss, grad = module.gradient(module.initial_parameters(), X, T)
    example = worked_example(_gradients(spec), steps=3, params=["W1_0_0", "b2_3"])
    assert example.error == pytest.approx(loss, rel=1e-12)
    assert [example.gradient[n] for n in module.PARAMETER_NAMES] == pytest.approx(list(grad), rel=1e-9, abs=1e-13)
    text = " ".join(render(example).split())
    assert "Over all 3 examples (sum)" in text and "each on all 3 examples" in text
    assert "plus the penalty's derivative" not in text

"""symgrad's gradients against PyTorch autograd (float64), through tools/check_autodiff.py.

The reference network is written in torch from the spec's JSON (DESIGN.md section 4) and shares
no code with symgrad.  Skips when torch is not installed; the C backend is checked when it exists.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is optional: the autograd comparison needs it")

TOOL = Path(__file__).resolve().parent.parent / "tools" / "check_autodiff.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("symgrad_check_autodiff", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
# Mazur, both kinks, and random specs 0-12 (with 13 random cases every loss/output pairing of
# LOSS_OUTPUTS that matters comes up: half_sse/sse/mse over several outputs, cross_entropy,
# binary_cross_entropy after sigmoid and after softmax); picked to keep the test to seconds.
CASES = {case.label: case for case in tool.make_cases(count=24, seed=0) if not case.extended}
CHOSEN = ["mazur", "kink-0", "kink-1", "random-0", "random-5", "random-10", "random-21", "random-22", "random-23"]


@pytest.fixture(scope="module")
def torch_ops():
    return tool.TorchOps()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path_factory.getbasetemp() / "autodiff-cache"))


@pytest.mark.parametrize("form", ["scalar", "vector"])
@pytest.mark.parametrize("label", CHOSEN)
def test_numpy_gradient_matches_torch_autograd(label, form, torch_ops):
    outcome = tool.check_case(CASES[label], "numpy", form, [torch_ops])
    assert outcome.status == "ok", f"{label} ({CASES[label].what}), numpy/{form}: {outcome}"
    assert outcome.grad_err["torch"] <= 1e-10 and outcome.loss_err["torch"] <= 1e-10


@pytest.mark.parametrize("label", ["mazur", "kink-1", "random-22"])
def test_c_gradient_matches_torch_autograd(label, torch_ops):
    outcome = tool.check_case(CASES[label], "c", "auto", [torch_ops])
    if outcome.status == "n/a":
        pytest.skip(f"C backend: {outcome.note}")
    assert outcome.status == "ok", f"{label} ({CASES[label].what}), c: {outcome}"


def test_cases_cover_every_activation_loss_and_bias_mode():
    specs = [case.spec for case in tool.make_cases(count=24, seed=0) if not case.extended]
    acts, losses, biases = set(), set(), set()
    for spec in specs:
        loss = spec["loss"]
        losses.add(loss if isinstance(loss, str) else loss["name"])
        for layer in spec["layers"]:
            a = layer["activation"]
            acts.add(a if isinstance(a, str) else a["name"])
            b = layer.get("bias", "per_unit")
            biases.add(b if isinstance(b, str) else b["mode"])
    assert acts >= {"sigmoid", "tanh", "relu", "leaky_relu", "softplus", "linear", "softmax"}
    assert losses >= {"half_sse", "sse", "mse", "cross_entropy", "binary_cross_entropy"}
    assert biases >= {"per_unit", "shared", "none"}


def test_reference_is_not_trivially_agreeing(torch_ops):
    """The comparison can fail: a wrong gradient (one entry nudged) is caught."""
    import numpy as np

    case = CASES["random-0"]
    theta, X, T = tool.random_problem(case, tool.SpecShape(case.spec))
    loss, grad = tool.reference_gradient(torch_ops, case.spec, theta, X, T)
    wrong = grad.copy()
    wrong[0] += 1e-8 * np.max(np.abs(grad))
    assert tool.relative_error(grad, grad) == 0.0
    assert tool.relative_error(wrong, grad) > 1e-10

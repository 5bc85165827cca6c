"""The ONNX graph and the torch module against the generated module (and so against the references).

The generated module's forward and gradient are themselves checked against central differences
of an independent reference (conftest); here torch's autograd is a second, independent
differentiation of the same network, and onnxruntime a second evaluator of its forward pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad
from helpers import MAZUR, make_spec, random_problem
from symgrad.interop import from_torch, to_onnx, to_torch

CUSTOM = {"expr": "x/(1+abs(x)) + 0.1*sqrt(1+x**2) + max(x, 0)*0.5"}
ERF = {"expr": "erf(x) + 0.25*softplus(x)"}

CASES = {
    "sigmoid-half_sse-shared": ([3, 4, 2], ["sigmoid", "sigmoid"], "half_sse", "shared", {}),
    "tanh-mse-none": ([2, 5, 3], ["tanh", "linear"], "mse", "none", {}),
    "relu-softmax-ce": ([4, 6, 3], ["relu", "softmax"], {"name": "cross_entropy", "label_smoothing": 0.1},
                        "per_unit", {}),
    "leaky-sigmoid-bce": ([3, 4, 2], [{"name": "leaky_relu", "slope": 0.2}, "sigmoid"], "binary_cross_entropy",
                          "per_unit", {}),
    "softplus-sse-sum": ([2, 3, 3, 2], ["softplus", "tanh", "linear"], {"name": "sse", "reduction": "sum"},
                         "per_unit", {}),
    "custom-activation": ([3, 4, 2], [CUSTOM, "linear"], "half_sse", "per_unit", {}),
    "custom-loss": ([2, 3, 2], ["tanh", "sigmoid"], {"expr": "(o-t)**2/2 + 0.1*abs(o-t)"}, "per_unit", {}),
    "erf-activation": ([2, 3, 1], [ERF, "linear"], "half_sse", "per_unit", {}),
}


def _spec(case: str, dtype: str = "float64") -> dict:
    sizes, activations, loss, bias, extra = CASES[case]
    spec = make_spec(sizes, activations, loss, bias, dtype=dtype, **extra)
    spec["layers"][0]["l2"] = 0.01
    spec["layers"][-1]["l1"] = 0.02
    spec["layers"][-1]["regularize_bias"] = True
    return spec


def _frozen_spec() -> dict:
    """Some weights of a layer frozen, and a whole shared bias: masks and buffers."""
    spec = make_spec([3, 3, 2], ["sigmoid", "tanh"], "half_sse", "shared")
    spec["frozen"] = ["W1_0_1", "W1_2_0", "b2"]
    return spec


# -- torch ------------------------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="torch is optional: the torch bridge is checked where it is installed")


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_module_matches_forward_loss_and_gradient(case: str) -> None:
    torch = _torch()
    spec = _spec(case)
    module = symgrad.load(spec, backend="numpy")
    theta, X, T = random_problem(spec, module, rows=6, seed=3)
    network = to_torch(spec, theta)
    np.testing.assert_allclose(network(X).detach().numpy(), module.forward(theta, X), rtol=1e-12, atol=1e-14)
    loss = network.loss(torch.as_tensor(X), torch.as_tensor(T))
    loss.backward()
    expected_loss, expected_grad = module.gradient(theta, X, T)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-12, abs=1e-14)
    grad = network.as_theta(lambda key: getattr(network, key).grad.numpy())
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(from_torch(spec, network), theta)


def test_torch_frozen_parameters_get_no_gradient_and_shared_bias_stays_shared() -> None:
    torch = _torch()
    spec = _frozen_spec()
    module = symgrad.load(spec, backend="numpy")
    theta, X, T = random_problem(spec, module, rows=4, seed=1)
    network = to_torch(spec, theta)
    names = dict(network.named_parameters())
    assert "bias_1" not in names, "a wholly frozen tensor must be a buffer"
    assert names["bias_0"].shape == (), "a shared bias is one scalar"
    network.loss(torch.as_tensor(X), torch.as_tensor(T)).backward()
    _, expected = module.gradient(theta, X, T)
    index = {name: k for k, name in enumerate(module.PARAMETER_NAMES)}
    weight = network.weight_0.grad.numpy()
    assert weight[0, 1] == 0.0 and weight[2, 0] == 0.0
    assert weight[1, 1] == pytest.approx(expected[index["W1_1_1"]], rel=1e-10)
    assert float(network.bias_0.grad) == pytest.approx(expected[index["b1"]], rel=1e-10)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
    optimizer.step()
    after = from_torch(spec, network)
    for name in spec["frozen"]:
        assert after[index[name]] == theta[index[name]]
    assert after[index["W1_1_1"]] != theta[index["W1_1_1"]]


def test_from_torch_reads_a_sequential_of_linear_layers() -> None:
    torch = _torch()
    spec = make_spec([3, 4, 2], ["tanh", "linear"], "half_sse", "per_unit")
    torch.manual_seed(0)
    sequential = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    theta = from_torch(spec, sequential)
    module = symgrad.load(spec, backend="numpy")
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(module.forward(theta, X), sequential(torch.as_tensor(X)).detach().numpy(), rtol=1e-12)
    shared = make_spec([3, 4, 2], ["tanh", "linear"], "half_sse", "shared")
    with pytest.raises(symgrad.SpecError, match="shared"):
        from_torch(shared, sequential)
    with pytest.raises(symgrad.SpecError, match="Linear"):
        from_torch(make_spec([3, 2], ["linear"]), sequential)


def test_to_torch_rejects_a_theta_of_the_wrong_length() -> None:
    _torch()
    with pytest.raises(symgrad.SpecError, match="10 parameters"):
        to_torch(str(MAZUR), np.zeros(3))


# -- ONNX -------------------------------------------------------------------------------------------

def _session(model: bytes):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is optional: the graph is run where it is installed")
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_graph_equals_forward(case: str, dtype: str) -> None:
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    if case == "erf-activation" and dtype == "float64":
        pytest.skip("onnxruntime has no float64 Erf kernel (the graph itself is valid ONNX; float32 is checked)")
    spec = _spec(case, dtype)
    module = symgrad.load(spec, backend="numpy")
    theta, X, _ = random_problem(spec, module, rows=7, seed=5)
    X = np.concatenate([X, 30 * X[:2]])  # saturated units too
    graph = to_onnx(symgrad.parse_spec(spec), theta)
    (outputs,) = _session(graph).run(None, {"X": X.astype(dtype)})
    assert outputs.dtype == np.dtype(dtype)
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(outputs, module.forward(theta, X.astype(dtype)), rtol=tolerance, atol=tolerance)


def test_onnx_bytes_are_deterministic_and_carry_the_parameter_names() -> None:
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    spec = symgrad.parse_spec(str(MAZUR))
    first, second = to_onnx(spec), to_onnx(spec)
    assert first == second
    model = onnx.load_from_string(first)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["symgrad.parameter_names"].split(",") == list(spec.parameter_names)


def test_onnx_without_the_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(symgrad.SpecError, match=r"pip install 'symgrad\[onnx\]'"):
        to_onnx(symgrad.parse_spec(str(MAZUR)))


def export_onnx(spec, out, init):
    """``python -m symgrad export SPEC --target onnx --out OUT --init INIT``, in this process; its file's size."""
    from symgrad.cli import main

    status = main(["export", spec, "--target", "onnx", "--out", str(out), "--init", str(init)])
    if status != 0:
        raise symgrad.DataError(f"export exited {status}")
    return Path(out).stat().st_size


def test_export_onnx_writes_the_trained_parameters(tmp_path, capsys) -> None:
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    from symgrad.training import save_parameters

    module = symgrad.load(str(MAZUR), backend="numpy")
    theta = module.initial_parameters()
    X = np.array([[0.05, 0.10]])
    T = np.array([[0.01, 0.99]])
    module.train(theta, X, T, 50)
    save_parameters(tmp_path / "theta.npz", module, theta, module.initial_state(), epochs=50)
    size = export_onnx(str(MAZUR), tmp_path / "mazur.onnx", tmp_path / "theta.npz")
    assert size == (tmp_path / "mazur.onnx").stat().st_size
    (outputs,) = _session((tmp_path / "mazur.onnx").read_bytes()).run(None, {"X": X})
    np.testing.assert_allclose(outputs, module.forward(theta, X), rtol=1e-12)
    other = tmp_path / "other.npz"
    np.savez(other, theta=np.zeros(3), parameter_names=np.array(["a", "b", "c"]))
    capsys.readouterr()
    with pytest.raises(symgrad.DataError, match="exited 2"):
        export_onnx(str(MAZUR), tmp_path / "bad.onnx", other)
    assert "10 parameters" in capsys.readouterr().err
    assert not (tmp_path / "bad.onnx").exists()


def test_the_package_face_offers_the_bridges() -> None:
    assert symgrad.to_torch is to_torch and symgrad.from_torch is from_torch and symgrad.to_onnx is to_onnx

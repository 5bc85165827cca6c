"""Learning-rate schedules (DESIGN.md section 10) against torch.optim.lr_scheduler and by their definitions.

* Each schedule's rate, from the optimizer table and from the generated ``learning_rate(epoch)``,
  against PyTorch's documented closed forms written here and, where installed, against
  torch.optim.lr_scheduler itself (stepped once per epoch, its own recursive form).
* 10 epochs of ``train`` (three minibatches each) with SGD with momentum and with Adam, on both
  backends, against torch.optim with the same schedule to 1e-10 in float64.
* The epoch count lives in the optimizer state: 4 epochs, then 6 resumed from the saved state, equal
  10 epochs bit for bit; ``step`` and ``update`` take the rate of the state's epoch; symgrad.distributed
  counts epochs like train.
* Bad schedules are refused with their JSON path.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest

import symgrad
from helpers import make_spec
from symgrad import compiler
from symgrad.optimizers import SCHEDULES, resolve_schedule

#: Every schedule, with PyTorch's defaults and with options of its own.
SCHEDULE_CASES = [
    {"name": "step", "step_size": 3},
    {"name": "step", "step_size": 2, "gamma": 0.5},
    {"name": "multistep", "milestones": [2, 5, 6]},
    {"name": "multistep", "milestones": [1, 4], "gamma": 0.3},
    {"name": "exponential", "gamma": 0.8},
    {"name": "cosine", "T_max": 4},  # 10 epochs: down, and up again past T_max
    {"name": "cosine", "T_max": 7, "eta_min": 0.001},
    {"name": "linear"},
    {"name": "linear", "start_factor": 0.5, "end_factor": 0.1, "total_iters": 6},
]
OPTIMIZER_CASES = [
    {"name": "sgd", "learning_rate": 0.3, "momentum": 0.9},
    {"name": "adam", "learning_rate": 0.05},
]
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(compiler.unavailable_reason() is not None,
                                                                 reason="no C compiler"))]
EPOCHS, ROWS, BATCH = 10, 12, 4


def _id(case: dict) -> str:
    return "-".join([case["name"]] + [f"{k}={v}" for k, v in case.items() if k != "name"])


def documented_rate(schedule: dict, base: float, epoch: int) -> float:
    """PyTorch's documented closed forms (the _get_closed_form_lr of each scheduler), written from its docs."""
    name = schedule["name"]
    if name == "step":
        return base * schedule.get("gamma", 0.1) ** (epoch // schedule["step_size"])
    if name == "multistep":
        return base * schedule.get("gamma", 0.1) ** bisect.bisect_right(schedule["milestones"], epoch)
    if name == "exponential":
        return base * schedule["gamma"] ** epoch
    if name == "cosine":
        eta_min = schedule.get("eta_min", 0.0)
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / schedule["T_max"])) / 2
    start, end, total = schedule.get("start_factor", 1 / 3), schedule.get("end_factor", 1.0), \
        schedule.get("total_iters", 5)
    return base * (start + (end - start) * min(total, epoch) / total)


def torch_scheduler(torch, optimizer, schedule: dict):
    options = {key: value for key, value in schedule.items() if key != "name"}
    kind = {"step": "StepLR", "multistep": "MultiStepLR", "exponential": "ExponentialLR",
            "cosine": "CosineAnnealingLR", "linear": "LinearLR"}[schedule["name"]]
    return getattr(torch.optim.lr_scheduler, kind)(optimizer, **options)


def _spec(optimizer: dict, schedule: dict) -> dict:
    return make_spec([3, 4, 2], ["tanh", "sigmoid"], "half_sse", optimizer={**optimizer, "schedule": schedule},
                     frozen=["W1_1_1"])


def _problem(seed: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(ROWS, 3)), rng.uniform(size=(ROWS, 2))


def test_every_schedule_is_covered():
    assert {case["name"] for case in SCHEDULE_CASES} == set(SCHEDULES)


@pytest.mark.parametrize("schedule", SCHEDULE_CASES, ids=_id)
def test_table_rate_is_the_documented_closed_form(schedule):
    resolved = resolve_schedule(schedule)
    for epoch in range(30):
        assert resolved.rate(0.3, epoch) == pytest.approx(documented_rate(schedule, 0.3, epoch), rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("schedule", SCHEDULE_CASES, ids=_id)
def test_generated_rate_matches_torch_lr_scheduler(schedule):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; lr_scheduler comparison skipped")
    module = symgrad.load(_spec(OPTIMIZER_CASES[0], schedule), backend="numpy")
    parameter = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=module.LEARNING_RATE)
    scheduler = torch_scheduler(torch, optimizer, schedule)
    for epoch in range(30):
        expected = scheduler.get_last_lr()[0]
        assert module.learning_rate(epoch) == pytest.approx(expected, rel=1e-12, abs=1e-15), epoch
        assert module.learning_rate(epoch) == pytest.approx(documented_rate(schedule, 0.3, epoch), rel=1e-14,
                                                            abs=1e-300)
        optimizer.step()
        scheduler.step()
    assert module.SCHEDULE == {"name": schedule["name"], **dict(resolve_schedule(schedule).options)}


def _torch_training(torch, module, optimizer_config: dict, schedule: dict, theta: np.ndarray, X, T) -> np.ndarray:
    """torch.optim and torch.optim.lr_scheduler on the module's minibatch gradients, one scheduler step per epoch."""
    parameter = torch.tensor(theta.copy(), dtype=torch.float64, requires_grad=True)
    options = {key: value for key, value in optimizer_config.items() if key not in ("name", "learning_rate")}
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer_config["name"]]
    optimizer = kind([parameter], lr=optimizer_config["learning_rate"], **options)
    scheduler = torch_scheduler(torch, optimizer, schedule)
    frozen = module.PARAMETER_NAMES.index("W1_1_1")
    for _ in range(EPOCHS):
        for start in range(0, ROWS, BATCH):
            _, grad = module.gradient(parameter.detach().numpy().copy(), X[start:start + BATCH], T[start:start + BATCH])
            keep = parameter.detach()[frozen].item()
            parameter.grad = torch.tensor(grad)
            optimizer.step()
            with torch.no_grad():
                parameter[frozen] = keep
        scheduler.step()
    return parameter.detach().numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES, ids=lambda c: c["name"])
@pytest.mark.parametrize("schedule", SCHEDULE_CASES, ids=_id)
def test_ten_epochs_match_torch(schedule, optimizer, backend):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; torch.optim comparison skipped")
    module = symgrad.load(_spec(optimizer, schedule), backend=backend)
    X, T = _problem()
    theta = np.random.default_rng(4).normal(size=module.N_PARAMETERS)
    expected = _torch_training(torch, module, optimizer, schedule, theta, X, T)
    state = module.initial_state()
    module.train(theta, X, T, EPOCHS, batch_size=BATCH, state=state)
    np.testing.assert_allclose(theta, expected, rtol=1e-10, atol=1e-12)
    assert state[dict((part, start) for part, start, _ in module.STATE_LAYOUT)["epoch"]] == EPOCHS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("schedule", SCHEDULE_CASES[::2], ids=_id)
def test_ten_epochs_by_the_documented_rule(schedule, backend):
    """Without PyTorch: plain SGD, every minibatch step p -= rate(epoch) * dE/dp, rate from the closed form."""
    module = symgrad.load(_spec({"name": "sgd", "learning_rate": 0.3}, schedule), backend=backend)
    X, T = _problem()
    theta = np.random.default_rng(5).normal(size=module.N_PARAMETERS)
    expected = theta.copy()
    trainable = np.array([name != "W1_1_1" for name in module.PARAMETER_NAMES])
    for epoch in range(EPOCHS):
        rate = documented_rate(schedule, 0.3, epoch)
        for start in range(0, ROWS, BATCH):
            _, grad = module.gradient(expected, X[start:start + BATCH], T[start:start + BATCH])
            expected = expected - rate * grad * trainable
    module.train(theta, X, T, EPOCHS, batch_size=BATCH, state=module.initial_state())
    np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES + [{"name": "sgd", "learning_rate": 0.3}],
                         ids=lambda c: c["name"])
def test_four_epochs_and_six_resumed_equal_ten(optimizer, backend):
    module = symgrad.load(_spec(optimizer, {"name": "cosine", "T_max": 6, "eta_min": 0.01}), backend=backend)
    X, T = _problem()
    start = np.random.default_rng(6).normal(size=module.N_PARAMETERS)
    straight, state = start.copy(), module.initial_state()
    straight_losses = module.train(straight, X, T, 10, batch_size=BATCH, state=state)
    resumed, saved = start.copy(), module.initial_state()
    first = module.train(resumed, X, T, 4, batch_size=BATCH, state=saved)
    saved_theta, saved_state = resumed.copy(), saved.copy()  # what --save keeps
    rest = module.train(saved_theta, X, T, 6, batch_size=BATCH, state=saved_state)
    np.testing.assert_array_equal(saved_theta, straight)
    np.testing.assert_array_equal(saved_state, state)
    np.testing.assert_array_equal(np.concatenate([first, rest]), straight_losses)


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_and_update_use_the_rate_of_the_states_epoch(backend):
    module = symgrad.load(_spec({"name": "sgd", "learning_rate": 0.3}, {"name": "step", "step_size": 2, "gamma": 0.5}),
                          backend=backend)
    X, T = _problem()
    theta = np.random.default_rng(7).normal(size=module.N_PARAMETERS)
    trainable = np.array([name != "W1_1_1" for name in module.PARAMETER_NAMES])
    epoch_index = dict((part, start) for part, start, _ in module.STATE_LAYOUT)["epoch"]
    for epoch in (0, 3, 5):
        state = module.initial_state()
        state[epoch_index] = epoch
        _, grad = module.gradient(theta, X, T)
        stepped, updated = theta.copy(), theta.copy()
        module.step(stepped, X, T, state=state.copy())
        module.update(updated, grad, state.copy())
        expected = theta - 0.3 * 0.5 ** (epoch // 2) * grad * trainable
        np.testing.assert_allclose(stepped, expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(updated, expected, rtol=1e-13, atol=1e-15)
        assert state[epoch_index] == epoch  # a step is not an epoch: only train counts them
    with pytest.raises(ValueError, match="state"):
        module.step(theta.copy(), X, T)


def test_backends_agree_and_float32_too():
    if compiler.unavailable_reason() is not None:
        pytest.skip("no C compiler")
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        spec = {**_spec(OPTIMIZER_CASES[1], {"name": "linear", "total_iters": 3}), "dtype": dtype}
        c_module, numpy_module = symgrad.load(spec, backend="c"), symgrad.load(spec, backend="numpy")
        X, T = (a.astype(dtype) for a in _problem())
        thetas, states = [], []
        for module in (c_module, numpy_module):
            theta, state = module.initial_parameters(), module.initial_state()
            module.train(theta, X, T, 8, batch_size=BATCH, shuffle=True, seed=2, state=state)
            thetas.append(theta)
            states.append(state)
        np.testing.assert_allclose(thetas[0], thetas[1], rtol=rtol, atol=rtol * np.abs(thetas[1]).max())
        assert states[0][-1] == states[1][-1] == 8


def test_distributed_fit_counts_epochs_like_train():
    from symgrad import distributed

    spec = _spec(OPTIMIZER_CASES[0], {"name": "exponential", "gamma": 0.7})
    module = symgrad.load(spec, backend="numpy")
    X, T = _problem()
    theta, state = module.initial_parameters(), module.initial_state()
    losses = module.train(theta, X, T, 6, state=state)
    fitted, fitted_state, fitted_losses = distributed.fit(spec, X, T, epochs=6, chunk_rows=5, backend="numpy")
    np.testing.assert_allclose(fitted, theta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fitted_losses, losses, rtol=1e-12)
    assert fitted_state[-1] == state[-1] == 6


@pytest.mark.parametrize("schedule, words", [
    ({"name": "step"}, r'\$\.optimizer\.schedule: the step schedule needs "step_size"'),
    ({"name": "exponential"}, 'needs "gamma"'),
    ({"name": "cosine", "eta_min": 0.0}, 'needs "T_max"'),
    ({"name": "step", "step_size": 2, "T_max": 3}, r'schedule\.T_max: the step schedule has no option "T_max"'),
    ({"name": "multistep", "milestones": [3, 3]}, r"milestones\[1\]: 3 does not come after 3"),
    ({"name": "multistep", "milestones": []}, "needs at least 1 item"),
    ({"name": "warmup"}, r'schedule\.name: "warmup" is not a known schedule'),
    ({"name": "linear", "start_factor": 0}, "must be greater than 0"),
    ({"name": "linear", "end_factor": 1.5}, "above the maximum 1"),
    ({"name": "step", "step_size": 0}, "below the minimum 1"),
    ({"name": "step", "step_size": 2.5}, "expected an integer"),
    ({"step_size": 2}, 'missing required key "name"'),
    ("cosine", "expected an object"),
])
def test_bad_schedules_are_refused_with_their_path(schedule, words):
    with pytest.raises(symgrad.SpecError, match=words):
        symgrad.parse_spec(make_spec([2, 1], ["linear"], "mse",
                                     optimizer={"name": "sgd", "learning_rate": 0.1, "schedule": schedule}))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_resume_with_a_schedule_equals_one_run(tmp_path, capsys, backend):
    """train --epochs 4 --save, then --epochs 6 --init: the bits of --epochs 10 (the epoch count is in the state)."""
    import json

    from symgrad.cli import main

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(_spec({"name": "adam", "learning_rate": 0.05},
                                          {"name": "step", "step_size": 3, "gamma": 0.5})))
    X, T = _problem()
    np.savez(tmp_path / "data.npz", X=X, T=T)
    common = ["train", str(spec_path), "--data", str(tmp_path / "data.npz"), "--batch-size", "5", "--seed", "3",
              "--backend", backend]
    assert main(common + ["--epochs", "10", "--save", str(tmp_path / "straight.npz")]) == 0
    assert main(common + ["--epochs", "4", "--save", str(tmp_path / "first.npz")]) == 0
    assert main(common + ["--epochs", "6", "--init", str(tmp_path / "first.npz"),
                          "--save", str(tmp_path / "resumed.npz")]) == 0
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    np.testing.assert_array_equal(straight["theta"], resumed["theta"])
    np.testing.assert_array_equal(straight["state"], resumed["state"])
    assert straight["state"][-1] == 10
    out = capsys.readouterr().out.splitlines()
    last = [line for line in out if line.startswith("trained")][-1]
    assert "the rate times 0.5 every 3 epochs (StepLR): 0.00625 in the last epoch" in last
    # 0.00625 = 0.05 * 0.5**(9 // 3): the resumed run knew it ended in epoch 9, not 5

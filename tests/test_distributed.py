"""symgrad.distributed: fit and sweep, bitwise the same in-process, on one worker and on two, and
unchanged when a worker is killed mid-run (SIGKILL; the nanny starts a new one).  The cluster
tests skip cleanly without Dask; the message that says how to install it is tested either way."""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np
import pytest

import symgrad
from helpers import MAZUR, early_stop, make_spec
from symgrad.distributed import apply_overrides, fit, grid_points, pairwise, sweep, sweep_document


def _problem(rows: int = 1000, seed: int = 0, optimizer: dict | None = None, reduction: str = "mean"):
    spec = make_spec([4, 6, 3], ["tanh", "sigmoid"], {"name": "half_sse", "reduction": reduction},
                     optimizer=optimizer or {"name": "adam", "learning_rate": 0.01}, frozen=["W1_0_0"])
    spec["layers"][0]["l2"] = 0.001
    spec["layers"][1]["l1"] = 0.002
    spec["initial"] = {"seed": 3}
    rng = np.random.default_rng(seed)
    return spec, rng.normal(size=(rows, 4)), rng.uniform(size=(rows, 3))


@pytest.fixture(scope="module")
def distributed():
    return pytest.importorskip("dask.distributed", reason="dask[distributed] is optional (pip install 'symgrad[dask]')")


@pytest.fixture(scope="module")
def client(distributed):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


def _kill_a_worker(client, busy: bool) -> int | None:
    """SIGKILL the process of a worker that holds data (or, busy, has a task to run now); its pid."""
    holders = client.processing() if busy else client.has_what()
    address = next((address for address, keys in sorted(holders.items()) if keys), None)
    if address is None:
        return None
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    return pid


def test_pairwise_is_a_fixed_tree() -> None:
    assert pairwise(["a", "b", "c", "d", "e"], lambda x, y: f"({x}+{y})") == "(((a+b)+(c+d))+e)"
    assert pairwise(["a"], lambda x, y: x + y) == "a"


@pytest.mark.parametrize("optimizer, reduction", [({"name": "adam", "learning_rate": 0.01}, "mean"),
                                                  ({"name": "sgd", "learning_rate": 0.5}, "sum")])
def test_fit_in_process_equals_the_modules_full_batch_train(optimizer, reduction) -> None:
    spec, X, T = _problem(optimizer=optimizer, reduction=reduction)
    if reduction == "sum":
        X, T = X[:100], T[:100]
    seen = []
    theta, state, losses = fit(spec, X, T, epochs=8, chunk_rows=96, progress=lambda e, *_: seen.append(e))
    module = symgrad.load(spec)
    expected = module.initial_parameters()
    expected_state = module.initial_state()
    expected_losses = module.train(expected, X, T, 8, batch_size=None, state=expected_state)
    np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state, expected_state, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
    assert seen == list(range(1, 9))
    resumed = fit(spec, X, T, epochs=3, chunk_rows=96, theta=theta, state=state)
    both = fit(spec, X, T, epochs=11, chunk_rows=96)
    np.testing.assert_array_equal(resumed[0], both[0])


def test_fit_refuses_bad_arguments() -> None:
    spec, X, T = _problem(rows=10)
    with pytest.raises(symgrad.SpecError, match=r"T: has shape \(9, 3\)"):
        fit(spec, X, T[:9], epochs=1)
    with pytest.raises(symgrad.SpecError, match="epochs"):
        fit(spec, X, T, epochs=0)
    with pytest.raises(symgrad.SpecError, match="chunk_rows"):
        fit(spec, X, T, epochs=1, chunk_rows=0)
    with pytest.raises(symgrad.SpecError, match=r"theta: has shape \(3,\)"):
        fit(spec, X, T, epochs=1, theta=np.zeros(3))


def test_fit_is_bitwise_the_same_in_process_on_one_worker_and_on_two(distributed, client) -> None:
    spec, X, T = _problem()
    local = fit(spec, X, T, epochs=5, chunk_rows=100)
    with distributed.get_task_stream(client=client) as stream:  # where each task ran, kept after the run
        two = fit(spec, X, T, epochs=5, chunk_rows=100, client=client)
    ran_on = {task["worker"] for task in stream.data if task["key"].startswith("symgrad-sum-")}
    assert len(ran_on) == 2, f"the chunks' sums should be spread over both workers, ran on {ran_on}"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as one, \
            distributed.Client(one) as one_client:
        one = fit(spec, X, T, epochs=5, chunk_rows=100, client=one_client)
    for result in (one, two):
        for got, expected in zip(result, local):
            np.testing.assert_array_equal(got, expected)


def test_fit_reads_dask_arrays_chunk_by_chunk(client) -> None:
    da = pytest.importorskip("dask.array")
    spec, X, T = _problem()
    local = fit(spec, X, T, epochs=3, chunk_rows=250)
    lazy_X, lazy_T = da.from_array(X, chunks=(250, 4)), da.from_array(T, chunks=(500, 3))
    np.testing.assert_array_equal(fit(spec, lazy_X, lazy_T, epochs=3, client=client)[0], local[0])
    np.testing.assert_array_equal(fit(spec, lazy_X, lazy_T, epochs=3)[0], local[0])


def test_fit_survives_a_worker_killed_mid_run(client, monkeypatch) -> None:
    import symgrad.distributed

    monkeypatch.setattr(symgrad.distributed, "_INLINE_THETA_BYTES", 0)  # theta as a task of its own, as when large
    spec, X, T = _problem(rows=2000)
    local = fit(spec, X, T, epochs=12, chunk_rows=100)
    killed = []

    def kill_at_epoch_4(epoch, loss, theta, state):
        if epoch == 4:
            killed.append(_kill_a_worker(client, busy=False))
            assert killed[0] is not None

    result = fit(spec, X, T, epochs=12, chunk_rows=100, client=client, progress=kill_at_epoch_4)
    for got, expected in zip(result, local):
        np.testing.assert_array_equal(got, expected)
    client.wait_for_workers(2, timeout=60)
    assert killed and killed[0] not in client.run(os.getpid).values(), "the killed worker was not replaced"


SWEEP_GRID = {"layers.0.units": [3, 5]}
SWEEP_SEEDS = (0, 7)


def _in_process(spec, result, X, T, epochs, batch_size):
    module = symgrad.load(sweep_document(spec, result["overrides"], result["seed"]))
    theta = module.initial_parameters()
    losses = module.train(theta, X, T, epochs, batch_size=batch_size, shuffle=True, seed=result["seed"])
    return theta, losses


def test_sweep_results_are_bitwise_what_training_in_process_gives(client) -> None:
    spec, X, T = _problem(rows=300)
    done = []
    results = sweep(spec, SWEEP_GRID, X, T, epochs=3, batch_size=32, seeds=SWEEP_SEEDS, client=client,
                    validation=(X[:20], np.eye(3)[np.arange(20) % 3]), progress=lambda *args: done.append(args[:2]))
    assert [(r["overrides"], r["seed"]) for r in results] == [(o, s) for o in grid_points(SWEEP_GRID)
                                                              for s in SWEEP_SEEDS]
    assert done == [(k, 4) for k in range(1, 5)]
    for result in results:
        theta, losses = _in_process(spec, result, X, T, 3, 32)
        np.testing.assert_array_equal(result["theta"], theta)
        np.testing.assert_array_equal(result["losses"], losses)
        assert 0 <= result["validation_accuracy"] <= 1 and result["validation_loss"] > 0
    local = sweep(spec, SWEEP_GRID, X, T, epochs=3, batch_size=32, seeds=SWEEP_SEEDS)
    for a, b in zip(results, local):
        np.testing.assert_array_equal(a["theta"], b["theta"])


def test_sweep_survives_a_worker_killed_mid_run(client) -> None:
    spec, X, T = _problem(rows=2000)
    killed = []

    def kill_after_the_first(done, total, result):
        if not killed and done < total:
            pid = _kill_a_worker(client, busy=True)
            if pid is not None:
                killed.append(pid)

    results = sweep(spec, SWEEP_GRID, X, T, epochs=150, batch_size=8, seeds=SWEEP_SEEDS, client=client,
                    progress=kill_after_the_first)
    assert killed, "no worker was busy when a model finished; make the models longer"
    for result in results:
        np.testing.assert_array_equal(result["theta"], _in_process(spec, result, X, T, 150, 8)[0])
    client.wait_for_workers(2, timeout=60)


def test_overrides_follow_dotted_paths_and_refuse_missing_items() -> None:
    spec, _, _ = _problem()
    changed = apply_overrides(spec, {"optimizer.learning_rate": 0.3, "layers.1.activation": "tanh"})
    assert changed["optimizer"]["learning_rate"] == 0.3 and changed["layers"][1]["activation"] == "tanh"
    assert spec["optimizer"]["learning_rate"] == 0.01, "the original is not changed"
    assert sweep_document(spec, {}, 5)["initial"] == {"seed": 5}
    with pytest.raises(symgrad.SpecError, match=r"\$\.layers\.5"):
        apply_overrides(spec, {"layers.5.units": 3})
    with pytest.raises(symgrad.SpecError, match="grid point"):
        sweep(spec, {"layers.0.activation": ["nope"]}, np.zeros((2, 4)), np.zeros((2, 3)), epochs=1)
    with pytest.raises(symgrad.SpecError, match="seeds"):
        grid_points({"initial.seed": [1, 2]})
def test_without_dask_the_cluster_options_say_how_to_install_it(monkeypatch, capsys, tmp_path) -> None:
    from symgrad.cli import main

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import dask.distributed now fails
    spec, X, T = _problem(rows=10)
    spec_path, data = tmp_path / "spec.json", tmp_path / "data.npz"
    spec_path.write_text(json.dumps(spec))
    np.savez(data, X=X, T=T)
    for argv in (["train", str(spec_path), "--data", str(data), "--workers", "2"],
                 ["sweep", str(spec_path), "--grid", str(spec_path), "--data", str(data), "--workers", "2",
                  "--out", str(tmp_path / "r.json")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "pip install 'symgrad[dask]'" in err and len(err.strip().splitlines()) == 1, err


def test_train_with_workers_or_a_scheduler_is_fit_on_the_same_rows(client, tmp_path, capsys) -> None:
    from symgrad import training
    from symgrad.cli import main

    spec, X, T = _problem(rows=300)
    spec_path, data, saved = tmp_path / "spec.json", tmp_path / "data.npz", tmp_path / "theta.npz"
    spec_path.write_text(json.dumps(spec))
    np.savez(data, X=X, T=T)
    assert main(["train", str(spec_path), "--data", str(data), "--epochs", "6", "--workers", "2", "--chunk-rows",
                 "64", "--validation-split", "0.2", "--seed", "4", "--save", str(saved), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on a Dask cluster of 2 worker(s): 4 chunk(s) of up to 64 rows" in out and "validation error" in out
    train_set, _ = training.split(training.load_data(data, symgrad.parse_spec(spec)), 0.2, 4)
    theta, state, _ = fit(spec, train_set.X, train_set.T, epochs=6, chunk_rows=64)
    checkpoint = training.load_checkpoint(saved, symgrad.load(spec))
    np.testing.assert_array_equal(checkpoint.theta, theta)
    np.testing.assert_array_equal(checkpoint.state, state)
    again = tmp_path / "again.npz"
    assert main(["train", str(spec_path), "--data", str(data), "--epochs", "6", "--scheduler",
                 client.scheduler.address, "--chunk-rows", "64", "--validation-split", "0.2", "--seed", "4",
                 "--save", str(again), "--quiet"]) == 0
    np.testing.assert_array_equal(training.load_checkpoint(again, symgrad.load(spec)).theta, theta)


def test_fit_stops_where_progress_says_so() -> None:
    spec, X, T = _problem()
    theta, state, losses = fit(spec, X, T, epochs=20, chunk_rows=100, progress=lambda e, *_: e == 3)
    expected = fit(spec, X, T, epochs=3, chunk_rows=100)
    assert len(losses) == 3
    for got, wanted in zip((theta, state, losses), expected):
        np.testing.assert_array_equal(got, wanted)


def test_train_with_workers_stops_early_and_saves_the_best(client, tmp_path, capsys) -> None:
    """The expected stop and parameters come from fit without patience, the rule written out here."""
    from symgrad import training
    from symgrad.cli import main

    spec, X, T = _problem(rows=300, optimizer={"name": "sgd", "learning_rate": 0.5, "momentum": 0.9})
    T[:60] = T[::-1][:60]  # held-out rows that disagree with the training ones, so the run overfits
    spec_path, data, saved = tmp_path / "spec.json", tmp_path / "data.npz", tmp_path / "best.npz"
    spec_path.write_text(json.dumps(spec))
    np.savez(data, X=X, T=T)
    module = symgrad.load(spec)
    train_set, validation = training.split(training.load_data(data, symgrad.parse_spec(spec)), 0.2, 4)
    curve, kept = [], {}

    def watch(epoch, loss, theta, state):
        curve.append(module.loss(theta, validation.X, validation.T))
        kept[epoch] = theta.copy(), state.copy()

    fit(spec, train_set.X, train_set.T, epochs=200, chunk_rows=64, progress=watch)
    patience = 3
    best, stop = early_stop(curve, patience)
    assert stop is not None, "the problem must overfit within 200 epochs for this test to mean anything"
    assert main(["train", str(spec_path), "--data", str(data), "--epochs", "200", "--workers", "2", "--chunk-rows",
                 "64", "--validation-split", "0.2", "--seed", "4", "--patience", str(patience),
                 "--save", str(saved), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"stopped early after epoch {stop}:" in out and f"kept epoch {best}'s parameters" in out, out
    checkpoint = training.load_checkpoint(saved, module)
    np.testing.assert_array_equal(checkpoint.theta, kept[best][0])
    np.testing.assert_array_equal(checkpoint.state, kept[best][1])
    assert checkpoint.epochs == best


def test_sweep_command_writes_one_row_per_model(client, tmp_path, capsys) -> None:
    from symgrad import training
    from symgrad.cli import main

    spec, X, T = _problem(rows=200)
    labels = np.argmax(T, axis=1)
    paths = {name: tmp_path / name for name in ("spec.json", "grid.json", "data.npz", "results.json", "saved")}
    paths["spec.json"].write_text(json.dumps(spec))
    paths["grid.json"].write_text(json.dumps(SWEEP_GRID))
    np.savez(paths["data.npz"], X=X, y=labels)
    assert main(["sweep", str(paths["spec.json"]), "--grid", str(paths["grid.json"]), "--data", str(paths["data.npz"]),
                 "--scheduler", client.scheduler.address, "--out", str(paths["results.json"]), "--epochs", "3",
                 "--batch-size", "16",
                 "--seeds", "0,7", "--validation-split", "0.25", "--save-dir", str(paths["saved"]), "--quiet"]) == 0
    assert "trained 4 model(s)" in capsys.readouterr().out
    rows = json.loads(paths["results.json"].read_text())["models"]
    assert [(row["overrides"], row["seed"]) for row in rows] == [(o, s) for o in grid_points(SWEEP_GRID)
                                                                 for s in SWEEP_SEEDS]
    train_set, validation = training.split(training.load_data(paths["data.npz"], symgrad.parse_spec(spec)), 0.25, 0)
    for row in rows:
        theta, losses = _in_process(spec, row, train_set.X, train_set.T, 3, 16)
        module = symgrad.load(sweep_document(spec, row["overrides"], row["seed"]))
        np.testing.assert_array_equal(training.load_checkpoint(row["parameters"], module).theta, theta)
        assert row["losses"] == losses.tolist()
        assert row["final_loss"] == module.loss(theta, train_set.X, train_set.T)
        assert row["validation_loss"] == module.loss(theta, validation.X, validation.T)
        assert row["validation_accuracy"] == training.accuracy(module, theta, validation)


def test_a_sweep_of_too_many_models_or_repeated_seeds_is_refused_before_any_work() -> None:
    from symgrad.distributed import MAX_MODELS, iter_sweep

    X, T = np.zeros((4, 2)), np.zeros((4, 2))
    huge = {"optimizer.learning_rate": [0.1] * 1000, "optimizer.momentum": [0.5] * 1000}
    with pytest.raises(symgrad.SpecError, match=r"1,000,000 grid point\(s\) make 1,000,000 models, more than"):
        grid_points(huge)
    grid = {"optimizer.learning_rate": [0.1, 0.2]}
    seeds = range(MAX_MODELS // 2 + 1)
    with pytest.raises(symgrad.SpecError, match=r"2 grid point\(s\) x 5,001 seeds make 10,002 models"):
        next(iter_sweep(MAZUR, grid, X, T, epochs=1, seeds=seeds))
    with pytest.raises(symgrad.SpecError, match="lists a seed twice"):
        next(iter_sweep(MAZUR, grid, X, T, epochs=1, seeds=[0, 1, 0]))


def test_a_grid_point_that_breaks_the_spec_is_named_even_when_it_holds_nan() -> None:
    from symgrad.distributed import iter_sweep

    X, T = np.zeros((4, 2)), np.zeros((4, 2))
    with pytest.raises(symgrad.SpecError, match=r'grid point \{"optimizer.learning_rate":NaN\}: .*finite numbers'):
        next(iter_sweep(MAZUR, {"optimizer.learning_rate": [float("nan")]}, X, T, epochs=1))
    deep = "optimizer." + "x." * 500 + "y"
    with pytest.raises(symgrad.SpecError) as error:
        next(iter_sweep(MAZUR, {deep: [1]}, X, T, epochs=1))
    assert len(str(error.value)) < 1000 and "..." in str(error.value)


def test_a_local_cluster_of_absurd_size_is_refused() -> None:
    from symgrad.distributed import MAX_LOCAL_WORKERS, check_workers

    check_workers(MAX_LOCAL_WORKERS)
    for workers, words in ((MAX_LOCAL_WORKERS + 1, "more than a local cluster starts"), (10**30, "more than"),
                           (0, "not a number of workers"), (True, "not a number of workers")):
        with pytest.raises(symgrad.SpecError, match=words):
            check_workers(workers)

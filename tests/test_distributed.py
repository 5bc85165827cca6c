"""symgrad.distributed: fit and sweep, bitwise the same in-process, on one worker and on two, and
unchanged when a worker is killed mid-run.  Skipped cleanly without Dask."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import symgrad
from conftest import make_spec

distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is optional (pip install 'symgrad[dask]')")
from symgrad.distributed import apply_overrides, fit, grid_points, pairwise, sweep, sweep_document  # noqa: E402



def _problem(rows: int = 1000, seed: int = 0):
    spec = make_spec([4, 6, 3], ["tanh", "sigmoid"], "half_sse", "per_unit")
    spec["layers"][0]["l2"] = 0.001
    spec["optimizer"] = {"name": "adam", "learning_rate": 0.01}
    spec["initial"] = {"seed": 3}
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    T = rng.uniform(size=(rows, 3))
    return spec, X, T


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_pairwise_is_a_fixed_tree() -> None:
    assert pairwise(["a", "b", "c", "d", "e"], lambda x, y: f"({x}+{y})") == "(((a+b)+(c+d))+e)"


def test_fit_in_process_equals_the_modules_full_batch_train() -> None:
    spec, X, T = _problem()
    theta, state, losses = fit(spec, X, T, epochs=8, chunk_rows=128)
    module = symgrad.load(spec)
    expected = module.initial_parameters()
    expected_losses = module.train(expected, X, T, 8, batch_size=None)
    np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
    assert state.shape == (module.STATE_SIZE,)


def test_fit_is_bitwise_the_same_on_one_worker_and_on_two(client) -> None:
    spec, X, T = _problem()
    local = fit(spec, X, T, epochs=5, chunk_rows=100)
    two = fit(spec, X, T, epochs=5, chunk_rows=100, client=client)
    with distributed.Client(distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                                     dashboard_address=None)) as one_client:
        one = fit(spec, X, T, epochs=5, chunk_rows=100, client=one_client)
    for result in (one, two):
        np.testing.assert_array_equal(result[0], local[0])
        np.testing.assert_array_equal(result[1], local[1])
        np.testing.assert_array_equal(result[2], local[2])


def test_fit_reads_dask_arrays_chunk_by_chunk(client) -> None:
    da = pytest.importorskip("dask.array")
    spec, X, T = _problem()
    local = fit(spec, X, T, epochs=3, chunk_rows=250)
    on_cluster = fit(spec, da.from_array(X, chunks=(250, 4)), da.from_array(T, chunks=(500, 3)), epochs=3,
                     client=client)
    np.testing.assert_array_equal(on_cluster[0], local[0])


def test_fit_survives_a_worker_killed_mid_run(client) -> None:
    spec, X, T = _problem(rows=4000)
    local = fit(spec, X, T, epochs=30, chunk_rows=200)
    pids = list(client.run(os.getpid).values())
    killer = threading.Timer(1.0, os.kill, (pids[0], signal.SIGKILL))
    killer.start()
    started = time.perf_counter()
    result = fit(spec, X, T, epochs=30, chunk_rows=200, client=client)
    killer.join()
    assert time.perf_counter() - started > 1.0, "the run ended before the worker was killed; make it longer"
    np.testing.assert_array_equal(result[0], local[0])
    client.wait_for_workers(2, timeout=60)


def test_sweep_results_are_bitwise_what_training_in_process_gives(client) -> None:
    spec, X, T = _problem(rows=300)
    grid = {"optimizer.learning_rate": [0.01, 0.05], "layers.0.units": [3, 5]}
    results = sweep(spec, grid, X, T, epochs=3, batch_size=32, seeds=(0, 7), client=client)
    assert [(r["overrides"], r["seed"]) for r in results] == [(o, s) for o in grid_points(grid) for s in (0, 7)]
    for result in results:
        module = symgrad.load(sweep_document(spec, result["overrides"], result["seed"]))
        theta = module.initial_parameters()
        losses = module.train(theta, X, T, 3, batch_size=32, shuffle=True, seed=result["seed"])
        np.testing.assert_array_equal(result["theta"], theta)
        np.testing.assert_array_equal(result["losses"], losses)
    local = sweep(spec, grid, X, T, epochs=3, batch_size=32, seeds=(0, 7))
    for a, b in zip(results, local):
        np.testing.assert_array_equal(a["theta"], b["theta"])


def test_overrides_follow_dotted_paths_and_refuse_missing_items() -> None:
    spec, _, _ = _problem()
    changed = apply_overrides(spec, {"optimizer.learning_rate": 0.3, "layers.1.activation": "tanh"})
    assert changed["optimizer"]["learning_rate"] == 0.3 and changed["layers"][1]["activation"] == "tanh"
    assert spec["optimizer"]["learning_rate"] == 0.01, "the original is not changed"
    with pytest.raises(symgrad.SpecError, match=r"\$\.layers\.5"):
        apply_overrides(spec, {"layers.5.units": 3})
    with pytest.raises(symgrad.SpecError, match="grid"):
        sweep(spec, {"layers.0.activation": ["nope"]}, np.zeros((2, 4)), np.zeros((2, 3)), epochs=1)

"""The BLAS thread policy of the generated NumPy train (vector form): BLAS runs on the idle cores
only, never on more threads than the caller allowed, and the setting is restored afterwards."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import symgrad

threadpoolctl = pytest.importorskip("threadpoolctl")


def _spec(inputs, hidden, name):
    return {"name": name, "inputs": inputs,
            "layers": [{"units": hidden, "activation": "relu"}, {"units": 10, "activation": "softmax"}],
            "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.05},
            "initial": {"scheme": "he_uniform", "seed": 0}, "dtype": "float32"}


@pytest.fixture(scope="module")
def big():  # 784-64-10 at batch 64: 64 * (2 * 784 * 64 + 2 * 64 * 10) multiply-adds a step, above 2**18
    return symgrad.load(_spec(784, 64, "threads_big"), backend="numpy")


@pytest.fixture(scope="module")
def small():  # 8-8-10 at batch 4: far below 2**18 multiply-adds a step
    return symgrad.load(_spec(8, 8, "threads_small"), backend="numpy")


def _problem(m, rows):
    rng = np.random.default_rng(1)
    X = rng.random((rows, m.N_INPUTS)).astype(np.float32)
    T = np.zeros((rows, m.N_OUTPUTS), np.float32)
    T[np.arange(rows), rng.integers(0, m.N_OUTPUTS, rows)] = 1
    return X, T


def _blas_threads():
    return max(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")


def _seen_inside(m, monkeypatch):
    """Record the BLAS thread count that each step of train runs with."""
    seen = []
    step = m._train_step

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return step(*args, **kwargs)
    monkeypatch.setattr(m, "_train_step", spy)
    return seen


def test_small_work_runs_on_one_thread_and_restores(small, monkeypatch):
    X, T = _problem(small, 16)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        seen = _seen_inside(small, monkeypatch)
        small.train(small.initial_parameters(), X, T, 2, batch_size=4)
        assert seen and set(seen) == {1}
        assert _blas_threads() == 2


def test_big_work_uses_idle_cores_but_never_more_than_the_caller_allowed(big, monkeypatch):
    X, T = _problem(big, 128)
    monkeypatch.setattr(big, "_idle_cores", lambda: 2)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        seen = _seen_inside(big, monkeypatch)
        big.train(big.initial_parameters(), X, T, 1, batch_size=64)
        assert set(seen) == {2}
    with threadpoolctl.threadpool_limits(1, user_api="blas"):  # the caller's limit is kept
        del seen[:]
        big.train(big.initial_parameters(), X, T, 1, batch_size=64)
        assert set(seen) == {1}
        assert _blas_threads() == 1
    monkeypatch.setattr(big, "_idle_cores", lambda: 1)  # one core busy elsewhere
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        del seen[:]
        big.train(big.initial_parameters(), X, T, 1, batch_size=64)
        assert set(seen) == {1}
        assert _blas_threads() == 2


def test_setting_restored_after_an_exception(big, monkeypatch):
    X, T = _problem(big, 64)

    def boom(*args, **kwargs):
        raise RuntimeError("inside train")
    monkeypatch.setattr(big, "_idle_cores", lambda: 1)
    monkeypatch.setattr(big, "_train_step", boom)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with pytest.raises(RuntimeError, match="inside train"):
            big.train(big.initial_parameters(), X, T, 1)
        assert _blas_threads() == 2


def test_idle_cores_is_a_count_of_usable_cores(big):
    assert 1 <= big._look_for_idle_cores() <= (__import__("os").cpu_count() or 1)
    import os

    assert 1 <= big._idle_cores() <= (os.cpu_count() or 1)


def test_train_without_threadpoolctl(big, monkeypatch):
    """threadpoolctl is optional: without it train leaves BLAS alone and gives the same numbers."""
    X, T = _problem(big, 128)
    theta_a, theta_b = big.initial_parameters(), big.initial_parameters()
    losses_a = big.train(theta_a, X, T, 2, batch_size=64)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl now fails
    monkeypatch.setattr(big, "_blas", None)
    losses_b = big.train(theta_b, X, T, 2, batch_size=64)
    assert big._blas == ()
    np.testing.assert_allclose(losses_b, losses_a, rtol=1e-5)
    np.testing.assert_allclose(theta_b, theta_a, rtol=1e-4, atol=1e-6)


def test_step_follows_the_policy_too(big, monkeypatch):
    X, T = _problem(big, 64)
    monkeypatch.setattr(big, "_idle_cores", lambda: 1)
    seen = _seen_inside(big, monkeypatch)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        big.step(big.initial_parameters(), X, T)
        assert seen == [1]
        assert _blas_threads() == 2


def test_idle_cores_looks_again_after_a_while(big, monkeypatch):
    looks = []
    monkeypatch.setattr(big, "_look_for_idle_cores", lambda: looks.append(1) or 1)
    monkeypatch.setattr(big, "_idle_seen", (float("-inf"), 1))
    big._idle_cores()
    big._idle_cores()
    assert len(looks) == 1  # the second call within _IDLE_SECONDS used the first look
    monkeypatch.setattr(big, "_idle_seen", (big._idle_seen[0] - 2 * big._IDLE_SECONDS, 1))
    big._idle_cores()
    assert len(looks) == 2


@pytest.mark.parametrize("call, inner", [("forward", "_outputs"), ("loss", "_loss_and_gradient"),
                                         ("gradient", "_loss_and_gradient"), ("gradient_sum", "_loss_and_gradient")])
def test_every_call_on_a_batch_follows_the_policy(big, monkeypatch, call, inner):
    """forward (inference on large batches), loss and the gradients (distributed workers call
    gradient_sum) oversubscribe a busy machine as train did."""
    X, T = _problem(big, 64)
    seen, original = [], getattr(big, inner)

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return original(*args, **kwargs)
    monkeypatch.setattr(big, inner, spy)
    monkeypatch.setattr(big, "_idle_cores", lambda: 1)
    args = (big.initial_parameters(), X) if call == "forward" else (big.initial_parameters(), X, T)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        expected_threads = _blas_threads()
        getattr(big, call)(*args)
        assert seen == [1]
        assert _blas_threads() == expected_threads


def test_a_small_call_leaves_blas_alone(small, monkeypatch):
    """Below 2**18 multiply-adds OpenBLAS runs a product on one thread by itself; setting the count
    and back would cost more than the call."""
    X, T = _problem(small, 4)
    seen, original = [], small._outputs

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return original(*args, **kwargs)
    monkeypatch.setattr(small, "_outputs", spy)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        small.forward(small.initial_parameters(), X)
    assert seen == [2]

"""Beyond one machine: full-batch training and sweeps on Dask, bitwise independent of the worker count.

Install with ``pip install 'symgrad[dask]'``.  The generated module does the arithmetic; Dask
only moves chunks and small vectors:

- :func:`fit` takes one full-batch optimizer step per epoch.  Every chunk of rows gives its
  loss and gradient *sums* (``gradient_sum``, no penalty) on the worker that holds it; the sums
  are added in a fixed pairwise tree over the chunk index; the client adds the penalty and
  applies the step with the module's ``update``.  The tree and the chunking do not depend on
  the workers, so theta is bitwise the same in-process (``client=None``), on one worker or on
  many, and equal to the module's own full-batch ``train`` to rounding (1e-12).
- :func:`sweep` trains one model per grid point and seed on the workers; each result is bitwise
  what ``load(spec with the overrides)`` and ``train(..., shuffle=True, seed=seed)`` give here.

Each worker builds or loads the spec from its own cache (the C extension compiled for its own
processor).  NumPy data is sent to the cluster once, inside tasks the scheduler can rerun, so a
worker that dies is replaced and its chunks recomputed; Dask arrays are read where they live.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import SpecError
from .spec import read_document

DEFAULT_CHUNK_ROWS = 65536


def _dask() -> Any:
    try:
        import dask.distributed as distributed
    except ImportError:
        raise SpecError("--workers", "training on a cluster needs dask.distributed, which is not installed",
                        "install it with pip install 'symgrad[dask]'") from None
    return distributed


# -- what runs on a worker ------------------------------------------------------------------------

_MODULES: dict[str, Any] = {}


def _module(document: dict[str, Any], backend: str = "auto") -> Any:
    """The spec's generated module in this process (built or loaded from this machine's cache)."""
    from .spec import canonical_json

    key = canonical_json(document) + "\0" + backend
    if key not in _MODULES:
        from .loader import load

        _MODULES[key] = load(document, backend=backend)
    return _MODULES[key]


def _chunk_sums(document: dict[str, Any], theta: np.ndarray, X: np.ndarray, T: np.ndarray) -> tuple[float, np.ndarray]:
    """One chunk's summed loss and summed gradient (no penalty)."""
    module = _module(document)
    X = np.ascontiguousarray(X, dtype=module.DTYPE)
    T = np.ascontiguousarray(T, dtype=module.DTYPE)
    loss, grad = module.gradient_sum(theta, X, T)
    return float(loss), np.asarray(grad, dtype=np.float64)


def _add(left: tuple[float, np.ndarray], right: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
    return left[0] + right[0], left[1] + right[1]


def pairwise(items: Sequence[Any], combine: Callable[[Any, Any], Any]) -> Any:
    """``items`` combined in a fixed binary tree over their index: ((0+1)+(2+3))+4 ..."""
    level = list(items)
    if not level:
        raise ValueError("nothing to combine")
    while len(level) > 1:
        level = [combine(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    return level[0]


# -- chunks ----------------------------------------------------------------------------------------

def _row_bounds(n: int, chunk_rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_rows, n)) for start in range(0, n, chunk_rows)]


def _is_dask_array(value: Any) -> bool:
    return type(value).__module__.startswith("dask.array")


def _checked_data(module: Any, X: Any, T: Any) -> tuple[Any, Any, int]:
    if X.ndim != 2 or X.shape[1] != module.N_INPUTS:
        raise SpecError("X", f"has shape {X.shape}", f"pass one example per row, {module.N_INPUTS} inputs each")
    if T.ndim != 2 or T.shape != (X.shape[0], module.N_OUTPUTS):
        raise SpecError("T", f"has shape {T.shape}", f"pass ({X.shape[0]}, {module.N_OUTPUTS}): one row per example")
    if X.shape[0] == 0:
        raise SpecError("X", "holds no examples", "pass at least one row")
    return X, T, int(X.shape[0])


def _chunks(X: Any, T: Any, chunk_rows: int) -> list[tuple[Any, Any]]:
    """(X, T) per chunk: a Dask array's own row chunks (T aligned to them), else slices of chunk_rows."""
    if _is_dask_array(X) or _is_dask_array(T):
        import dask.array as da

        X = da.asarray(X)
        T = da.asarray(T).rechunk((X.chunks[0], -1))
        X = X.rechunk((X.chunks[0], -1))
        return list(zip(X.to_delayed().ravel(), T.to_delayed().ravel()))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise SpecError("chunk_rows", f"{chunk_rows!r} is not a row count", "use a whole number 1 or more")
    X, T = np.asarray(X), np.asarray(T)
    return [(X[a:b], T[a:b]) for a, b in _row_bounds(X.shape[0], chunk_rows)]


# -- fit -------------------------------------------------------------------------------------------

def fit(spec: Any, X: Any, T: Any, *, epochs: int, chunk_rows: int = DEFAULT_CHUNK_ROWS,
        theta: np.ndarray | None = None, state: np.ndarray | None = None,
        client: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch training, one step per epoch, the gradient summed over chunks on the workers.

    Returns ``(theta, state, losses)``; ``losses[e]`` is the loss before epoch e's step (the
    penalty included), as the module's own ``train`` reports it.
    """
    document = read_document(spec)
    module = _module(document)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise SpecError("epochs", f"{epochs!r} is not a number of epochs", "use a whole number 1 or more")
    X, T, n = _checked_data(module, X, T)
    theta = module.initial_parameters() if theta is None else np.array(theta, dtype=module.DTYPE)
    state = module.initial_state() if state is None else np.array(state, dtype=module.DTYPE)
    chunks = _chunks(X, T, chunk_rows)
    scale = 1.0 / n if module.REDUCTION == "mean" else 1.0
    losses = np.empty(epochs)
    if client is None:
        local = [(np.asarray(x) if not hasattr(x, "compute") else x.compute(),
                  np.asarray(t) if not hasattr(t, "compute") else t.compute()) for x, t in chunks]
        round_sums = lambda theta: pairwise([_chunk_sums(document, theta, x, t) for x, t in local], _add)  # noqa: E731
    else:
        round_sums = _cluster_rounds(client, document, chunks)
    for epoch in range(epochs):
        loss_sum, grad_sum = round_sums(theta)
        penalty, penalty_grad = module.penalty(theta)
        grad = (grad_sum * scale + penalty_grad).astype(module.DTYPE)
        losses[epoch] = loss_sum * scale + penalty
        module.update(theta, grad, state)
    return theta, state, losses


def _cluster_rounds(client: Any, document: dict[str, Any], chunks: list[tuple[Any, Any]]) -> Callable:
    """A function theta -> (loss sum, gradient sum) computed on the cluster, the data placed once.

    NumPy chunks become tasks that return them (the scheduler keeps the task, so a chunk lost
    with its worker is recomputed); Dask chunks are delayed values of their own graph.
    """
    placed = []
    for k, (x, t) in enumerate(chunks):
        if hasattr(x, "dask"):
            placed.append((client.compute(x), client.compute(t)))
        else:
            placed.append((client.submit(np.array, x, key=f"symgrad-X-{k}-{id(chunks)}"),
                           client.submit(np.array, t, key=f"symgrad-T-{k}-{id(chunks)}")))
    counter = itertools.count()

    def round_sums(theta: np.ndarray) -> tuple[float, np.ndarray]:
        round_id = next(counter)
        theta_future = client.scatter(np.array(theta), broadcast=True, hash=False)
        sums = [client.submit(_chunk_sums, document, theta_future, x, t, pure=False, key=f"symgrad-sum-{round_id}-{k}")
                for k, (x, t) in enumerate(placed)]
        total = pairwise(sums, lambda a, b: client.submit(_add, a, b, pure=False))
        return total.result()

    return round_sums


# -- sweep -----------------------------------------------------------------------------------------

def apply_overrides(document: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with each dotted path (``optimizer.learning_rate``, ``layers.0.units``) set."""
    result = copy.deepcopy(document)
    for path, value in overrides.items():
        parts = path.split(".")
        if not path or any(not part for part in parts):
            raise SpecError(f"grid.{path}", "is not a dotted path into the spec", 'write e.g. "optimizer.learning_rate"')
        node: Any = result
        for depth, part in enumerate(parts):
            where = "$." + ".".join(parts[:depth + 1])
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise SpecError(where, f"the spec has no item {part} here (the list has {len(node)})",
                                    "use an index that exists, counting from 0")
                key: Any = int(part)
            elif isinstance(node, dict):
                key = part
                if not last and key not in node:
                    node[key] = {}
            else:
                raise SpecError(where, "goes inside a value that is neither an object nor a list",
                                "check the dotted path against the spec")
            if last:
                node[key] = value
            else:
                node = node[key]
    return result


def grid_points(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, keys in the order given (the last varies fastest)."""
    if not isinstance(grid, dict) or not grid:
        raise SpecError("grid", "expected an object of dotted paths to lists of values",
                        'e.g. {"optimizer.learning_rate": [0.1, 0.5]}')
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise SpecError(f"grid.{key}", "expected a non-empty list of values", "e.g. [0.1, 0.5]")
    keys = list(grid)
    return [dict(zip(keys, combination)) for combination in itertools.product(*(grid[k] for k in keys))]


def sweep_document(document: dict[str, Any], overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """The spec one sweep model trains: the overrides applied and ``initial.seed`` set."""
    model = apply_overrides(document, overrides)
    initial = model.setdefault("initial", {})
    if not isinstance(initial, dict):
        raise SpecError("$.initial", "is not an object", "write initial values as an object")
    initial["seed"] = seed
    return model


def _train_one(document: dict[str, Any], X: np.ndarray, T: np.ndarray, epochs: int, batch_size: int | None,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    module = _module(document)
    theta = module.initial_parameters()
    X = np.ascontiguousarray(X, dtype=module.DTYPE)
    T = np.ascontiguousarray(T, dtype=module.DTYPE)
    losses = module.train(theta, X, T, epochs, batch_size=batch_size, shuffle=True, seed=seed)
    return theta, np.asarray(losses)


def sweep(spec: Any, grid: dict[str, Sequence[Any]], X: Any, T: Any, *, epochs: int, batch_size: int | None = None,
          seeds: Iterable[int] = (0,), client: Any = None,
          progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One model per grid point and seed; results in grid order (then seed order).

    Each result's theta is bitwise what ``load(sweep_document(...))`` and ``train(theta, X, T,
    epochs, batch_size, shuffle=True, seed=seed)`` give in this process.  ``progress(done, total)``
    is called as results arrive.
    """
    document = read_document(spec)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SpecError("seeds", f"{seeds!r} is not a list of seeds", "use whole numbers 0 or more")
    jobs = [(overrides, seed, sweep_document(document, overrides, seed))
            for overrides in grid_points(grid) for seed in seeds]
    for overrides, seed, model in jobs:
        from .spec import parse_spec

        try:
            parse_spec(model)
        except SpecError as error:
            raise SpecError(f"grid {overrides}", str(error), "fix the grid's values") from None
    if _is_dask_array(X):
        X = X.compute() if client is None else X
    if _is_dask_array(T):
        T = T.compute() if client is None else T
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    if client is None:
        for index, (overrides, seed, model) in enumerate(jobs):
            theta, losses = _train_one(model, np.asarray(X), np.asarray(T), epochs, batch_size, seed)
            results[index] = {"overrides": overrides, "seed": seed, "theta": theta, "losses": losses}
            if progress:
                progress(index + 1, len(jobs))
        return results  # type: ignore[return-value]
    distributed = _dask()
    data_x = client.compute(X) if hasattr(X, "dask") else client.submit(np.array, X)
    data_t = client.compute(T) if hasattr(T, "dask") else client.submit(np.array, T)
    futures = {client.submit(_train_one, model, data_x, data_t, epochs, batch_size, seed, pure=False): index
               for index, (_, seed, model) in enumerate(jobs)}
    for done, future in enumerate(distributed.as_completed(futures), 1):
        index = futures[future]
        theta, losses = future.result()
        overrides, seed, _ = jobs[index]
        results[index] = {"overrides": overrides, "seed": seed, "theta": theta, "losses": losses}
        if progress:
            progress(done, len(jobs))
    return results  # type: ignore[return-value]


def local_cluster(workers: int) -> Any:
    """A client of a LocalCluster of ``workers`` processes, one thread each (BLAS pinned to one thread)."""
    distributed = _dask()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError("--workers", f"{workers!r} is not a number of workers", "use a whole number 1 or more")
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    return distributed.Client(cluster)

"""Beyond one machine: full-batch training and sweeps on Dask, bitwise independent of the worker count.

Install with ``pip install 'symgrad[dask]'`` (DESIGN.md section 9).  The generated module does
the arithmetic; Dask only moves chunks of rows and small vectors:

- :func:`fit` takes one full-batch optimizer step per epoch.  Every chunk of rows gives its loss
  and gradient *sums* (``gradient_sum``, no penalty) on the worker that holds it; the sums are
  added in a fixed pairwise tree over the chunk index; the client adds the penalty and takes the
  step with the module's ``update``.  Neither the chunks nor the tree depend on the workers, so
  theta is bitwise the same in-process (``client=None``), on one worker or on many.
- :func:`sweep` trains one model per grid point and seed on the workers; each result is bitwise
  what ``load(sweep_document(...))`` and ``train(..., shuffle=True, seed=seed)`` give here.

Each worker builds or loads the spec from its own cache (the C extension compiled for its own
processor).  NumPy chunks go to the cluster once, as tasks the scheduler can rerun, so a worker
that dies is replaced and its chunks recomputed; Dask arrays are read where they live.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import uuid
import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import SpecError, SymgradError
from .optimizers import epoch_index
from .spec import canonical_json, parse_spec, read_document

DEFAULT_CHUNK_ROWS = 65536
#: At most this many processes in a local cluster (each is a Python process of its own).
MAX_LOCAL_WORKERS = 256
#: At most this many models in one sweep (grid points times seeds), refused before any training.
MAX_MODELS = 10_000
_MODULES_KEPT = 64  # generated modules a process keeps imported for the tasks it runs
_INLINE_THETA_BYTES = 1 << 16  # fit sends a theta this small inside each chunk's task (one hop less)


def dask_distributed(option: str = "symgrad.distributed") -> Any:
    """``dask.distributed``, or a one-line user error saying how to install it."""
    try:
        import dask.distributed as distributed
    except ImportError:
        raise SymgradError(f"{option} needs dask.distributed, which is not installed; install it with "
                           "pip install 'symgrad[dask]'") from None
    return distributed


def check_workers(workers: Any) -> None:
    """A local cluster's size: a whole number from 1 to MAX_LOCAL_WORKERS."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError("--workers", f"{workers!r} is not a number of workers", "use a whole number 1 or more")
    if workers > MAX_LOCAL_WORKERS:
        raise SpecError("--workers", f"{workers} processes are more than a local cluster starts ({MAX_LOCAL_WORKERS})",
                        "use about one per core (--scheduler ADDRESS reaches a bigger cluster)")


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A client of a new LocalCluster of ``workers`` processes, one thread each (Dask starts each
    worker with OpenMP, MKL and OpenBLAS pinned to one thread); both closed on leaving."""
    distributed = dask_distributed("--workers")
    check_workers(workers)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client


# -- what runs on a worker (and in-process) --------------------------------------------------------

_MODULES: OrderedDict[str, Any] = OrderedDict()


def _module(document: dict[str, Any], backend: str) -> Any:
    """The spec's generated module in this process, built or loaded from this machine's cache."""
    key = canonical_json(document) + "\0" + backend
    if key not in _MODULES:
        from .pipeline import load

        _MODULES[key] = load(document, backend=backend)
        while len(_MODULES) > _MODULES_KEPT:
            _MODULES.popitem(last=False)
    _MODULES.move_to_end(key)
    return _MODULES[key]


def _rows(values: Any, dtype: Any) -> np.ndarray:
    """``values`` as the generated module takes them: its dtype, C-contiguous and aligned (arrays
    that arrive from another process may sit unaligned in the message's buffer)."""
    return np.require(values, dtype=dtype, requirements=["C", "A"])


def _chunk_sums(document: dict[str, Any], backend: str, theta: np.ndarray,
                chunk: tuple[np.ndarray, np.ndarray]) -> tuple[float, np.ndarray]:
    """One chunk's loss and gradient summed over its rows (no penalty), the gradient in float64."""
    module = _module(document, backend)
    X, T = chunk
    loss, grad = module.gradient_sum(_rows(theta, module.DTYPE), _rows(X, module.DTYPE), _rows(T, module.DTYPE))
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


# -- data ------------------------------------------------------------------------------------------

def _is_dask_array(value: Any) -> bool:
    return type(value).__module__.startswith("dask.array")


def _checked_data(module: Any, X: Any, T: Any) -> tuple[Any, Any]:
    """X and T as arrays (Dask arrays kept as they are) of one example per row, shapes checked."""
    X = X if _is_dask_array(X) else np.asarray(X)
    T = T if _is_dask_array(T) else np.asarray(T)
    if X.ndim != 2 or X.shape[1] != module.N_INPUTS or X.shape[0] == 0:
        raise SpecError("X", f"has shape {X.shape}", f"pass one example per row, {module.N_INPUTS} inputs each")
    if T.shape != (X.shape[0], module.N_OUTPUTS):
        raise SpecError("T", f"has shape {T.shape}", f"pass ({X.shape[0]}, {module.N_OUTPUTS}): one row per example")
    return X, T


def _chunks(X: Any, T: Any, chunk_rows: int, dtype: Any) -> list[tuple[Any, Any]]:
    """(X, T) per chunk: a Dask array's own row chunks (T aligned to them, as Dask delayed values),
    else NumPy slices of ``chunk_rows`` rows in the module's dtype."""
    if _is_dask_array(X) or _is_dask_array(T):
        import dask.array as da

        X = da.asarray(X).astype(dtype)
        X = X.rechunk((X.chunks[0], -1))
        T = da.asarray(T).astype(dtype).rechunk((X.chunks[0], -1))
        return list(zip(X.to_delayed().ravel(), T.to_delayed().ravel()))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise SpecError("chunk_rows", f"{chunk_rows!r} is not a row count", "use a whole number 1 or more")
    return [(_rows(X[a:a + chunk_rows], dtype), _rows(T[a:a + chunk_rows], dtype))
            for a in range(0, X.shape[0], chunk_rows)]


def _pair(X: Any, T: Any) -> tuple[Any, Any]:
    return X, T


def _placed(client: Any, X: Any, T: Any, key: str) -> Any:
    """A future of the chunk (X, T), both on one worker, that the scheduler can recompute when
    that worker dies: Dask chunks computed there, else a task that returns the arrays it carries."""
    if hasattr(X, "dask") or hasattr(T, "dask"):
        import dask

        return client.compute(dask.delayed(_pair)(X, T))
    with warnings.catch_warnings():  # the data belongs in the task: that is what makes it recomputable
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        return client.submit(_pair, X, T, key=key)


# -- fit -------------------------------------------------------------------------------------------

def fit(spec: Any, X: Any, T: Any, *, epochs: int, chunk_rows: int = DEFAULT_CHUNK_ROWS,
        theta: np.ndarray | None = None, state: np.ndarray | None = None, client: Any = None,
        backend: str = "auto", progress: Callable[[int, float, np.ndarray, np.ndarray], bool | None] | None = None,
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch training, one step per epoch, the gradient summed over chunks of rows on the workers.

    Returns ``(theta, state, losses)`` (new arrays; the ones passed in are not changed);
    ``losses[e]`` is the loss before epoch e's step, penalties included, as the module's own
    full-batch ``train`` reports it.  NumPy data is cut into ``chunk_rows`` rows; a Dask array
    keeps its own row chunks.  ``progress(epoch, loss, theta, state)`` is called after every
    epoch (1-based); when it returns True, training stops there (early stopping: ``train --patience``).
    """
    document = read_document(spec)
    module = _module(document, backend)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise SpecError("epochs", f"{epochs!r} is not a number of epochs", "use a whole number 1 or more")
    X, T = _checked_data(module, X, T)
    n = int(X.shape[0])
    theta = module.initial_parameters() if theta is None else np.array(theta, dtype=module.DTYPE)
    state = module.initial_state() if state is None else np.array(state, dtype=module.DTYPE)
    for name, value, size in (("theta", theta, module.N_PARAMETERS), ("state", state, module.STATE_SIZE)):
        if value.shape != (size,):
            raise SpecError(name, f"has shape {value.shape}", f"pass ({size},) values for this spec")
    chunks = _chunks(X, T, chunk_rows, module.DTYPE)
    if client is None:
        local = [(np.asarray(x.compute()), np.asarray(t.compute())) if hasattr(x, "dask") else (x, t)
                 for x, t in chunks]

        def round_sums(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return pairwise([_chunk_sums(document, backend, theta, chunk) for chunk in local], _add)
    else:
        round_sums = _cluster_rounds(client, document, backend, chunks)
    scale = 1.0 / n if module.REDUCTION == "mean" else 1.0
    losses = np.empty(epochs)
    # a learning-rate schedule counts epochs in the state (STATE_LAYOUT's "epoch"), as train does
    epoch_count = epoch_index(module.STATE_LAYOUT)
    for epoch in range(epochs):
        loss_sum, grad_sum = round_sums(theta)
        penalty, penalty_grad = module.penalty(theta)
        losses[epoch] = loss_sum * scale + penalty
        module.update(theta, (grad_sum * scale + penalty_grad).astype(module.DTYPE), state)
        if epoch_count is not None:
            state[epoch_count] += 1
        if progress is not None and progress(epoch + 1, float(losses[epoch]), theta, state):
            return theta, state, losses[:epoch + 1]
    return theta, state, losses


def _cluster_rounds(client: Any, document: dict[str, Any], backend: str,
                    chunks: list[tuple[Any, Any]]) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """theta -> (loss sum, gradient sum) on the cluster, the chunks placed there once."""
    run = uuid.uuid4().hex
    placed = [_placed(client, x, t, f"symgrad-chunk-{run}-{k}") for k, (x, t) in enumerate(chunks)]
    rounds = itertools.count()

    def round_sums(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r = next(rounds)
        # theta goes inside every chunk's task, or (large) as a task of its own: never as scattered
        # data, so a worker lost mid-round loses nothing the scheduler cannot recompute
        given = theta.copy() if theta.nbytes <= _INLINE_THETA_BYTES else \
            client.submit(np.array, theta, key=f"symgrad-theta-{run}-{r}")
        sums = [client.submit(_chunk_sums, document, backend, given, chunk, key=f"symgrad-sum-{run}-{r}-{k}")
                for k, chunk in enumerate(placed)]
        return pairwise(client.gather(sums), _add)  # the same tree as in-process

    return round_sums


# -- sweep -----------------------------------------------------------------------------------------

def apply_overrides(document: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with each dotted path (``optimizer.learning_rate``, ``layers.0.units``) set."""
    result = copy.deepcopy(document)
    for path, value in overrides.items():
        parts = path.split(".")
        if not path or any(not part for part in parts):
            raise SpecError(f"grid.{path}", "is not a dotted path into the spec",
                            'write e.g. "optimizer.learning_rate"')
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
        if key == "initial.seed":
            raise SpecError("grid.initial.seed", "is set by the sweep's seeds", "give the seeds with seeds= (--seeds)")
        if not isinstance(values, (list, tuple)) or not values:
            raise SpecError(f"grid.{_shorter(key)}", "expected a non-empty list of values", "e.g. [0.1, 0.5]")
    _check_model_count(math.prod(len(values) for values in grid.values()), 1)
    keys = list(grid)
    return [dict(zip(keys, combination)) for combination in itertools.product(*(grid[k] for k in keys))]


def _check_model_count(points: int, seeds: int) -> None:
    """A sweep of more than MAX_MODELS models is refused before any work (a typo can multiply a grid)."""
    if points * seeds > MAX_MODELS:
        models = f"{points:,} grid point(s)" + (f" x {seeds:,} seeds" if seeds > 1 else "")
        raise SpecError("grid", f"{models} make {points * seeds:,} models, more than the {MAX_MODELS:,} a sweep runs",
                        "sweep fewer values or seeds at a time")


def _shorter(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters for a message (a grid key or point can be any length)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def sweep_document(document: dict[str, Any], overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """The spec one sweep model trains: the overrides applied and ``initial.seed`` set."""
    model = apply_overrides(read_document(document), overrides)
    initial = model.setdefault("initial", {})
    if not isinstance(initial, dict):
        raise SpecError("$.initial", "is not an object", "write initial values as an object")
    initial["seed"] = seed
    return model


def _train_one(document: dict[str, Any], backend: str, data: tuple[np.ndarray, np.ndarray], epochs: int,
               batch_size: int | None, seed: int, validation: tuple[np.ndarray, np.ndarray] | None,
               ) -> dict[str, Any]:
    """One sweep model trained from its initial parameters (and scored on the validation rows)."""
    module = _module(document, backend)
    X, T = (_rows(a, module.DTYPE) for a in data)
    theta, state = module.initial_parameters(), module.initial_state()
    losses = module.train(theta, X, T, epochs, batch_size=batch_size, shuffle=True, seed=seed, state=state)
    result = {"theta": theta, "state": state, "losses": np.asarray(losses), "final_loss": module.loss(theta, X, T)}
    if validation is not None:
        Xv, Tv = _rows(validation[0], module.DTYPE), _rows(validation[1], module.DTYPE)
        result["validation_loss"] = module.loss(theta, Xv, Tv)
        if _one_hot(Tv):
            hits = np.argmax(module.forward(theta, Xv), axis=1) == np.argmax(Tv, axis=1)
            result["validation_accuracy"] = float(np.mean(hits))
    return result


def _one_hot(T: np.ndarray) -> bool:
    return bool(T.shape[1] > 1 and np.all((T == 0) | (T == 1)) and np.all(T.sum(axis=1) == 1))


def iter_sweep(spec: Any, grid: dict[str, Sequence[Any]], X: Any, T: Any, *, epochs: int,
               batch_size: int | None = None, seeds: Iterable[int] = (0,), client: Any = None,
               backend: str = "auto", validation: tuple[Any, Any] | None = None,
               ) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Like :func:`sweep`, but yields ``(index, total, result)`` as each model finishes (index in grid order)."""
    document = read_document(spec)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise SpecError("seeds", f"{_shorter(repr(seeds))} is not a list of seeds", "use whole numbers 0 or more")
    if len(set(seeds)) < len(seeds):
        raise SpecError("seeds", "lists a seed twice (the same seed trains the same model)", "give each seed once")
    points = grid_points(grid)
    _check_model_count(len(points), len(seeds))
    jobs = [(overrides, int(seed)) for overrides in points for seed in seeds]
    models = []
    for overrides, seed in jobs:
        model = sweep_document(document, overrides, seed)
        try:
            parse_spec(model)
        except SpecError as error:
            shown = _shorter(json.dumps(overrides, sort_keys=True, separators=(",", ":")))  # NaN too, unlike canonical
            raise SpecError(f"grid point {shown}", _shorter(str(error), 600), "fix the grid's values") from None
        models.append(model)
    if client is None:
        X, T = (np.asarray(a.compute() if _is_dask_array(a) else a) for a in (X, T))
    if validation is not None:
        validation = (np.asarray(validation[0]), np.asarray(validation[1]))

    def result(index: int, trained: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
        overrides, seed = jobs[index]
        return index, len(jobs), {"overrides": overrides, "seed": seed, **trained}

    if client is None:
        for index, model in enumerate(models):
            yield result(index, _train_one(model, backend, (X, T), epochs, batch_size, jobs[index][1], validation))
        return
    distributed = dask_distributed()
    run = uuid.uuid4().hex
    data = _placed(client, X, T, f"symgrad-data-{run}")
    if validation is not None:
        validation = _placed(client, *validation, f"symgrad-validation-{run}")
    futures = {client.submit(_train_one, model, backend, data, epochs, batch_size, jobs[index][1], validation,
                             key=f"symgrad-model-{run}-{index}"): index
               for index, model in enumerate(models)}
    for future in distributed.as_completed(futures):
        yield result(futures[future], future.result())


def sweep(spec: Any, grid: dict[str, Sequence[Any]], X: Any, T: Any, *, epochs: int, batch_size: int | None = None,
          seeds: Iterable[int] = (0,), client: Any = None, backend: str = "auto",
          validation: tuple[Any, Any] | None = None,
          progress: Callable[[int, int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """One model per grid point and seed; results in grid order (then seed order).

    Each result holds ``overrides``, ``seed``, ``theta``, ``state`` and ``losses`` (and, with
    ``validation=(X, T)``, ``validation_loss``, plus ``validation_accuracy`` for one-hot targets).
    Its theta is bitwise what ``load(sweep_document(spec, overrides, seed))`` then ``train(theta,
    X, T, epochs, batch_size, shuffle=True, seed=seed)`` give in this process.  ``progress(done,
    total, result)`` is called as each model finishes.
    """
    by_index: dict[int, dict[str, Any]] = {}
    for done, (index, total, result) in enumerate(iter_sweep(spec, grid, X, T, epochs=epochs, batch_size=batch_size,
                                                             seeds=seeds, client=client, backend=backend,
                                                             validation=validation), 1):
        by_index[index] = result
        if progress is not None:
            progress(done, total, result)
    return [by_index[index] for index in sorted(by_index)]

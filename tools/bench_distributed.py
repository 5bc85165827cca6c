"""What symgrad.distributed buys on this machine: a sweep on 2 workers against the same models one
after another, the per-round overhead of fit against a chunk's compute time, and fit's rows per
second for the 784-256-10 network (examples/mnist_mlp.json, random data).

    python tools/bench_distributed.py [--quick] [--repeats R]

Medians of R runs; ratios from medians of this run.  The modules are built (and loaded on the
workers) before anything is timed.  Needs dask[distributed] (pip install 'symgrad[dask]').
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from _bench_common import EXAMPLES, fmt_seconds, median, print_table

import symgrad
from symgrad import distributed


def _timed(function, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def sweep_speedup(client, repeats: int, quick: bool) -> list[list[str]]:
    """8 small models (4 grid points x 2 seeds) trained in-process one after another, and on the cluster."""
    spec = {"name": "bench_sweep", "inputs": 8, "layers": [{"units": 16, "activation": "tanh"},
                                                          {"units": 4, "activation": "sigmoid"}],
            "loss": "half_sse", "optimizer": {"name": "adam", "learning_rate": 0.01}}
    grid = {"optimizer.learning_rate": [0.003, 0.01], "layers.0.units": [12, 16]}
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(2000, 8)), rng.uniform(size=(2000, 4))
    epochs = 5 if quick else 400
    options = dict(epochs=epochs, batch_size=16, seeds=(0, 1))
    distributed.sweep(spec, grid, X[:50], T[:50], epochs=1, seeds=(0, 1), client=client)  # build and load everywhere
    distributed.sweep(spec, grid, X[:50], T[:50], epochs=1, seeds=(0, 1))
    one_by_one = _timed(lambda: distributed.sweep(spec, grid, X, T, **options), repeats)
    on_cluster = _timed(lambda: distributed.sweep(spec, grid, X, T, client=client, **options), repeats)
    workers = len(client.scheduler_info()["workers"])
    a, b = median(one_by_one), median(on_cluster)
    return [["sweep, 8 models 8-16-4, in-process one after another", fmt_seconds(a), ""],
            [f"sweep, 8 models on {workers} workers", fmt_seconds(b), f"speedup {a / b:.2f}x"]]


def round_overhead(client, repeats: int, quick: bool) -> tuple[list[list[str]], dict[str, float]]:
    """fit's time per round on the cluster against the compute of its chunks (in-process gradient_sum)."""
    spec = json.loads((EXAMPLES / "digits.json").read_text())
    module = symgrad.load(spec)
    rows, chunk_rows, epochs = (2048, 512, 3) if quick else (16384, 2048, 10)
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(rows, module.N_INPUTS)).astype(module.DTYPE)
    T = np.eye(module.N_OUTPUTS, dtype=module.DTYPE)[rng.integers(0, module.N_OUTPUTS, rows)]
    theta = module.initial_parameters()
    chunk = _timed(lambda: module.gradient_sum(theta, X[:chunk_rows], T[:chunk_rows]), 5 * repeats)
    distributed.fit(spec, X, T, epochs=1, chunk_rows=chunk_rows, client=client)  # modules loaded on the workers
    rounds = [seconds / epochs for seconds in
              _timed(lambda: distributed.fit(spec, X, T, epochs=epochs, chunk_rows=chunk_rows, client=client), repeats)]
    workers = len(client.scheduler_info()["workers"])
    chunks = rows // chunk_rows
    compute = median(chunk) * math.ceil(chunks / workers)
    overhead = median(rounds) - compute
    table = [[f"digits ({module.BACKEND}): gradient_sum of one chunk of {chunk_rows} rows", fmt_seconds(median(chunk)),
              ""],
             [f"fit round, {chunks} chunks on {workers} workers", fmt_seconds(median(rounds)), ""],
             ["per-round overhead (round - chunk compute x chunks per worker)", fmt_seconds(overhead),
              f"{overhead / median(chunk):.1f} chunk computes"]]
    return table, {"overhead": overhead, "row_seconds": median(chunk) / chunk_rows, "workers": workers}


def mnist_rows_per_second(client, repeats: int, quick: bool, constants: dict[str, float]) -> list[list[str]]:
    """fit of the 784-256-10 network: rows per second in-process, on the cluster, and the module's own train."""
    spec = json.loads((EXAMPLES / "mnist_mlp.json").read_text())
    module = symgrad.load(spec)
    rows, chunk_rows, epochs = (2048, 1024, 2) if quick else (16384, 4096, 4)
    rng = np.random.default_rng(2)
    X = rng.uniform(size=(rows, 784)).astype(module.DTYPE)
    T = np.eye(10, dtype=module.DTYPE)[rng.integers(0, 10, rows)]
    distributed.fit(spec, X, T, epochs=1, chunk_rows=chunk_rows, client=client)
    train = _timed(lambda: module.train(module.initial_parameters(), X, T, epochs), repeats)
    local = _timed(lambda: distributed.fit(spec, X, T, epochs=epochs, chunk_rows=chunk_rows), repeats)
    cluster = _timed(lambda: distributed.fit(spec, X, T, epochs=epochs, chunk_rows=chunk_rows, client=client), repeats)
    workers = len(client.scheduler_info()["workers"])
    rate = {name: rows * epochs / median(samples) for name, samples in
            (("train", train), ("local", local), ("cluster", cluster))}
    constants["mnist_row_seconds"] = 1 / rate["train"]
    return [[f"784-256-10 ({module.BACKEND}) module.train, full batch of {rows}", f"{rate['train']:,.0f} rows/s", ""],
            [f"fit in-process, chunks of {chunk_rows}", f"{rate['local']:,.0f} rows/s",
             f"{rate['local'] / rate['train']:.2f}x train"],
            [f"fit on {workers} workers, chunks of {chunk_rows}", f"{rate['cluster']:,.0f} rows/s",
             f"{rate['cluster'] / rate['train']:.2f}x train"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement (default 3, --quick 1)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the local cluster (default 2)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"symgrad {symgrad.__version__}; medians of {repeats} run(s); LocalCluster of {args.workers} processes, "
          "one thread each; timings on a shared machine vary from run to run")
    with distributed.local_cluster(args.workers) as client:
        sweep_rows = sweep_speedup(client, repeats, args.quick)
        overhead_rows, constants = round_overhead(client, repeats, args.quick)
        mnist_rows = mnist_rows_per_second(client, repeats, args.quick, constants)
    headers = ["measurement", "median", "ratio"]
    print_table(headers, sweep_rows, "Sweep")
    print_table(headers, overhead_rows, "fit: one round")
    print_table(headers, mnist_rows, "fit: rows per second")
    # time per round ~ rows x row_seconds / N + overhead: the cluster pays once the compute it
    # saves, rows x row_seconds x (1 - 1/N), exceeds the overhead
    n, overhead = constants["workers"], constants["overhead"]
    for name, row_seconds in (("digits 64-32-10", constants["row_seconds"]),
                              ("784-256-10", constants["mnist_row_seconds"])):
        pays = overhead / (row_seconds * (1 - 1 / n)) if n > 1 else math.inf
        print(f"model, {name}: round ~ rows x {fmt_seconds(row_seconds)} / N + {fmt_seconds(overhead)}; "
              f"on {n} workers fit pays from about {pays:,.0f} rows per step")

if __name__ == "__main__":
    main()

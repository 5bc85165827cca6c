"""Hostile and ordinary files and option values for the CLI fuzzer (tests/test_cli_fuzz.py).

Every file is written into one folder; the pools name each by path, so a drawn case is a plain
argument list that can be printed and rerun by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from helpers import MAZUR

_MAZUR = json.loads(MAZUR.read_text())
_SMALL = {"name": "fuzzsmall", "inputs": 2, "layers": [{"units": 3, "activation": "tanh"},
                                                       {"units": 3, "activation": "softmax"}],
          "loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.05},
          "example": {"inputs": [[0.1, 0.2], [0.3, -0.1]], "targets": [[1, 0, 0], [0, 0, 1]]}}


def _with(document: dict[str, Any], *path_and_value: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    *path, key, value = path_and_value
    target = document
    for part in path:
        target = target[part]
    target[key] = value
    return document


def _json(document: Any) -> str:
    return json.dumps(document)


def write_files(folder: Path) -> dict[str, list[str]]:
    """Write the pools' files under ``folder``; return {pool: [argument, ...]}."""
    texts: dict[str, str | bytes] = {
        # specs
        "mazur.json": MAZUR.read_text(),
        "small.json": _json(_SMALL),
        "bom.json": "\ufeff" + MAZUR.read_text(),
        "lr_1e999.json": MAZUR.read_text().replace('"learning_rate": 0.5', '"learning_rate": 1e999'),
        "lr_nan.json": MAZUR.read_text().replace('"learning_rate": 0.5', '"learning_rate": NaN'),
        "initial_1e999.json": MAZUR.read_text().replace('"w1": 0.15', '"w1": 1e999'),
        "initial_huge_int.json": MAZUR.read_text().replace('"w1": 0.15', '"w1": ' + "9" * 400),
        "seed_huge.json": _json(_with(_SMALL, "initial", {"seed": 10**40})),
        "units_huge.json": _json(_with(_SMALL, "layers", 0, "units", 10**30)),
        "units_float.json": _json(_with(_SMALL, "layers", 0, "units", 3.5)),
        "inputs_bool.json": _json(_with(_SMALL, "inputs", True)),
        "exp1000.json": _json(_with(_MAZUR, "layers", 0, "activation", {"expr": "x*exp(1000)"})),
        "exp2.json": _json(_with(_MAZUR, "layers", 0, "activation", {"expr": "x*exp(2)"})),
        "exp1000_loss.json": _json(_with(_MAZUR, "loss", {"expr": "(o-t)**2*exp(1000)"})),
        "example_1e308.json": _json(_with(_MAZUR, "example", {"inputs": [1e308, 1e308], "targets": [0, 1]})),
        "example_strings.json": _json(_with(_MAZUR, "example", {"inputs": ["a", "b"], "targets": [0, 1]})),
        "example_ragged.json": _json(_with(_SMALL, "example", {"inputs": [[0.1], [0.3, -0.1]],
                                                                "targets": [[1, 0, 0]]})),
        "float32_big.json": _json(_with(_with(_MAZUR, "dtype", "float32"), "initial", "w1", 1e39)),
        "activaton.json": MAZUR.read_text().replace('"activation": "sigmoid"', '"activaton": "sigmoid"', 1),
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "not_object.json": "[1, 2, 3]",
        "empty.json": "",
        "garbage.json": b"\x00\xff\xfe\x89PNG\r\n",
        "latin1.json": MAZUR.read_text().replace("mazur", "mazur\xe9").encode("latin-1"),
        "dupkeys.json": '{"name": "a", "name": "b"}',
        # data
        "reg.npz": b"",  # written below
        "clf_labels.npz": b"",
        "labels_str.npz": b"",
        "labels_float.npz": b"",
        "x_str.npz": b"",
        "x_obj.npz": b"",
        "npy_named.npz": b"",
        "text.npz": "X,T\n1,2\n",
        "good.csv": "0.05,0.1,0.01,0.99\n0.2,0.3,0.5,0.5\n",
        "bom.csv": "\ufeff0.05,0.1,0.01,0.99\n0.2,0.3,0.5,0.5\n",
        "semicolon.csv": "i1;i2;o1;o2\n0,05;0,1;0,01;0,99\n",
        "huge.csv": "1e999,2,3,4\n" + "9" * 400 + ",1,1,1\n",
        "nul.csv": "1,2,3,4\n1,\x002,3,4\n",
        "labels.csv": "0.1,0.2,2\n0.3,0.4,7\n",
        "header_only.csv": "a,b,c,d\n",
        "empty.csv": "",
        "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00",
        "data.txt": "1,2,3,4\n",
        # values files for --at
        "values.json": _json({"parameters": {"w5": 0.0}, "inputs": [0.05, 0.1], "targets": [0.01, 0.99]}),
        "values_1e999.json": '{"parameters": {"w5": 1e999}, "inputs": [0.05, 0.1], "targets": [0.01, 0.99]}',
        "values_hugeint.json": '{"parameters": {"w5": ' + "9" * 5000 + '}}',
        "values_strings.json": _json({"parameters": {"w5": "x"}, "inputs": "ab", "targets": None}),
        "values_unknown.json": _json({"parameters": {"nope": 1.0}, "extra": 1}),
        "values_list.json": "[]",
        "values_short.json": _json({"inputs": [0.05], "targets": [0.01, 0.99, 3]}),
        # grids for sweep --grid
        "grid.json": _json({"optimizer.learning_rate": [0.1, 0.5]}),
        "grid_list.json": "[]",
        "grid_empty.json": "{}",
        "grid_scalar.json": _json({"optimizer.learning_rate": 0.1}),
        "grid_no_values.json": _json({"optimizer.learning_rate": []}),
        "grid_unknown.json": _json({"nope.x": [1]}),
        "grid_layer_99.json": _json({"layers.99.units": [2]}),
        "grid_bad_value.json": _json({"optimizer.learning_rate": [-1, "x", None]}),
        "grid_empty_key.json": _json({"": [1]}),
        "grid_seed.json": _json({"initial.seed": [1, 2]}),
        "grid_huge.json": _json({"optimizer.learning_rate": [0.1] * 1000, "optimizer.momentum": [0.5] * 1000}),
        "grid_nan.json": '{"optimizer.learning_rate": [NaN]}',
        "grid_deep.json": _json({"optimizer." + "x." * 500 + "y": [1]}),
        "grid_schedule.json": _json({"optimizer.schedule": [{"name": "cosine", "T_max": 2}, {"name": "nope"}]}),
        # saved parameters for --init
        "theta_good.npz": b"",
        "theta_short.npz": b"",
        "theta_text.npz": "theta",
    }
    for name, text in texts.items():
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    np.savez(folder / "reg.npz", X=X, T=rng.normal(size=(12, 2)))
    np.savez(folder / "clf_labels.npz", X=X, y=rng.integers(0, 3, 12))
    np.savez(folder / "labels_str.npz", X=X, y=np.array(["a", "b", "c"] * 4))
    np.savez(folder / "labels_float.npz", X=X, y=np.linspace(0, 5, 12))
    np.savez(folder / "x_str.npz", X=np.array([["a", "b"]] * 12), T=np.zeros((12, 2)))
    np.savez(folder / "x_obj.npz", X=np.zeros((12, 2), complex), T=np.zeros((12, 2)))
    with open(folder / "npy_named.npz", "wb") as stream:
        np.save(stream, np.zeros((12, 2)))
    np.savez(folder / "theta_good.npz", theta=np.full(10, 0.1), state=np.zeros(0), epochs=np.int64(3))
    np.savez(folder / "theta_short.npz", theta=np.zeros(3))
    (folder / "a_folder").mkdir()
    (folder / "out").mkdir()
    good_specs = ["mazur.json", "small.json", "bom.json"]
    paths = lambda names: [str(folder / n) for n in names]  # noqa: E731 -- a local shorthand
    return {
        "spec": paths(good_specs),
        "spec!": paths([n for n in texts if n.endswith(".json") and not n.startswith(("values", "grid"))
                        and n not in good_specs])
        + [str(folder / "a_folder"), str(folder / "nowhere.json")],
        "data": paths(["reg.npz", "clf_labels.npz", "good.csv", "bom.csv"]),
        "data!": paths([n for n in texts if n.endswith((".npz", ".csv", ".txt")) and not n.startswith("theta")])
        + [str(folder / "a_folder"), str(folder / "nowhere.csv")],
        "values": ["initial", str(folder / "values.json")],
        "values!": paths([n for n in texts if n.startswith("values_")]) + [str(folder / "nowhere.json")],
        "grid": paths(["grid.json"]),
        "grid!": paths([n for n in texts if n.startswith("grid_")]) + [str(folder / "a_folder"),
                                                                       str(folder / "nowhere.json")],
        "init": paths(["theta_good.npz"]),
        "init!": paths(["theta_short.npz", "theta_text.npz", "reg.npz", "good.csv"]),
        "output": [str(folder / "out" / name) for name in ("result.txt", "curve.png", "t.npz")],
        "output!": [str(folder / "missing" / "x.txt"), str(folder / "a_folder"), str(folder / "out" / "curve.xyz"),
                    str(folder / "out" / "noext")],
        "out_dir": [str(folder / "gen")],
        "out_dir!": [str(folder / "missing" / "deeper"), str(folder / "mazur.json")],
    }

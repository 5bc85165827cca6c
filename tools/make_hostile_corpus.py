"""Write tests/data/hostile_specs.jsonl: broken and hostile specs, each with what must happen.

Every line is {"id", "why", "expect", "text"} where ``text`` is the file's content (not
necessarily JSON) and ``expect`` is "error" (a SpecError naming a JSON path) or "accept" (the
spec is valid and must build into working code, however odd its names).  Regenerate with

    python tools/make_hostile_corpus.py
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "hostile_specs.jsonl"

BASE: dict[str, Any] = {
    "name": "victim",
    "inputs": ["i1", "i2"],
    "layers": [
        {"units": ["h1", "h2"], "activation": "sigmoid", "weights": [["w1", "w2"], ["w3", "w4"]],
         "bias": {"mode": "shared", "name": "b1"}},
        {"units": ["o1", "o2"], "activation": "sigmoid", "weights": [["w5", "w6"], ["w7", "w8"]],
         "bias": {"mode": "shared", "name": "b2"}},
    ],
    "loss": "half_sse",
    "optimizer": {"name": "sgd", "learning_rate": 0.5},
    "initial": {"w1": 0.15},
    "frozen": ["b1"],
    "example": {"inputs": [0.05, 0.1], "targets": [0.01, 0.99]},
}

entries: list[dict[str, str]] = []


def raw(why: str, text: str, expect: str = "error") -> None:
    entries.append({"id": f"{len(entries):03d}", "why": why, "expect": expect, "text": text})


def spec(why: str, change: Callable[[dict[str, Any]], Any], expect: str = "error") -> None:
    document = copy.deepcopy(BASE)
    change(document)
    raw(why, json.dumps(document), expect)


def setter(*path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    *path, value = path_and_value

    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def deleter(*path: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def rename_unit(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        for layer in document["layers"]:
            layer["units"] = [new if u == old else u for u in layer["units"]]
    return change


def rename_parameter(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        for layer in document["layers"]:
            layer["weights"] = [[new if w == old else w for w in row] for row in layer["weights"]]
            if layer["bias"].get("name") == old:
                layer["bias"]["name"] = new
        document["initial"] = {new if k == old else k: v for k, v in document["initial"].items()}
        document["frozen"] = [new if k == old else k for k in document["frozen"]]
    return change


def main() -> None:
    good = json.dumps(BASE)
    # -- malformed files ---------------------------------------------------------------------
    raw("empty file", "")
    raw("only whitespace", "   \n\t ")
    raw("truncated", good[: len(good) // 2])
    raw("trailing comma", good[:-1] + ",}")
    raw("single quotes", good.replace('"', "'"))
    raw("a comment", "// spec\n" + good)
    raw("JSON null", "null")
    raw("a list", "[]")
    raw("a number", "123")
    raw("a string", '"spec"')
    raw("NaN literal", good.replace("0.15", "NaN"))
    raw("Infinity literal", good.replace("0.15", "Infinity"))
    raw("-Infinity literal", good.replace("0.5}", "-Infinity}"))
    raw("duplicate key", '{"name": "a", "name": "b"}')
    raw("nesting 100000 deep", "[" * 100000 + "]" * 100000)
    raw("nested objects 5000 deep", '{"a":' * 5000 + "1" + "}" * 5000)
    raw("integer with 5000 digits", good.replace("0.15", "1" * 5000))
    raw("control character in a string", good.replace('"victim"', '"vic\\u0000tim"'))
    raw("lone surrogate", good.replace('"victim"', '"\\ud800"'))
    raw("byte order mark (Windows editors write one)", "\ufeff" + good, expect="accept")
    # -- wrong types and values ---------------------------------------------------------------
    for why, value in [("name a number", 1), ("name null", None), ("name a list", []), ("name empty", ""),
                       ("name with a slash", "../x"), ("name absolute path", "/tmp/x"), ("name with a dot", "a.b"),
                       ("name with a dash", "a-b"), ("name with a space", "a b"), ("name non-ASCII", "r\u00e9seau"),
                       ("name CJK", "\u540d\u524d"), ("name 65 characters", "a" * 65),
                       ("name 10000 characters", "a" * 10000), ("name a Python keyword", "class"),
                       ("name None", "None"), ("name shadows os", "os"), ("name shadows numpy", "numpy"),
                       ("name shadows symgrad", "symgrad"), ("name shadows sys", "sys"),
                       ("name starting with _", "_x"), ("name starting with a digit", "1x"),
                       ("name with a newline", "a\nb"), ("name Jinja injection", "{{ 7*7 }}"),
                       ("name with a quote", 'a"b')]:
        spec(why, setter("name", value))
    for why, value in [("inputs 0", 0), ("inputs -1", -1), ("inputs 1.5", 1.5), ("inputs a string", "2"),
                       ("inputs empty list", []), ("inputs a list of numbers", [1, 2]), ("inputs true", True),
                       ("inputs 10**6", 10**6), ("inputs an object", {"n": 2})]:
        spec(why, setter("inputs", value))
    for why, value in [("layers an object", {}), ("layers a string", "x"), ("layers empty", []), ("layers [1]", [1]),
                       ("layers [{}]", [{}]), ("65 layers", [{"units": 1, "activation": "linear"}] * 65)]:
        spec(why, setter("layers", value))
    for why, value in [("units a string", "x"), ("units 0", 0), ("units 10**6", 10**6), ("units null", None),
                       ("units a list of lists", [["h1"]]), ("units true", True)]:
        spec(why, setter("layers", 0, "units", value))
    for why, value in [("activation unknown", "sigmod"), ("activation a number", 3), ("activation null", None),
                       ("activation empty object", {}), ("activation name and expr", {"name": "tanh", "expr": "x"}),
                       ("slope for tanh", {"name": "tanh", "slope": 0.1}),
                       ("slope 2", {"name": "leaky_relu", "slope": 2}),
                       ("slope -1", {"name": "leaky_relu", "slope": -1}), ("softmax hidden", "softmax"),
                       ("activation a list", ["sigmoid"])]:
        spec(why, setter("layers", 0, "activation", value))
    for why, value in [("loss a number", 1), ("loss a list", []), ("loss name a number", {"name": 1}),
                       ("loss empty object", {}), ("loss name and expr", {"name": "mse", "expr": "o"}),
                       ("loss unknown", "mae"), ("loss reduction unknown", {"name": "mse", "reduction": "max"}),
                       ("cross_entropy without softmax", "cross_entropy"),
                       ("label smoothing on mse", {"name": "mse", "label_smoothing": 0.1}),
                       ("label smoothing 2", {"name": "mse", "label_smoothing": 2})]:
        spec(why, setter("loss", value))
    for why, value in [("optimizer a list", []), ("optimizer without learning rate", {"name": "sgd"}),
                       ("learning rate 0", {"name": "sgd", "learning_rate": 0}),
                       ("learning rate negative", {"name": "sgd", "learning_rate": -0.1}),
                       ("learning rate 1e7", {"name": "sgd", "learning_rate": 1e7}),
                       ("learning rate a string", {"name": "sgd", "learning_rate": "fast"}),
                       ("learning rate true", {"name": "sgd", "learning_rate": True}),
                       ("optimizer unknown", {"name": "adagrad", "learning_rate": 0.1}),
                       ("momentum 1.5", {"name": "sgd", "learning_rate": 0.1, "momentum": 1.5}),
                       ("nesterov without momentum", {"name": "sgd", "learning_rate": 0.1, "nesterov": True}),
                       ("betas for sgd", {"name": "sgd", "learning_rate": 0.1, "betas": [0.9, 0.99]}),
                       ("betas of 1", {"name": "adam", "learning_rate": 0.1, "betas": [1, 0.9]}),
                       ("three betas", {"name": "adam", "learning_rate": 0.1, "betas": [0.9, 0.9, 0.9]}),
                       ("eps 0", {"name": "adam", "learning_rate": 0.1, "eps": 0}),
                       ("weight decay negative", {"name": "adamw", "learning_rate": 0.1, "weight_decay": -1}),
                       ("momentum for adam", {"name": "adam", "learning_rate": 0.1, "momentum": 0.9})]:
        spec(why, setter("optimizer", value))
    for why, value in [("schedule a string", "cosine"), ("schedule without name", {"T_max": 3}),
                       ("schedule unknown", {"name": "onecycle"}), ("step schedule without step_size", {"name": "step"}),
                       ("step_size 0", {"name": "step", "step_size": 0}),
                       ("step_size 2**70", {"name": "step", "step_size": 2**70}),
                       ("gamma 0", {"name": "exponential", "gamma": 0}),
                       ("gamma above 1", {"name": "exponential", "gamma": 1.5}),
                       ("milestones unordered", {"name": "multistep", "milestones": [5, 2]}),
                       ("milestones a number", {"name": "multistep", "milestones": 5}),
                       ("T_max for step", {"name": "step", "step_size": 2, "T_max": 3}),
                       ("eta_min negative", {"name": "cosine", "T_max": 3, "eta_min": -1}),
                       ("start_factor 0", {"name": "linear", "start_factor": 0}),
                       ("total_iters 1.5", {"name": "linear", "total_iters": 1.5})]:
        spec(why, setter("optimizer", "schedule", value))
    for why, value in [("cosine schedule", {"name": "cosine", "T_max": 3}), ("linear schedule", {"name": "linear"}),
                       ("multistep schedule", {"name": "multistep", "milestones": [1, 10**9]})]:
        spec(why, setter("optimizer", "schedule", value), expect="accept")
    for why, value in [("initial a list", []), ("initial value a string", {"w1": "x"}), ("seed negative", {"seed": -1}),
                       ("seed 1.5", {"seed": 1.5}), ("seed 2**64", {"seed": 2**64}),
                       ("scheme unknown", {"scheme": "he"}),
                       ("initial names no parameter", {"w9": 0.1}), ("initial value true", {"w1": True}),
                       ("initial value null", {"w1": None})]:
        spec(why, setter("initial", value))
    for why, value in [("frozen a string", "b1"), ("frozen numbers", [1]), ("frozen unknown", ["nope"]),
                       ("frozen twice", ["b1", "b1"]), ("frozen an object", {"b1": True})]:
        spec(why, setter("frozen", value))
    for why, value in [("dtype float16", "float16"), ("dtype a number", 32), ("dtype null", None)]:
        spec(why, setter("dtype", value))
    for why, value in [("example inputs too short", {"inputs": [0.1], "targets": [0.0, 1.0]}),
                       ("example mixes rows and numbers", {"inputs": [[0.1, 0.2], 0.3], "targets": [0.0, 1.0]}),
                       ("example rows disagree", {"inputs": [[0.1, 0.2], [0.3, 0.4]], "targets": [[0.0, 1.0]]}),
                       ("example strings", {"inputs": ["a", "b"], "targets": [0.0, 1.0]}),
                       ("example without targets", {"inputs": [0.1, 0.2]})]:
        spec(why, setter("example", value))
    # -- structure ----------------------------------------------------------------------------
    spec("weights: one row too many", setter("layers", 0, "weights", [["w1", "w2"], ["w3", "w4"], ["w9", "w10"]]))
    spec("weights: a row too short", setter("layers", 0, "weights", [["w1", "w2"], ["w3"]]))
    spec("weights: not a matrix", setter("layers", 0, "weights", ["w1", "w2"]))
    spec("weights: empty", setter("layers", 0, "weights", []))
    spec("bias names for a shared bias", setter("layers", 0, "bias", {"mode": "shared", "names": ["a"]}))
    spec("bias name for per-unit biases", setter("layers", 0, "bias", {"mode": "per_unit", "name": "a"}))
    spec("bias names count wrong", setter("layers", 0, "bias", {"mode": "per_unit", "names": ["a"]}))
    spec("bias none with a name", setter("layers", 0, "bias", {"mode": "none", "name": "a"}))
    spec("bias mode unknown", setter("layers", 0, "bias", "sometimes"))
    spec("softmax with one unit", lambda d: d["layers"][1].update(units=["o1"], weights=[["w5", "w6"]],
                                                               activation="softmax"))
    spec("l2 negative", setter("layers", 0, "l2", -0.1))
    spec("l1 huge", setter("layers", 0, "l1", 1e7))
    spec("regularize_bias a string", setter("layers", 0, "regularize_bias", "yes"))
    for level, path in [("top level", ()), ("a layer", ("layers", 0)), ("the optimizer", ("optimizer",)),
                        ("the example", ("example",)), ("the bias", ("layers", 0, "bias"))]:
        spec(f"unknown key in {level}", lambda d, path=path: _target(d, path).update(__proto__=1))
    spec("missing name", deleter("name"))
    spec("missing inputs", deleter("inputs"))
    spec("missing loss", deleter("loss"))
    spec("missing units", deleter("layers", 0, "units"))
    spec("missing activation", deleter("layers", 0, "activation"))
    # -- name collisions ----------------------------------------------------------------------
    spec("two weights named alike", rename_parameter("w2", "w1"))
    spec("a weight named like a bias", rename_parameter("w8", "b1"))
    spec("a unit named like an input", rename_unit("h1", "i1"))
    spec("a unit named like a weight", rename_unit("o2", "w5"))
    spec("two units named alike", rename_unit("h2", "h1"))
    spec("an input named like a weight", setter("inputs", ["w1", "i2"]))
    spec("explicit name equals a generated one", lambda d: (d["layers"][0].pop("weights"),
                                                             d["layers"][1].update(units=["o1", "W1_0_0"]),
                                                             d["initial"].clear(), d.update(frozen=[])))
    # -- odd but valid names: the generated code must not care -------------------------------
    for word in ["int", "return", "class", "for", "static", "double", "float", "main", "theta", "grad", "X", "T",
                 "np", "numpy", "self", "None", "True", "PyObject", "N_INPUTS", "real", "scale", "total", "E", "n",
                 "row", "scratch", "exp", "log", "sqrt", "sg_sigmoid", "delta", "net", "out", "state", "import",
                 "lambda", "NULL", "sizeof", "struct", "goto", "volatile", "restrict", "inline", "__init__", "printf",
                 "x_i1", "p_w1", "delta_h1", "net_h1", "t_o1"]:
        if word.startswith("_"):
            continue
        spec(f"unit named {word}", rename_unit("h1", word), expect="accept")
        spec(f"weight named {word}", rename_parameter("w6", word), expect="accept")
    spec("name is a C keyword", setter("name", "static"), expect="accept")
    spec("name is main", setter("name", "main"), expect="accept")
    spec("64-character names", lambda d: (rename_unit("h1", "h" * 64)(d), rename_parameter("w1", "w" * 64)(d)),
         expect="accept")
    # -- numbers ------------------------------------------------------------------------------
    spec("tiny learning rate", setter("optimizer", "learning_rate", 1e-300), expect="accept")
    spec("huge initial value", setter("initial", "w1", 1e308), expect="accept")
    spec("negative zero", setter("initial", "w1", -0.0), expect="accept")
    spec("seed 2**63-1", setter("initial", {"seed": 2**63 - 1}), expect="accept")
    spec("10**6 units", setter("layers", 0, "units", 10**6))
    spec("a 10**5 x 10**5 layer", lambda d: d.update(inputs=100000, layers=[
        {"units": 100000, "activation": "relu"}, {"units": 2, "activation": "linear"}], initial={}, frozen=[]))
    spec("a list of 100001 unit names", setter("layers", 0, "units", [f"u{k}" for k in range(100001)]))
    # -- formula injection --------------------------------------------------------------------
    for formula in ["__import__('os').system('touch pwned')", "x.__class__", "().__class__.__bases__[0]",
                    "lambda: 1", "[x for x in range(9)]", "x[0]", "9**9**9", "x**1000", "(" * 200 + "x" + ")" * 200,
                    "x+" * 600 + "x", "open('/etc/passwd')", "eval('1')", "exec('1')", "globals()", "y + x",
                    "x if x else 0", "x; import os", "x ^ 2", "'x'", "x # comment", "1e400", "log(0)", "1/0",
                    "sqrt(-1)", "exp", "exp(x, x)", "{{ 7*7 }}", "x */ int main(void) { return 0; } /*",
                    "x\n#include <stdlib.h>", "__builtins__", "x + t", "o + t"]:
        spec(f"activation formula {formula[:30]!r}", setter("layers", 0, "activation", {"expr": formula}))
    for formula in ["__import__('os')", "o.real", "q * o", "x", "o[t]", "o @ t", "o ** 99999", "",
                    "$(rm -rf /)", "`id`"]:
        spec(f"loss formula {formula[:30]!r}", setter("loss", {"expr": formula}))
    spec("a sane custom activation and loss", lambda d: (d["layers"][0].update(activation={"expr": "x/(1+abs(x))"}),
                                                          d.update(loss={"expr": "(o-t)**2/2"})), expect="accept")
    # -- numbers beyond a float's range (they would silently become infinity) -----------------
    raw("two byte order marks", "\ufeff\ufeff" + good)
    raw("1e999 as an initial value", good.replace("0.15", "1e999"))
    raw("-1e999 as the learning rate", good.replace('"learning_rate": 0.5', '"learning_rate": -1e999'))
    raw("1e400 in the example", good.replace("0.05", "1e400"))
    raw("an integer beyond a float as an initial value", good.replace("0.15", "9" * 400))
    raw("an integer beyond a float as the learning rate", good.replace('"learning_rate": 0.5', '"learning_rate": '
                                                                        + "9" * 320))
    raw("an integer beyond a float as l2", good.replace('"activation": "sigmoid"', '"activation": "sigmoid", "l2": '
                                                        + "9" * 330, 1))
    spec("float32 initial value near float32's largest", lambda d: (d.update(dtype="float32"),
                                                                    d["initial"].update(w1=3.4e38)), expect="accept")
    for why, value in [("float32 initial value 3.5e38", 3.5e38), ("float32 initial value -3.5e38", -3.5e38),
                       ("float32 initial value 1e300", 1e300), ("float32 initial value -1.79e308", -1.79e308)]:
        spec(why, lambda d, value=value: (d.update(dtype="float32"), d["initial"].update(w1=value)))
    # -- names that end in a line break (a $ anchor would let them through) ---------------------
    for why, path in [("name", ("name",)), ("an input name", ("inputs", 1)),
                      ("a unit name", ("layers", 0, "units", 0)), ("a weight name", ("layers", 1, "weights", 0, 0)),
                      ("a bias name", ("layers", 0, "bias", "name"))]:
        for ending in ("\n", "\r\n"):
            spec(f"{why} ending in {ending!r}", lambda d, path=path, ending=ending: _end_name(d, path, ending))
    # -- package names the generated code or the C headers use --------------------------------
    for name in ("sg", "c_backend"):
        spec(f"package named {name} (a generated helper's name)", setter("name", name))
    for name in ("limits", "stdint", "features", "stddef", "stdlib", "float"):
        spec(f"package named like the C header {name}.h", setter("name", name), expect="accept")
    # -- formulas that would make SymPy work for minutes, or reach generated text ---------------
    for formula in ["1/((o-t+2)**16)**16", "(o-t)**40", "exp(1/(o-t+2)**64)", "((o-t)**8)**8"]:
        spec(f"loss formula of a huge degree {formula!r}", setter("loss", {"expr": formula}))
    for formula in ["x\n+1", "x\r+1", "x\t+1", "x\u2028+1", "x\u00a0+1", "x\u200b+1", "x\u0000"]:
        spec(f"activation formula with a control character {formula!r}",
             setter("layers", 0, "activation", {"expr": formula}))
    for formula in ["(-1)**x", "0**x", "(1-1)**x", "(-2.5)**(x+1)"]:
        spec(f"activation formula with a non-positive base {formula!r}",
             setter("layers", 0, "activation", {"expr": formula}))
    for formula in ["x*exp(1000)", "exp(36)*x", "1e16*x"]:
        spec(f"activation formula with a huge constant {formula!r}",
             setter("layers", 0, "activation", {"expr": formula}))
    spec("a constant activation", setter("layers", 0, "activation", {"expr": "0*x + 1/2"}), expect="accept")
    spec("a constant loss", setter("loss", {"expr": "3", "reduction": "sum"}), expect="accept")
    # -- misspelled keys: named as such ("did you mean"), not only as a missing key ------------
    spec("misspelled activaton", lambda d: d["layers"][0].update(activaton=d["layers"][0].pop("activation")))
    spec("misspelled unit", lambda d: d["layers"][1].update(unit=d["layers"][1].pop("units")))
    spec("misspelled nmae", lambda d: d.update(nmae=d.pop("name")))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(e, ensure_ascii=True) + "\n" for e in entries))
    print(f"wrote {OUT}: {len(entries)} specs, {sum(e['expect'] == 'accept' for e in entries)} to accept")


def _end_name(document: dict[str, Any], path: tuple[Any, ...], ending: str) -> None:
    """Append ``ending`` to the name at ``path`` (the base spec names every unit, weight and bias)."""
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = node[path[-1]] + ending


def _target(document: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    for key in path:
        document = document[key]
    return document


if __name__ == "__main__":
    main()

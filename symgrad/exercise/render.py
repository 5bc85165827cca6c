"""Exercises -> the question sheet and the answer key, as Markdown or HTML, through the templates here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import markupsafe

from ..formulas import evaluate, format_number, point_from_spec
from ..naming import code_name
from ..pipeline import analyze
from ..templates import template_environment

LOSS_WORDS = {
    "half_sse": "E = ½ Σₖ (tₖ − oₖ)², summed over the outputs",
    "sse": "E = Σₖ (tₖ − oₖ)², summed over the outputs",
    "mse": "E = (1/K) Σₖ (tₖ − oₖ)², the mean over the K outputs",
    "cross_entropy": "E = −Σₖ tₖ log oₖ (cross-entropy after the softmax outputs)",
    "binary_cross_entropy": "E = −Σₖ [tₖ log oₖ + (1 − tₖ) log(1 − oₖ)] (binary cross-entropy)",
}


def optimizer_words(optimizer: dict[str, Any]) -> str:
    rate = optimizer["learning_rate"]
    if optimizer["name"] == "adam":
        return (f"Adam with learning rate η = {rate:g}, β₁ = 0.9, β₂ = 0.999, ε = 1e-8, from a fresh state "
                "(m = v = 0)")
    words = f"gradient descent (SGD) with learning rate η = {rate:g}"
    if optimizer.get("momentum"):
        words += f" and momentum μ = {optimizer['momentum']:g}, from a fresh state (no velocity yet)"
    if optimizer.get("weight_decay"):
        words += f" and weight decay λ = {optimizer['weight_decay']:g} (added to each gradient as λ·p)"
    return words


def _layers(spec: dict[str, Any], short: Callable[[float], str]) -> list[dict[str, Any]]:
    """Each layer as the sheet shows it: its units, activation, weight rows and biases with values."""
    initial = spec["initial"]
    shown, previous = [], spec["inputs"]
    for k, layer in enumerate(spec["layers"]):
        bias = layer["bias"]
        if bias == "none":
            biases = "no bias"
        elif bias["mode"] == "shared":
            biases = f"{bias['name']} = {short(initial[bias['name']])}, shared by {', '.join(layer['units'])}"
        else:
            biases = ", ".join(f"{name} = {short(initial[name])}" for name in bias["names"])
        rows = [{"unit": unit, "weights": [{"name": w, "value": short(initial[w]), "source": source}
                                           for w, source in zip(row, previous)]}
                for unit, row in zip(layer["units"], layer["weights"])]
        shown.append({"title": "hidden layer" if k < len(spec["layers"]) - 1 else "output layer",
                      "units": layer["units"], "activation": layer["activation"], "rows": rows, "biases": biases,
                      "inputs": previous})
        previous = layer["units"]
    return shown


def _context(item: Any, index: int, digits: int, typeset: bool) -> dict[str, Any]:
    """The numbers of one exercise as text; ``typeset`` (HTML) writes a minus sign, not a hyphen."""
    spec = item.spec
    gradients = analyze(spec).gradients
    values = evaluate(gradients, point_from_spec(gradients))
    model = gradients.model
    signed = (lambda text: text.replace("-", "\u2212")) if typeset else (lambda text: text)
    number = lambda value: signed(format_number(value, digits))  # noqa: E731
    short = lambda value: signed(f"{value:g}")  # noqa: E731 -- the given numbers, as the spec has them
    units = [{"name": unit.name, "net": number(values[unit.net]), "out": number(values[unit.out])}
             for layer in model.layers for unit in layer.units]
    return {
        "index": index,
        "name": spec["name"],
        "layers": _layers(spec, short),
        "inputs": [{"name": n, "value": short(v)} for n, v in zip(spec["inputs"], item.inputs)],
        "targets": [{"name": code_name("target", u), "value": short(v)}
                    for u, v in zip(spec["layers"][-1]["units"], item.targets)],
        "loss": LOSS_WORDS[spec["loss"]],
        "optimizer": optimizer_words(spec["optimizer"]),
        "units": units,
        "error": number(item.loss),
        "parameters": [{"name": name, "before": short(spec["initial"][name]), "gradient": number(item.gradient[name]),
                        "after": number(item.updated[name])} for name in item.gradient],
    }


def render(kind: str, format: str, items: list[Any], seed: int, digits: int) -> str:
    environment = template_environment(Path(__file__).parent)
    environment.autoescape = format == "html"
    exercises = [_context(item, k, digits, format == "html") for k, item in enumerate(items, 1)]
    text = environment.get_template(f"{kind}.{format}.jinja").render(seed=seed, exercises=exercises)
    return str(markupsafe.Markup(text)) if format == "html" else text

"""The spec's JSON Schema, and the validator that enforces it.

One source for two things: ``SCHEMA`` is what ``python -m symgrad schema`` prints, and
:func:`validate` walks the very same dictionary to check a spec, so the published schema and
the checks cannot drift.  The validator understands the subset of JSON Schema (draft 2020-12)
that ``SCHEMA`` uses; a keyword it does not know is an :class:`InternalError`, not a silent pass.
Rules a schema cannot say (weights matrix shapes, unique names, softmax placement) live in
``symgrad.spec``.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from typing import Any

from . import optimizers
from .errors import InternalError, SpecError, json_path

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "linear", "softmax")
LOSSES = ("half_sse", "sse", "mse", "cross_entropy", "binary_cross_entropy")
REDUCTIONS = ("mean", "sum")
BIAS_MODES = ("per_unit", "shared", "none")
SCHEMES = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "uniform", "zeros")
OPTIMIZERS = tuple(optimizers.OPTIMIZERS)
DTYPES = ("float64", "float32")

#: Largest count accepted for ``inputs`` or a layer's ``units`` (a spec is untrusted data).
MAX_UNITS = 100_000
MAX_LAYERS = 64
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$(?!\n)"  # (?!\n): Python's $ also matches before a final newline

_NAME = {
    "type": "string",
    "pattern": NAME_PATTERN,
    "x-what": "name",
    "x-hint": "use 1 to 64 ASCII letters, digits and _, starting with a letter",
}
# A number that fits a double (JSON allows 1e999 and 400-digit integers; a float would make them inf).
_FINITE = {"type": "number", "minimum": -sys.float_info.max, "maximum": sys.float_info.max}
_NAMES_OR_COUNT = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_UNITS},
        {"type": "array", "items": _NAME, "minItems": 1, "maxItems": MAX_UNITS},
    ],
}
# One example as a list of numbers, or several as a list of such lists.
_ROWS = {
    "type": "array",
    "minItems": 1,
    "items": {"anyOf": [_FINITE, {"type": "array", "items": _FINITE, "minItems": 1}]},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://symgrad.invalid/spec.schema.json",
    "title": "symgrad network spec",
    "description": "A fully connected network, its loss and optimizer, for symgrad to differentiate and compile.",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "inputs", "layers", "loss"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": NAME_PATTERN,
            "x-what": "package name",
            "x-hint": "use a Python identifier of 1 to 64 ASCII letters, digits and _, starting with a letter",
            "description": "The generated package's name (a Python identifier).",
        },
        "inputs": dict(_NAMES_OR_COUNT, description="How many inputs, or their names."),
        "layers": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_LAYERS,
            "description": "Fully connected layers, first hidden layer first, output layer last.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["units", "activation"],
                "properties": {
                    "units": dict(_NAMES_OR_COUNT, description="How many units, or their names."),
                    "activation": {
                        "description": "The activation applied to each unit's net input.",
                        "anyOf": [
                            {"type": "string", "enum": list(ACTIVATIONS), "x-what": "activation"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "description": 'Either {"name": ...} or {"expr": "..."}, a formula in x.',
                                "properties": {
                                    "name": {"type": "string", "enum": list(ACTIVATIONS), "x-what": "activation"},
                                    "slope": {"type": "number", "minimum": 0, "maximum": 1,
                                              "description": "leaky_relu's slope for negative inputs (default 0.01)."},
                                    "expr": {"type": "string", "x-what": "formula",
                                             "description": "A formula in x: numbers, x, + - * / **, and exp, log, "
                                                            "sqrt, abs, tanh, sigmoid, softplus, erf, max, min."},
                                },
                            },
                        ],
                    },
                    "weights": {
                        "type": "array",
                        "description": "Weight names: weights[j][i] connects input i to unit j.",
                        "minItems": 1,
                        "items": {"type": "array", "items": _NAME, "minItems": 1},
                    },
                    "l2": {"type": "number", "minimum": 0, "maximum": 1e6,
                           "description": "Adds l2 * sum(W**2) over the layer's weights to the loss (default 0)."},
                    "l1": {"type": "number", "minimum": 0, "maximum": 1e6,
                           "description": "Adds l1 * sum(abs(W)) over the layer's weights to the loss (default 0)."},
                    "regularize_bias": {"type": "boolean",
                                        "description": "Whether l1 and l2 cover the layer's biases too "
                                                       "(default false)."},
                    "bias": {
                        "description": "per_unit (default), shared (one bias for the layer) or none.",
                        "anyOf": [
                            {"type": "string", "enum": list(BIAS_MODES), "x-what": "bias mode"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["mode"],
                                "properties": {
                                    "mode": {"type": "string", "enum": list(BIAS_MODES), "x-what": "bias mode"},
                                    "name": dict(_NAME, description="The shared bias's name."),
                                    "names": {"type": "array", "items": _NAME, "minItems": 1,
                                              "description": "The per-unit biases' names, in unit order."},
                                },
                            },
                        ],
                    },
                },
            },
        },
        "loss": {
            "description": "The per-example loss, and how a batch's examples are combined.",
            "anyOf": [
                {"type": "string", "enum": list(LOSSES), "x-what": "loss"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "description": 'Either {"name": ...} or {"expr": "..."} (a per-output term in o and t), '
                                   'with an optional "reduction".',
                    "properties": {
                        "name": {"type": "string", "enum": list(LOSSES), "x-what": "loss"},
                        "expr": {"type": "string", "x-what": "formula",
                                 "description": "One output's loss term in o (output) and t (target), summed over "
                                                "the outputs: numbers, o, t, + - * / **, and exp, log, sqrt, abs, "
                                                "tanh, sigmoid, softplus, erf, max, min."},
                        "reduction": {"type": "string", "enum": list(REDUCTIONS), "x-what": "reduction",
                                      "description": "mean (default) or sum over the batch's examples."},
                        "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1,
                                            "description": "cross_entropy only: targets become (1 - s) t + s/K, "
                                                           "as in PyTorch (default 0)."},
                    },
                },
            ],
        },
        "optimizer": {
            "type": "object",
            "description": "Default: {\"name\": \"sgd\", \"learning_rate\": 0.1}.",
            "additionalProperties": False,
            "required": ["name", "learning_rate"],
            "properties": {
                "name": {"type": "string", "enum": list(OPTIMIZERS), "x-what": "optimizer",
                         "description": ", ".join(OPTIMIZERS[:-1]) + f" or {OPTIMIZERS[-1]}, "
                                        "with PyTorch's update rules and defaults."},
                "learning_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6},
                **optimizers.schema_properties(),
                "schedule": optimizers.schedule_schema(),
            },
        },
        "initial": {
            "type": "object",
            "description": "Initial values by parameter name; 'scheme' and 'seed' fill the weights not named "
                           "(default xavier_uniform, seed 0); biases not named start at 0.",
            "properties": {
                "scheme": {"type": "string", "enum": list(SCHEMES), "x-what": "initialization scheme"},
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            },
            "additionalProperties": _FINITE,
        },
        "frozen": {
            "type": "array",
            "items": _NAME,
            "description": "Parameters the optimizer never changes (their derivatives are still computed).",
        },
        "dtype": {"type": "string", "enum": list(DTYPES), "x-what": "dtype",
                  "description": "float64 (default) or float32, for the generated code and its arrays."},
        "example": {
            "type": "object",
            "description": "One example (or a list of them) for formulas --at initial and explain.",
            "additionalProperties": False,
            "required": ["inputs", "targets"],
            "properties": {"inputs": _ROWS, "targets": _ROWS},
        },
    },
}

_JSON_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
_KNOWN_KEYWORDS = {
    "$schema", "$id", "title", "description", "type", "properties", "required",
    "additionalProperties", "items", "minItems", "maxItems", "enum", "minimum", "maximum",
    "exclusiveMinimum", "pattern", "anyOf", "x-what", "x-hint",
}


def json_type(value: Any) -> str:
    """The JSON type of a parsed value (booleans are not numbers here, unlike in Python)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    raise InternalError(f"value of Python type {type(value).__name__} in a parsed spec")


def _matches_type(value: Any, wanted: str) -> bool:
    actual = json_type(value)
    return actual == wanted or (wanted == "number" and actual == "integer")


def describe(value: Any) -> str:
    """A short rendering of a value for an error message."""
    kind = json_type(value)
    if kind == "string":
        shown = value if len(value) <= 40 else value[:37] + "..."
        return '"' + shown.encode("unicode_escape").decode("ascii") + '"'
    if kind in ("integer", "number", "boolean", "null"):
        return "null" if value is None else str(value).lower() if kind == "boolean" else repr(value)
    return _JSON_TYPE_NAMES[kind]


def suggest(word: str, choices: list[str]) -> str:
    """' (did you mean "x"?)' when a close choice exists (the same name in another case first), else ''."""
    same = [choice for choice in choices if choice.lower() == word.lower()]
    close = same or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


_TYPE_HINTS = {
    "object": 'write an object: {"key": value, ...}',
    "array": "write a list: [item, ...]",
    "string": 'write a string in double quotes',
    "integer": "write a whole number such as 3",
    "number": "write a number such as 0.5",
    "boolean": "write true or false",
    "null": "write null",
}


def validate(document: Any, schema: dict[str, Any] = SCHEMA) -> None:
    """Raise :class:`SpecError` for the first place where ``document`` breaks ``schema``."""
    _check(document, schema, (), "")


def _hint(schema: dict[str, Any], inherited: str) -> str:
    """What to tell the user: the schema's own hint or description, else the enclosing one's."""
    return schema.get("x-hint") or schema.get("description") or inherited


def _check(value: Any, schema: dict[str, Any], path: tuple[str | int, ...], inherited: str) -> None:
    unknown = set(schema) - _KNOWN_KEYWORDS
    if unknown:
        raise InternalError(f"schema keyword(s) {sorted(unknown)} at {json_path(path)} are not supported")
    hint = _hint(schema, inherited)
    if "anyOf" in schema:
        _check_any_of(value, schema, path, hint)
        return
    wanted = schema.get("type")
    if wanted is not None and not _matches_type(value, wanted):
        raise SpecError(json_path(path), f"expected {_JSON_TYPE_NAMES[wanted]}, got {describe(value)}",
                        hint or _TYPE_HINTS[wanted])
    if (isinstance(value, float) and not math.isfinite(value)) or (wanted == "number" and isinstance(value, int)
                                                                   and abs(value) >= 2**1024):
        raise SpecError(json_path(path), f"{str(value)[:24]} is not a finite number", "use an ordinary number")
    if "enum" in schema and value not in schema["enum"]:
        what = schema.get("x-what", "value")
        choices = [str(c) for c in schema["enum"]]
        raise SpecError(json_path(path), f"{describe(value)} is not a known {what}"
                        + (suggest(value, choices) if isinstance(value, str) else ""),
                        "use one of: " + ", ".join(choices))
    if "pattern" in schema and not re.fullmatch(schema["pattern"], value):  # "$" alone lets "a\n" through
        what = schema.get("x-what", "value")
        raise SpecError(json_path(path), f"{describe(value)} is not a valid {what}", hint)
    _check_bounds(value, schema, path, hint)
    if wanted == "object":
        _check_object(value, schema, path, hint)
    elif wanted == "array":
        _check_array(value, schema, path, hint)


def _check_any_of(value: Any, schema: dict[str, Any], path: tuple[str | int, ...], hint: str) -> None:
    # The branches of every anyOf in SCHEMA have distinct JSON types, so the value's type picks
    # one branch and that branch's error is the precise one to report.
    branches = schema["anyOf"]
    for branch in branches:
        if branch.get("type") is None or _matches_type(value, branch["type"]):
            _check(value, branch, path, hint)
            return
    kinds = " or ".join(dict.fromkeys(_JSON_TYPE_NAMES[b["type"]] for b in branches))
    raise SpecError(json_path(path), f"expected {kinds}, got {describe(value)}",
                    hint or "; or ".join(_TYPE_HINTS[b["type"]] for b in branches))


def _check_bounds(value: Any, schema: dict[str, Any], path: tuple[str | int, ...], hint: str) -> None:
    where = json_path(path)
    if "minimum" in schema and value < schema["minimum"]:
        raise SpecError(where, f"{value} is below the minimum {schema['minimum']}", "use a larger value")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise SpecError(where, f"{value} must be greater than {schema['exclusiveMinimum']}", "use a larger value")
    if "maximum" in schema and value > schema["maximum"]:
        raise SpecError(where, f"{value} is above the maximum {schema['maximum']}", "use a smaller value")
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise SpecError(where, f"needs at least {schema['minItems']} item(s), has {len(value)}",
                        hint or f"give at least {schema['minItems']}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SpecError(where, f"has {len(value)} items, more than the {schema['maxItems']} allowed",
                        "split the network or use fewer items")


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...], hint: str) -> None:
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key in schema.get("required", []):
        if key not in value:
            typo = next((k for k in value if k not in properties and suggest(k, [key])), None)
            if typo is not None and extra is False:  # "activaton": say so, not only that "activation" is missing
                _unknown_key(typo, properties, path)
            described = properties.get(key, {}).get("description", "")
            raise SpecError(json_path(path), f'missing required key "{key}"', described or f'add "{key}"')
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], path + (key,), "")
        elif extra is False:
            _unknown_key(key, properties, path)
        elif isinstance(extra, dict):
            _check(item, extra, path + (key,), hint)


def _unknown_key(key: str, properties: dict[str, Any], path: tuple[str | int, ...]) -> None:
    allowed = sorted(properties)
    raise SpecError(json_path(path), f"unknown key {describe(key)}{suggest(key, allowed)}",
                    "the keys allowed here are: " + ", ".join(allowed))


def _check_array(value: list[Any], schema: dict[str, Any], path: tuple[str | int, ...], hint: str) -> None:
    items = schema.get("items")
    if items is not None:
        for index, item in enumerate(value):
            _check(item, items, path + (index,), hint)

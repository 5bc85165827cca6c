"""Stage 1: a JSON spec (untrusted data) -> a frozen, fully resolved :class:`Spec`.

Parsing never executes anything from the spec.  Structure is checked against the JSON Schema
in :mod:`symgrad.schema`; the rules a schema cannot express are checked here.  After parsing,
every unit and parameter has exactly one name, and every later stage can rely on that.

Names the spec leaves out are generated: inputs ``x0, x1, ...``; units of hidden layer k
(1-based) ``h{k}_{j}`` and of the output layer ``o{j}``; weights ``W{k}_{j}_{i}`` (unit j,
input i, 0-based); biases ``b{k}_{j}`` per unit or ``b{k}`` shared.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from . import optimizers, schema
from .errors import SpecError, json_path
from .optimizers import Optimizer

#: Names a generated package may not take: importing it would shadow these.
_RESERVED_PACKAGE_NAMES = frozenset(sys.stdlib_module_names) | {
    "symgrad", "numpy", "sympy", "jinja2", "pytest", "hypothesis", "torch", "jax", "scipy",
}
_MAX_SPEC_BYTES = 64 * 1024 * 1024

#: Networks larger than this are refused unless the limit is raised (theta, its gradient, the
#: optimizer state and the generated initial values each take 8 bytes per parameter).
MAX_PARAMETERS = 5_000_000

#: The names given to what a spec leaves unnamed (k: 1-based layer; j: unit; i: input; 0-based).
INPUT_NAME = "x{i}"
HIDDEN_UNIT_NAME = "h{k}_{j}"
OUTPUT_UNIT_NAME = "o{j}"
WEIGHT_NAME = "W{k}_{j}_{i}"
BIAS_NAME = "b{k}_{j}"
SHARED_BIAS_NAME = "b{k}"


@dataclass(frozen=True)
class Activation:
    name: str  # a built-in's name, or "custom" with ``formula``
    slope: float = 0.01  # leaky_relu only
    formula: str = ""  # custom only: a formula in x (symgrad.expression)

    def describe(self) -> str:
        if self.name == "custom":
            return self.formula
        return f"leaky_relu(slope={self.slope!r})" if self.name == "leaky_relu" else self.name


@dataclass(frozen=True)
class Layer:
    units: tuple[str, ...]
    activation: Activation
    weights: tuple[tuple[str, ...], ...]  # weights[j][i]: input i -> unit j
    bias_mode: Literal["per_unit", "shared", "none"]
    biases: tuple[str, ...]  # one per unit, one shared, or none
    l1: float = 0.0
    l2: float = 0.0
    regularize_bias: bool = False

    @property
    def n_out(self) -> int:
        return len(self.units)

    @property
    def n_in(self) -> int:
        return len(self.weights[0])


@dataclass(frozen=True)
class Loss:
    name: str  # a built-in's name, or "custom" with ``formula``
    reduction: Literal["mean", "sum"] = "mean"
    formula: str = ""  # custom only: one output's term in o and t
    label_smoothing: float = 0.0  # cross_entropy only


@dataclass(frozen=True)
class Parameter:
    """Where a parameter sits: ``layer`` index (0-based), ``kind``, unit ``j`` and input ``i``.

    A shared bias has ``j == -1``; a bias has ``i == -1``.
    """

    name: str
    index: int
    layer: int
    kind: Literal["weight", "bias"]
    j: int
    i: int


@dataclass(frozen=True)
class Example:
    inputs: tuple[tuple[float, ...], ...]
    targets: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Spec:
    name: str
    inputs: tuple[str, ...]
    layers: tuple[Layer, ...]
    loss: Loss
    optimizer: Optimizer
    initial_values: tuple[tuple[str, float], ...]
    initial_scheme: str
    seed: int
    frozen: tuple[str, ...]
    dtype: Literal["float64", "float32"]
    example: Example | None
    source_hash: str  # sha256 of the canonical JSON of the document

    def __repr__(self) -> str:
        sizes = "-".join(str(n) for n in [len(self.inputs)] + [layer.n_out for layer in self.layers])
        return (f"Spec(name={self.name!r}, sizes={sizes}, loss={self.loss.name}/{self.loss.reduction}, "
                f"parameters={self.n_parameters}, hash={self.source_hash[:12]})")

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def n_parameters(self) -> int:
        return sum(layer.n_out * layer.n_in + len(layer.biases) for layer in self.layers)

    @cached_property
    def parameters(self) -> tuple[Parameter, ...]:
        """Every parameter in theta order: layer by layer, weights row-major, then biases."""
        found: list[Parameter] = []
        for k, layer in enumerate(self.layers):
            for j, row in enumerate(layer.weights):
                for i, name in enumerate(row):
                    found.append(Parameter(name, len(found), k, "weight", j, i))
            shared = layer.bias_mode == "shared"
            for j, name in enumerate(layer.biases):
                found.append(Parameter(name, len(found), k, "bias", -1 if shared else j, -1))
        return tuple(found)

    def penalized_slices(self) -> tuple[tuple[int, int, float, float, int], ...]:
        """(start, stop, l1, l2, layer) of the theta ranges each layer's penalties cover.

        A layer's weights are contiguous in theta, and its biases follow them, so one range per
        layer covers its weights, and its biases too when ``regularize_bias`` says so.
        """
        slices = []
        start = 0
        for k, layer in enumerate(self.layers):
            weights = layer.n_in * layer.n_out
            stop = start + weights + (len(layer.biases) if layer.regularize_bias else 0)
            if layer.l1 or layer.l2:
                slices.append((start, stop, layer.l1, layer.l2, k))
            start += weights + len(layer.biases)
        return tuple(slices)

    @cached_property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


def canonical_json(document: Any) -> str:
    """The one text of a document that its hash and the build cache key are taken from."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def document_hash(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON: equal for documents that differ only in key order or spacing."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def read_document(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A spec as parsed JSON: from a path, a JSON text, or a dict the caller already has."""
    if isinstance(source, dict):
        # Round-trip through JSON so the dict obeys the same rules as a file (no NaN, str keys).
        try:
            return _parse_json(canonical_json(source), "the spec dict")
        except (TypeError, ValueError) as error:
            if isinstance(error, SpecError):
                raise
            raise SpecError("$", f"the spec dict is not plain JSON data ({error})",
                            "use only dicts, lists, strings, finite numbers, booleans and None") from None
    path = Path(source)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise SpecError("$", f"cannot read the spec file {str(path)!r}: {error.strerror}",
                        "check the path") from None
    if size > _MAX_SPEC_BYTES:
        raise SpecError("$", f"the spec file is {size} bytes, more than {_MAX_SPEC_BYTES}",
                        "a spec describes a network; use counts instead of long name lists")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpecError("$", f"the spec file is not UTF-8 text (byte {error.start})", "save it as UTF-8 JSON") from None
    except OSError as error:
        raise SpecError("$", f"cannot read the spec file {str(path)!r}: {error.strerror}", "check the path") from None
    return _parse_json(text, str(path))


def _reject_constant(token: str) -> None:
    raise SpecError("$", f"{token} is not valid JSON", "write a finite number")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SpecError("$", f"the key {schema.describe(key)} appears twice in one object",
                            "remove one of them")
        result[key] = value
    return result


def _parse_json(text: str, where: str) -> dict[str, Any]:
    try:
        document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise SpecError("$", f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
                        "fix the JSON syntax") from None
    except RecursionError:
        raise SpecError("$", f"{where} is nested too deeply", "a spec needs only a few levels of nesting") from None
    except ValueError as error:  # e.g. an integer literal with thousands of digits
        raise SpecError("$", f"{where} has a value Python cannot read: {error}", "use ordinary numbers") from None
    if not isinstance(document, dict):
        raise SpecError("$", f"expected a JSON object, got {schema.describe(document)}",
                        'a spec starts with {"name": ..., "inputs": ..., "layers": [...], "loss": ...}')
    return document


def default_max_parameters() -> int:
    """The largest network a build accepts: ``$SYMGRAD_MAX_PARAMETERS``, else MAX_PARAMETERS."""
    configured = os.environ.get("SYMGRAD_MAX_PARAMETERS", "")
    return int(configured) if configured.isdigit() else MAX_PARAMETERS


def parse_spec(source: str | Path | dict[str, Any], max_parameters: int | None = None) -> Spec:
    """Load, check and resolve a spec; raise :class:`SpecError` for the first problem found.

    A network with more than ``max_parameters`` parameters (default: :func:`default_max_parameters`)
    is refused before any name is generated or memory reserved for it.
    """
    document = read_document(source)
    try:
        schema.validate(document)
    except RecursionError:
        raise SpecError("$", "the spec is nested too deeply", "a spec needs only a few levels of nesting") from None
    _check_size(document, default_max_parameters() if max_parameters is None else max_parameters)
    return _resolve(document)


def count_parameters(document: dict[str, Any]) -> int:
    """The parameter count of a schema-valid document, from its sizes alone."""
    def size(value: int | list[Any]) -> int:
        return value if isinstance(value, int) else len(value)

    total, n_in = 0, size(document["inputs"])
    for layer in document["layers"]:
        n_out = size(layer["units"])
        bias = layer.get("bias", "per_unit")
        mode = bias if isinstance(bias, str) else bias["mode"]
        total += n_in * n_out + {"per_unit": n_out, "shared": 1, "none": 0}[mode]
        n_in = n_out
    return total


def _check_size(document: dict[str, Any], limit: int) -> None:
    count = count_parameters(document)
    if count > limit:
        raise SpecError("$.layers", f"the network has {count:,} parameters, more than the limit of {limit:,}",
                        "make it smaller, or raise the limit with --max-parameters N "
                        "(or SYMGRAD_MAX_PARAMETERS, or max_parameters= in Python) if the machine has the memory")


def _resolve(doc: dict[str, Any]) -> Spec:
    name = doc["name"]
    if keyword.iskeyword(name) or name in _RESERVED_PACKAGE_NAMES:
        raise SpecError("$.name", f'"{name}" would shadow a Python keyword or module when imported',
                        "choose another package name")

    inputs = _names_or_count(doc["inputs"], lambda i: INPUT_NAME.format(i=i))
    layers: list[Layer] = []
    n_in = len(inputs)
    n_layers = len(doc["layers"])
    for k, raw in enumerate(doc["layers"]):
        is_output = k == n_layers - 1
        layers.append(_resolve_layer(raw, k, n_in, is_output))
        n_in = layers[-1].n_out

    _check_unique_names(inputs, layers)
    loss = _resolve_loss(doc["loss"], layers[-1], len(layers) - 1)

    raw_optimizer = doc.get("optimizer", {"name": "sgd", "learning_rate": 0.1})
    optimizer = _resolve_optimizer(raw_optimizer)

    parameter_names = {p for layer in layers for p in _layer_parameter_names(layer)}
    initial = doc.get("initial", {})
    values = []
    for key, value in initial.items():
        if key in ("scheme", "seed"):
            continue
        if key not in parameter_names:
            raise SpecError(json_path(("initial", key)), f'"{key}" is not a parameter of this network'
                            + schema.suggest(key, sorted(parameter_names)),
                            "name a weight or bias from layers[*].weights or layers[*].bias")
        values.append((key, float(value)))

    frozen = tuple(doc.get("frozen", []))
    for index, key in enumerate(frozen):
        if key not in parameter_names:
            raise SpecError(json_path(("frozen", index)), f'"{key}" is not a parameter of this network'
                            + schema.suggest(key, sorted(parameter_names)),
                            "list names of weights or biases")
        if key in frozen[:index]:
            raise SpecError(json_path(("frozen", index)), f'"{key}" is listed twice', "list it once")

    example = _resolve_example(doc["example"], len(inputs), layers[-1].n_out) if "example" in doc else None
    return Spec(
        name=name,
        inputs=inputs,
        layers=tuple(layers),
        loss=loss,
        optimizer=optimizer,
        initial_values=tuple(values),
        initial_scheme=initial.get("scheme", "xavier_uniform"),
        seed=int(initial.get("seed", 0)),
        frozen=frozen,
        dtype=doc.get("dtype", "float64"),
        example=example,
        source_hash=document_hash(doc),
    )


def _resolve_optimizer(raw: dict[str, Any]) -> Optimizer:
    name = raw["name"]
    allowed = optimizers.OPTIMIZERS[name].options
    for key in raw:
        if key not in ("name", "learning_rate") + allowed:
            raise SpecError(json_path(("optimizer", key)), f'{name} has no option "{key}"',
                            f"{name} takes: learning_rate, " + ", ".join(allowed))
    if raw.get("nesterov") and (raw.get("momentum", 0) <= 0 or raw.get("dampening", 0) != 0):
        raise SpecError(json_path(("optimizer", "nesterov")), "Nesterov momentum needs momentum > 0 and dampening 0",
                        'set "momentum" (e.g. 0.9), or remove "nesterov"')
    return optimizers.resolve(raw)


def _names_or_count(value: int | list[str], make_name: Any) -> tuple[str, ...]:
    return tuple(make_name(i) for i in range(value)) if isinstance(value, int) else tuple(value)


def _resolve_layer(raw: dict[str, Any], k: int, n_in: int, is_output: bool) -> Layer:
    where = ("layers", k)
    pattern = OUTPUT_UNIT_NAME if is_output else HIDDEN_UNIT_NAME
    units = _names_or_count(raw["units"], lambda j: pattern.format(k=k + 1, j=j))
    n_out = len(units)

    activation_raw = raw["activation"]
    if isinstance(activation_raw, str):
        activation = Activation(activation_raw)
    elif "expr" in activation_raw:
        if set(activation_raw) != {"expr"}:
            raise SpecError(json_path(where + ("activation",)), 'a formula activation has only "expr"',
                            'remove "name" and "slope", or remove "expr"')
        _check_formula(activation_raw["expr"], ("x",), where + ("activation", "expr"))
        activation = Activation("custom", formula=activation_raw["expr"])
    else:
        if "name" not in activation_raw:
            raise SpecError(json_path(where + ("activation",)), 'missing "name" or "expr"',
                            'write {"name": "leaky_relu", "slope": 0.1} or {"expr": "x/(1+abs(x))"}')
        if "slope" in activation_raw and activation_raw["name"] != "leaky_relu":
            raise SpecError(json_path(where + ("activation", "slope")), "only leaky_relu takes a slope",
                            'remove "slope" or use "name": "leaky_relu"')
        activation = Activation(activation_raw["name"], float(activation_raw.get("slope", 0.01)))
    if activation.name == "softmax" and not is_output:
        raise SpecError(json_path(where + ("activation",)), "softmax is only allowed in the output layer",
                        "use sigmoid, tanh, relu, leaky_relu, softplus or linear in hidden layers")

    if "weights" in raw:
        weights = raw["weights"]
        if len(weights) != n_out:
            raise SpecError(json_path(where + ("weights",)),
                            f"has {len(weights)} row(s) but the layer has {n_out} unit(s)",
                            f"give one row per unit: a {n_out} x {n_in} matrix of names")
        for j, row in enumerate(weights):
            if len(row) != n_in:
                raise SpecError(json_path(where + ("weights", j)),
                                f"has {len(row)} name(s) but the layer has {n_in} input(s)",
                                f"give one name per input: weights[j][i] connects input i to unit j "
                                f"({n_out} x {n_in} in all)")
        weight_names = tuple(tuple(row) for row in weights)
    else:
        weight_names = tuple(tuple(WEIGHT_NAME.format(k=k + 1, j=j, i=i) for i in range(n_in)) for j in range(n_out))

    bias_raw = raw.get("bias", "per_unit")
    mode = bias_raw if isinstance(bias_raw, str) else bias_raw["mode"]
    biases: tuple[str, ...]
    if mode == "none":
        if isinstance(bias_raw, dict) and ("name" in bias_raw or "names" in bias_raw):
            raise SpecError(json_path(where + ("bias",)), 'mode "none" has no bias to name',
                            'remove "name"/"names" or choose another mode')
        biases = ()
    elif mode == "shared":
        if isinstance(bias_raw, dict) and "names" in bias_raw:
            raise SpecError(json_path(where + ("bias", "names")), 'a shared bias has one "name", not "names"',
                            'write "name": "b1"')
        default = SHARED_BIAS_NAME.format(k=k + 1)
        biases = (bias_raw.get("name", default) if isinstance(bias_raw, dict) else default,)
    else:
        if isinstance(bias_raw, dict) and "name" in bias_raw:
            raise SpecError(json_path(where + ("bias", "name")), 'per-unit biases are named with "names"',
                            f'write "names": [...] with {n_out} name(s), or use "mode": "shared"')
        names = bias_raw.get("names") if isinstance(bias_raw, dict) else None
        if names is not None and len(names) != n_out:
            raise SpecError(json_path(where + ("bias", "names")),
                            f"has {len(names)} name(s) but the layer has {n_out} unit(s)", "give one name per unit")
        biases = tuple(names) if names is not None else tuple(BIAS_NAME.format(k=k + 1, j=j) for j in range(n_out))
    return Layer(units, activation, weight_names, mode, biases, float(raw.get("l1", 0.0)), float(raw.get("l2", 0.0)),
                 bool(raw.get("regularize_bias", False)))


def _layer_parameter_names(layer: Layer) -> list[str]:
    return [name for row in layer.weights for name in row] + list(layer.biases)


def _check_unique_names(inputs: tuple[str, ...], layers: list[Layer]) -> None:
    """Every input, unit and parameter name is used once: formulas name things unambiguously."""
    seen: dict[str, tuple[str | int, ...]] = {}

    def claim(name: str, where: tuple[str | int, ...]) -> None:
        if name in seen:
            raise SpecError(json_path(where), f'the name "{name}" is already used at {json_path(seen[name])}',
                            "every input, unit, weight and bias needs its own name")
        seen[name] = where

    for i, name in enumerate(inputs):
        claim(name, ("inputs", i))
    for k, layer in enumerate(layers):
        for j, name in enumerate(layer.units):
            claim(name, ("layers", k, "units", j))
    for k, layer in enumerate(layers):
        for j, row in enumerate(layer.weights):
            for i, name in enumerate(row):
                claim(name, ("layers", k, "weights", j, i))
        if layer.bias_mode == "shared":
            claim(layer.biases[0], ("layers", k, "bias", "name"))
        else:
            for j, name in enumerate(layer.biases):
                claim(name, ("layers", k, "bias", "names", j))


def _resolve_loss(raw: str | dict[str, Any], output: Layer, output_index: int) -> Loss:
    if isinstance(raw, str):
        loss = Loss(raw)
    elif ("name" in raw) == ("expr" in raw):
        raise SpecError("$.loss", 'give either "name" or "expr"',
                        'e.g. {"name": "mse", "reduction": "sum"} or {"expr": "(o-t)**2/2"}')
    elif "expr" in raw:
        _check_formula(raw["expr"], ("o", "t"), ("loss", "expr"))
        loss = Loss("custom", raw.get("reduction", "mean"), raw["expr"])
    else:
        loss = Loss(raw["name"], raw.get("reduction", "mean"), label_smoothing=float(raw.get("label_smoothing", 0.0)))
    if not isinstance(raw, str) and "label_smoothing" in raw and loss.name != "cross_entropy":
        raise SpecError("$.loss.label_smoothing", "label smoothing applies to cross_entropy only",
                        'remove "label_smoothing" or use "name": "cross_entropy"')
    where = json_path(("loss",) if isinstance(raw, str) else ("loss", "name"))
    if loss.name == "cross_entropy" and output.activation.name != "softmax":
        raise SpecError(where, f"cross_entropy needs a softmax output layer, not {output.activation.name}",
                        'set the last layer\'s "activation" to "softmax", or use binary_cross_entropy '
                        "for independent sigmoid outputs")
    if output.activation.name == "softmax" and output.n_out < 2:
        raise SpecError(json_path(("layers", output_index, "units")), "a softmax layer needs at least 2 units",
                        "use sigmoid with binary_cross_entropy for one output")
    return loss


def _check_formula(text: str, variables: tuple[str, ...], where: tuple[str | int, ...]) -> None:
    from .expression import parse_formula
    import sympy as sp

    parse_formula(text, {name: sp.Symbol(name, real=True) for name in variables}, json_path(where))


def _resolve_example(raw: dict[str, Any], n_inputs: int, n_outputs: int) -> Example:
    rows = {}
    for key, width in (("inputs", n_inputs), ("targets", n_outputs)):
        value = raw[key]
        nested = [isinstance(v, list) for v in value]
        if any(nested) and not all(nested):
            raise SpecError(json_path(("example", key)), "mixes numbers and lists",
                            "give one example as a list of numbers, or several as a list of lists")
        table = value if all(nested) else [value]
        for r, row in enumerate(table):
            if len(row) != width:
                path = ("example", key, r) if all(nested) else ("example", key)
                raise SpecError(json_path(path), f"has {len(row)} value(s), the network has {width} {key}",
                                f"give {width} number(s) per example")
        rows[key] = tuple(tuple(float(v) for v in row) for row in table)
    if len(rows["inputs"]) != len(rows["targets"]):
        raise SpecError(json_path(("example",)),
                        f"has {len(rows['inputs'])} input row(s) but {len(rows['targets'])} target row(s)",
                        "give one target row per input row")
    return Example(rows["inputs"], rows["targets"])

"""The optimizer table: every fact about an optimizer, in one place.

For each optimizer (PyTorch's ``torch.optim`` rules, names and defaults) the table holds its
options, its state layout, the derived constants its update reads, a reference step in plain
NumPy (what ``explain`` and the tests run) and its wording for explain and the docs.  The
schema, spec parsing, both emitters and ``explain`` read it; the two templates print the
update itself.  Adding an optimizer means a :class:`Rule` here and its update in
``emit/numpy/module/update.py.jinja`` and ``emit/c/kernel/update.c.jinja``.  Learning-rate schedules
(DESIGN.md section 10) belong here too, as another table beside :data:`OPTIMIZERS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the reference steps import NumPy when they run: validating a spec needs none
    import numpy as np


@dataclass(frozen=True)
class Option:
    """One option, by PyTorch's name: its default and its JSON Schema (a note adds to the description)."""

    name: str
    default: Any
    schema: dict[str, Any]
    note: str = ""
    description: str = ""  # replaces the generated "sgd, rmsprop (default 0)." when given
    default_text: str = ""  # the default as the description writes it, when :g would not


#: Every option any optimizer takes (learning_rate, which all take, is not among them).
OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("momentum", 0.0, {"type": "number", "minimum": 0, "maximum": 1}),
    Option("dampening", 0.0, {"type": "number", "minimum": 0, "maximum": 1}),
    Option("nesterov", False, {"type": "boolean"}, note="; needs momentum > 0"),
    Option("weight_decay", 0.0, {"type": "number", "minimum": 0, "maximum": 1e6},
           description="L2 penalty added to the gradient (adamw: decoupled decay); default 0, adamw 0.01."),
    Option("alpha", 0.99, {"type": "number", "minimum": 0, "maximum": 1}),
    Option("eps", 1e-8, {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, default_text="1e-8"),
    Option("betas", (0.9, 0.999), {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 0.999999999},
                                   "minItems": 2, "maxItems": 2}),
)}


@dataclass(frozen=True)
class Optimizer:
    """An optimizer and its options as a spec resolved them, with PyTorch's names and defaults."""

    name: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    alpha: float = 0.99
    eps: float = 1e-8
    beta1: float = 0.9
    beta2: float = 0.999

    @property
    def rule(self) -> "Rule":
        return OPTIMIZERS[self.name]

    @property
    def stateful(self) -> bool:
        """Whether the optimizer keeps state between steps (so step needs a state array)."""
        return bool(self.rule.state_parts(self))

    @property
    def plain(self) -> bool:
        """Plain SGD: p -= lr * dE/dp, no state and no weight decay."""
        return self.name == "sgd" and not self.momentum and not self.weight_decay

    def option_values(self) -> list[tuple[str, Any]]:
        """The optimizer's options as resolved, in the table's order (what OPTIMIZER_OPTIONS shows)."""
        values = {"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov,
                  "weight_decay": self.weight_decay, "alpha": self.alpha, "eps": self.eps,
                  "betas": (self.beta1, self.beta2)}
        return [(key, values[key]) for key in self.rule.options]

    def state_layout(self, n_parameters: int) -> list[tuple[str, int, int]]:
        """The state array's parts: (PyTorch's name, first index, length); empty without state."""
        parts = self.rule.state_parts(self)
        if not parts:
            return []
        return [("step", 0, 1)] + [(part, 1 + k * n_parameters, n_parameters) for k, part in enumerate(parts)]

    def constants(self) -> dict[str, float | None]:
        """The numbers the update reads, derived in Python double so every backend rounds alike.

        Every name of :data:`CONSTANT_NAMES` is present; None where this optimizer does not use it.
        """
        values: dict[str, float | None] = dict.fromkeys(CONSTANT_NAMES)
        values.update(self.rule.constants(self))
        return values


Quantities = dict[str, "np.ndarray"]


# -- each optimizer: derived constants and the reference step ----------------------------------
#
# A reference step takes the options, theta, dE/dtheta (penalties included), the state (a dict:
# "step", already counted for this step, and the arrays the rule keeps) and the trainable mask
# (1.0 or 0.0 per parameter).  It updates the state in place and returns the new theta with the
# quantities a walk-through shows, by name, as arrays over every parameter.

def _coupled_decay(o: Optimizer) -> dict[str, float | None]:
    return {"weight_decay": o.weight_decay or None, "momentum": o.momentum or None}


def _sgd_constants(o: Optimizer) -> dict[str, float | None]:
    return {**_coupled_decay(o), "one_minus_dampening": 1 - o.dampening}


def _sgd_step(o: Optimizer, theta: np.ndarray, grad: np.ndarray, state: dict, trainable: np.ndarray):
    """torch.optim.SGD: g = grad + wd p; b = g on the first step, else mu b + (1 - dampening) g;
    p <- p - lr b (Nesterov: p - lr (g + mu b)); without momentum p <- p - lr g."""
    g = grad + o.weight_decay * theta if o.weight_decay else grad.copy()
    shown: Quantities = {"g": g}
    direction = g
    if o.momentum:
        buffer = g.copy() if state["step"] == 1 else o.momentum * state["buffer"] + (1 - o.dampening) * g
        state["buffer"] = shown["buffer"] = buffer
        direction = g + o.momentum * buffer if o.nesterov else buffer
    return theta - (o.learning_rate * trainable) * direction, shown


def _rmsprop_constants(o: Optimizer) -> dict[str, float | None]:
    return {**_coupled_decay(o), "alpha": o.alpha, "one_minus_alpha": 1 - o.alpha, "eps": o.eps}


def _rmsprop_step(o: Optimizer, theta: np.ndarray, grad: np.ndarray, state: dict, trainable: np.ndarray):
    """torch.optim.RMSprop (not centered): g = grad + wd p; v = alpha v + (1 - alpha) g^2;
    p <- p - lr g / (sqrt(v) + eps), or with momentum b = mu b + g / (sqrt(v) + eps), p <- p - lr b."""
    import numpy as np

    g = grad + o.weight_decay * theta if o.weight_decay else grad.copy()
    square_avg = o.alpha * state.get("square_avg", np.zeros_like(theta)) + (1 - o.alpha) * g * g
    state["square_avg"] = square_avg
    shown: Quantities = {"g": g, "square_avg": square_avg}
    direction = g / (np.sqrt(square_avg) + o.eps)
    if o.momentum:
        direction = o.momentum * state.get("buffer", np.zeros_like(theta)) + direction
        state["buffer"] = shown["buffer"] = direction
    return theta - (o.learning_rate * trainable) * direction, shown


def _adam_constants(o: Optimizer) -> dict[str, float | None]:
    values = {**_coupled_decay(o), "beta1": o.beta1, "one_minus_beta1": 1 - o.beta1, "beta2": o.beta2,
              "one_minus_beta2": 1 - o.beta2, "eps": o.eps}
    if o.name == "adamw":  # decoupled: theta *= 1 - lr * weight_decay before the step
        values.update(weight_decay=None, decoupled_decay=o.learning_rate * o.weight_decay)
    return values


def _adam_step(o: Optimizer, theta: np.ndarray, grad: np.ndarray, state: dict, trainable: np.ndarray):
    """torch.optim.Adam and AdamW: g = grad + wd p (Adam) or p <- p (1 - lr wd) first (AdamW);
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, m^ = m / (1 - b1^t), v^ = v / (1 - b2^t),
    p <- p - lr m^ / (sqrt(v^) + eps) (computed as PyTorch does: lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps))."""
    import numpy as np

    step = state["step"]
    shown: Quantities = {}
    if o.name == "adamw":
        theta = theta * (1 - (o.learning_rate * o.weight_decay) * trainable)
        shown["decayed"] = theta
        g = grad
    else:
        g = grad + o.weight_decay * theta if o.weight_decay else grad
    exp_avg = o.beta1 * state.get("exp_avg", np.zeros_like(theta)) + (1 - o.beta1) * g
    exp_avg_sq = o.beta2 * state.get("exp_avg_sq", np.zeros_like(theta)) + (1 - o.beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = exp_avg, exp_avg_sq
    correction1, correction2 = 1 - o.beta1 ** step, 1 - o.beta2 ** step
    shown.update(g=g, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, exp_avg_hat=exp_avg / correction1,
                 exp_avg_sq_hat=exp_avg_sq / correction2)
    denominator = np.sqrt(exp_avg_sq) / math.sqrt(correction2) + o.eps
    return theta - (o.learning_rate * trainable / correction1) * exp_avg / denominator, shown


@dataclass(frozen=True)
class Rule:
    """One optimizer: what it takes, keeps, derives and does, and how it is named."""

    name: str
    title: str                       # "Adam", as explain writes it
    torch: str                       # "torch.optim.Adam"
    doc: str                         # the generated update's docstring: the rule and where it is documented
    options: tuple[str, ...]         # keys of OPTIONS it takes, besides learning_rate
    state_parts: Callable[[Optimizer], tuple[str, ...]]
    constants: Callable[[Optimizer], dict[str, float | None]]
    reference_step: Callable[..., tuple["np.ndarray", Quantities]]
    defaults: dict[str, Any] = field(default_factory=dict)  # where it differs from OPTIONS' default

    def default(self, option: str) -> Any:
        return self.defaults.get(option, OPTIONS[option].default)


def _docs(torch_name: str) -> str:
    return f"https://pytorch.org/docs/stable/generated/{torch_name}.html"


#: The optimizers, by the name a spec gives.
OPTIMIZERS: dict[str, Rule] = {rule.name: rule for rule in (
    Rule("sgd", "SGD", "torch.optim.SGD",
         "SGD as torch.optim.SGD (momentum, dampening, nesterov, weight_decay): " + _docs("torch.optim.SGD"),
         ("momentum", "dampening", "nesterov", "weight_decay"),
         lambda o: ("momentum_buffer",) if o.momentum else (), _sgd_constants, _sgd_step),
    Rule("rmsprop", "RMSprop", "torch.optim.RMSprop",
         "RMSprop as torch.optim.RMSprop (alpha, eps, momentum, weight_decay; not centered): "
         + _docs("torch.optim.RMSprop"),
         ("alpha", "eps", "momentum", "weight_decay"),
         lambda o: ("square_avg",) + (("momentum_buffer",) if o.momentum else ()), _rmsprop_constants, _rmsprop_step),
    Rule("adam", "Adam", "torch.optim.Adam",
         "Adam with bias correction as torch.optim.Adam (betas, eps, weight_decay added to the gradient): "
         + _docs("torch.optim.Adam"),
         ("betas", "eps", "weight_decay"),
         lambda o: ("exp_avg", "exp_avg_sq"), _adam_constants, _adam_step),
    Rule("adamw", "AdamW", "torch.optim.AdamW",
         "AdamW as torch.optim.AdamW (decoupled weight decay, theta *= 1 - lr*weight_decay first): "
         + _docs("torch.optim.AdamW"),
         ("betas", "eps", "weight_decay"),
         lambda o: ("exp_avg", "exp_avg_sq"), _adam_constants, _adam_step, defaults={"weight_decay": 0.01}),
)}

#: Every constant name an update may read (Optimizer.constants gives each, None where unused).
CONSTANT_NAMES = ("weight_decay", "momentum", "one_minus_dampening", "alpha", "one_minus_alpha", "beta1",
                  "one_minus_beta1", "beta2", "one_minus_beta2", "eps", "decoupled_decay")


def resolve(raw: dict[str, Any]) -> Optimizer:
    """The spec's ``optimizer`` object (schema-valid, options checked) with every default filled in."""
    rule = OPTIMIZERS[raw["name"]]

    def value(option: str) -> Any:
        return raw.get(option, rule.default(option)) if option in rule.options else OPTIONS[option].default

    beta1, beta2 = value("betas")
    return Optimizer(name=rule.name, learning_rate=float(raw["learning_rate"]),
                     momentum=float(value("momentum")), dampening=float(value("dampening")),
                     nesterov=bool(value("nesterov")), weight_decay=float(value("weight_decay")),
                     alpha=float(value("alpha")), eps=float(value("eps")), beta1=float(beta1), beta2=float(beta2))


def schema_properties() -> dict[str, Any]:
    """The JSON Schema of every option, each described by the optimizers that take it and their default."""
    properties = {}
    for option in OPTIONS.values():
        users = [rule.name for rule in OPTIMIZERS.values() if option.name in rule.options]
        shown = option.default_text or _json_text(option.default)
        description = option.description or f"{', '.join(users)} (default {shown}){option.note}."
        properties[option.name] = {**option.schema, "description": description}
    return properties


def _json_text(value: Any) -> str:
    """A default as JSON writes it: false, 0, [0.9, 0.999]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_json_text(v) for v in value) + "]"
    return f"{value:g}"


def describe(o: Optimizer) -> str:
    """``plain SGD with learning rate 0.5``, ``Adam with learning rate 0.01, betas (0.9, 0.999), eps 1e-08``."""
    if o.plain:
        return f"plain SGD with learning rate {o.learning_rate!r}"
    options = [f"learning rate {o.learning_rate!r}"]
    if "alpha" in o.rule.options:
        options.append(f"alpha {o.alpha!r}")
    if "betas" in o.rule.options:
        options.append(f"betas ({o.beta1!r}, {o.beta2!r})")
    if "eps" in o.rule.options:
        options.append(f"eps {o.eps!r}")
    if o.momentum:
        options.append(("Nesterov momentum" if o.nesterov else "momentum") + f" {o.momentum!r}"
                       + (f", dampening {o.dampening!r}" if o.dampening else ""))
    if o.weight_decay:
        options.append(f"{'decoupled ' if o.name == 'adamw' else ''}weight decay {o.weight_decay!r}")
    return f"{o.rule.title} with " + ", ".join(options)

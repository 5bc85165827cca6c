"""The optimizer table: every fact about an optimizer, in one place.

For each optimizer (PyTorch's ``torch.optim`` rules, names and defaults) the table holds its
options, its state layout, the derived constants its update reads, a reference step in plain
NumPy (what ``explain`` and the tests run) and its wording for explain and the docs.  The
schema, spec parsing, both emitters and ``explain`` read it; the two templates print the
update itself.  Adding an optimizer means a :class:`Rule` here and its update in
``emit/numpy/module/update.py.jinja`` and ``emit/c/kernel/update.c.jinja``.

Learning-rate schedules (DESIGN.md section 10) are the second table, :data:`SCHEDULES`: each
schedule's options with ``torch.optim.lr_scheduler``'s names and defaults, its rate as a NumPy
expression over an array of epochs (printed into every generated module, whose rates both backends
read) and as a reference function (what ``explain`` runs and the tests compare), and its wording.
Adding a schedule touches this file only.
"""

from __future__ import annotations

import bisect
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
    schedule: "Schedule | None" = None

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
        """The state array's parts: (PyTorch's name, first index, length); empty without state.

        A schedule adds one last part, "epoch": the number of epochs ``train`` has finished, from
        which every backend takes the epoch's learning rate (so a saved state resumes exactly).
        """
        parts = self.rule.state_parts(self)
        layout = []
        if parts:
            layout = [("step", 0, 1)] + [(part, 1 + k * n_parameters, n_parameters) for k, part in enumerate(parts)]
        if self.schedule is not None:
            layout.append(("epoch", sum(length for _, _, length in layout), 1))
        return layout

    def rate(self, epoch: int) -> float:
        """The learning rate in epoch ``epoch`` (0-based): the schedule's, or the constant one."""
        return self.learning_rate if self.schedule is None else self.schedule.rate(self.learning_rate, epoch)

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
                     alpha=float(value("alpha")), eps=float(value("eps")), beta1=float(beta1), beta2=float(beta2),
                     schedule=resolve_schedule(raw["schedule"]) if "schedule" in raw else None)


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


def epoch_index(state_layout: Any) -> int | None:
    """Where a state layout (Optimizer.state_layout, a module's STATE_LAYOUT) keeps the schedule's
    epoch count; None when it has none."""
    return next((start for part, start, _ in state_layout if part == "epoch"), None)


def describe(o: Optimizer) -> str:
    """``plain SGD with learning rate 0.5``, ``Adam with learning rate 0.01, betas (0.9, 0.999), eps 1e-08``;
    a schedule follows: ``..., the rate times 0.1 every 30 epochs (StepLR)``."""
    scheduled = f", {o.schedule.describe()}" if o.schedule is not None else ""
    if o.plain:
        return f"plain SGD with learning rate {o.learning_rate!r}{scheduled}"
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
    return f"{o.rule.title} with " + ", ".join(options) + scheduled


# -- learning-rate schedules: torch.optim.lr_scheduler, stepped once per epoch of train ----------
#
# A schedule's rate in epoch e (0-based: e epochs finished, e calls of PyTorch's scheduler.step())
# is PyTorch's closed form (``_get_closed_form_lr``), a function of e alone, so resuming from a
# saved epoch count is exact.  ``expression`` is the same formula as NumPy source over ``epoch``, a
# float64 array of epoch counts, which every generated module prints (LEARNING_RATE the spec's base
# rate; the numbers are the schedule's own, printed with repr): it computes the rates a block of
# epochs at a time, so C's train gets a whole run's rates in a few array operations instead of a
# Python call per epoch.  ``reference`` computes the rate here (math, one epoch) for explain and
# the tests, which also compare both with torch.optim.lr_scheduler itself.

#: Every option any schedule takes, by PyTorch's name (``name`` is not among them).
SCHEDULE_OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("step_size", None, {"type": "integer", "minimum": 1, "maximum": 10**9},
           description="step: epochs between two decays (required)."),
    Option("gamma", 0.1, {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
           description="step, multistep (default 0.1), exponential (required): the factor of each decay."),
    Option("milestones", None, {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 10**9},
                                "minItems": 1, "maxItems": 1000},
           description="multistep: the epochs at which the rate is multiplied by gamma, increasing (required)."),
    Option("T_max", None, {"type": "integer", "minimum": 1, "maximum": 10**9},
           description="cosine: epochs from the base rate down to eta_min (required)."),
    Option("eta_min", 0.0, {"type": "number", "minimum": 0, "maximum": 1e6},
           description="cosine: the lowest rate (default 0)."),
    Option("start_factor", 1 / 3, {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
           description="linear: the base rate's factor in epoch 0 (default 1/3)."),
    Option("end_factor", 1.0, {"type": "number", "minimum": 0, "maximum": 1},
           description="linear: its factor from epoch total_iters on (default 1)."),
    Option("total_iters", 5, {"type": "integer", "minimum": 1, "maximum": 10**9},
           description="linear: epochs from start_factor to end_factor (default 5)."),
)}


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule as a spec resolved it: its name and every option it takes."""

    name: str
    options: tuple[tuple[str, Any], ...]  # (PyTorch's name, value), in the rule's order

    @property
    def rule(self) -> "ScheduleRule":
        return SCHEDULES[self.name]

    def __getitem__(self, option: str) -> Any:
        return dict(self.options)[option]

    def rate(self, base: float, epoch: float) -> float:
        """The learning rate in epoch ``epoch`` for base rate ``base`` (PyTorch's closed form)."""
        return self.rule.reference(self, base, epoch)

    def expression(self) -> str:
        """The rates as NumPy source over ``epoch`` (an array) and ``LEARNING_RATE``, for generated code."""
        return self.rule.expression(self)

    def describe(self) -> str:
        """``the rate times 0.1 every 30 epochs (StepLR)``: what the schedule does, in words."""
        return f"{self.rule.describe(self)} ({self.rule.torch.rsplit('.', 1)[-1]})"

    def formula(self, base: str = "\u03b7") -> str:
        """``η_e = η · 0.1^⌊e/30⌋``: the rate of epoch e in mathematical notation, the base rate written ``base``."""
        return "\u03b7_e = " + self.rule.formula(self, base)


@dataclass(frozen=True)
class ScheduleRule:
    """One schedule: its options, its rate (as Python source and as a function) and its wording."""

    name: str
    torch: str                         # "torch.optim.lr_scheduler.StepLR"
    options: tuple[str, ...]           # keys of SCHEDULE_OPTIONS, in PyTorch's order
    required: tuple[str, ...]          # options without a default in PyTorch
    expression: Callable[[Schedule], str]
    reference: Callable[[Schedule, float, float], float]
    describe: Callable[[Schedule], str]
    formula: Callable[[Schedule, str], str]


def _passed(milestones: tuple[int, ...], epoch: float) -> int:
    """How many milestones are at or before ``epoch`` (PyTorch: bisect_right(milestones, epoch))."""
    return bisect.bisect_right(milestones, epoch)


def _number(value: float) -> str:
    return f"{value:g}".replace("-", "\u2212")


#: The schedules, by the name a spec gives (DESIGN.md section 10).
SCHEDULES: dict[str, ScheduleRule] = {rule.name: rule for rule in (
    ScheduleRule(
        "step", "torch.optim.lr_scheduler.StepLR", ("step_size", "gamma"), ("step_size",),
        lambda s: f"LEARNING_RATE * {s['gamma']!r} ** (epoch // {s['step_size']!r})",
        lambda s, base, e: base * s["gamma"] ** (e // s["step_size"]),
        lambda s: f"the rate times {s['gamma']!r} every {s['step_size']} epochs",
        lambda s, b: f"{b} \u00b7 {_number(s['gamma'])}^\u230ae/{s['step_size']}\u230b"),
    ScheduleRule(
        "multistep", "torch.optim.lr_scheduler.MultiStepLR", ("milestones", "gamma"), ("milestones",),
        lambda s: (f"LEARNING_RATE * {s['gamma']!r} ** np.searchsorted({list(s['milestones'])!r}, epoch, "
                   "side='right')"),
        lambda s, base, e: base * s["gamma"] ** _passed(s["milestones"], e),
        lambda s: f"the rate times {s['gamma']!r} at epochs {', '.join(map(str, s['milestones']))}",
        lambda s, b: (f"{b} \u00b7 {_number(s['gamma'])}^k, k = the number of milestones "
                   f"({', '.join(map(str, s['milestones']))}) \u2264 e")),
    ScheduleRule(
        "exponential", "torch.optim.lr_scheduler.ExponentialLR", ("gamma",), ("gamma",),
        lambda s: f"LEARNING_RATE * {s['gamma']!r} ** epoch",
        lambda s, base, e: base * s["gamma"] ** e,
        lambda s: f"the rate times {s['gamma']!r} every epoch",
        lambda s, b: f"{b} \u00b7 {_number(s['gamma'])}^e"),
    ScheduleRule(
        "cosine", "torch.optim.lr_scheduler.CosineAnnealingLR", ("T_max", "eta_min"), ("T_max",),
        lambda s: (f"{s['eta_min']!r} + (LEARNING_RATE - {s['eta_min']!r}) * (1 + np.cos(np.pi * epoch / "
                   f"{s['T_max']!r})) / 2"),
        lambda s, base, e: s["eta_min"] + (base - s["eta_min"]) * (1 + math.cos(math.pi * e / s["T_max"])) / 2,
        lambda s: f"the rate annealed along a cosine to {s['eta_min']!r} over {s['T_max']} epochs",
        lambda s, b: (f"{_number(s['eta_min'])} + ({b} \u2212 {_number(s['eta_min'])}) \u00b7 "
                   f"(1 + cos(\u03c0\u00b7e/{s['T_max']}))/2")),
    ScheduleRule(
        "linear", "torch.optim.lr_scheduler.LinearLR", ("start_factor", "end_factor", "total_iters"), (),
        lambda s: (f"LEARNING_RATE * ({s['start_factor']!r} + ({s['end_factor']!r} - {s['start_factor']!r}) * "
                   f"np.minimum(epoch, {s['total_iters']!r}) / {s['total_iters']!r})"),
        lambda s, base, e: base * (s["start_factor"] + (s["end_factor"] - s["start_factor"])
                                   * min(e, s["total_iters"]) / s["total_iters"]),
        lambda s: (f"the rate's factor {s['start_factor']!r} rising linearly to {s['end_factor']!r} over "
                   f"{s['total_iters']} epochs"),
        lambda s, b: (f"{b} \u00b7 ({_number(s['start_factor'])} + ({_number(s['end_factor'])} \u2212 "
                   f"{_number(s['start_factor'])}) \u00b7 min(e, {s['total_iters']})/{s['total_iters']})")),
)}


def resolve_schedule(raw: dict[str, Any]) -> Schedule:
    """The spec's ``optimizer.schedule`` (schema-valid, options checked) with PyTorch's defaults filled in."""
    rule = SCHEDULES[raw["name"]]
    values = []
    for option in rule.options:
        value = raw.get(option, SCHEDULE_OPTIONS[option].default)
        kind = SCHEDULE_OPTIONS[option].schema["type"]
        value = tuple(int(v) for v in value) if kind == "array" else int(value) if kind == "integer" else float(value)
        values.append((option, value))
    return Schedule(rule.name, tuple(values))


def schedule_schema() -> dict[str, Any]:
    """The JSON Schema of ``optimizer.schedule``: a name and the options of every schedule."""
    names = tuple(SCHEDULES)
    return {
        "type": "object",
        "description": "A learning-rate schedule, stepped once per epoch of train, as torch.optim.lr_scheduler: "
                       + "; ".join(f"{rule.name} ({', '.join(rule.options)})" for rule in SCHEDULES.values()) + ".",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "enum": list(names), "x-what": "schedule",
                     "description": ", ".join(names[:-1]) + f" or {names[-1]}, as torch.optim.lr_scheduler."},
            **{option.name: {**option.schema, "description": option.description}
               for option in SCHEDULE_OPTIONS.values()},
        },
    }

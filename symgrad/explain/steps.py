"""The worked example's last section: the optimizer's first step, and the error after K steps.

Input: the spec's optimizer, the gradient shown, the optimizer's quantities of the first step
(from :mod:`.descent`) and the errors after it.  Output: the update :class:`~.document.Section`
and the optimizer's rule in words, as PyTorch documents it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping

import sympy as sp

from ..formulas import Factor, Point, format_number
from ..optimizers import Optimizer
from ..spec import Spec
from .descent import Descent
from .document import OUTPUT_LIST_LIMIT, Group, Line, Section
from .equations import (
    ALPHA,
    BETA1,
    BETA2,
    EPSILON,
    ERROR,
    ETA,
    LAMBDA,
    MU,
    Difference,
    Equation,
    Fraction,
    Node,
    Number,
    Partial,
    Product,
    Root,
    Square,
    Sum,
    marked,
    per_parameter,
    quantity,
)
from .printers import text_number


def update_section(spec: Spec, point: Point, gradient: Mapping[str, float], updated: Mapping[str, float],
                   first_step: Mapping[str, Mapping[str, float]], shown: Iterable[str], after: float,
                   descent: Descent | None, steps: int, asked: int, examples: int) -> Section:
    lines = []
    for name in shown:
        symbol = quantity(sp.Symbol(name))
        if name in spec.frozen:
            lines.append(Line(Equation((marked(symbol, "+"), symbol, Number(point.parameters[name]))),
                              after="frozen: unchanged"))
            continue
        quantities = {key: values[name] for key, values in first_step.items()}
        lines += _step_lines(first_epoch(spec.optimizer), name, point.parameters[name], gradient[name], quantities,
                             updated[name])
    groups = [Group("Every parameter at once", tuple(lines))] if lines else []
    results = [Line(Equation((ERROR, Number(after))), before="The error after this step:")]
    if descent is not None:
        outputs = ", ".join(f"{u} = {text_number(format_number(v, 6))} (target {text_number(repr(t))})"
                            for u, v, t in zip(spec.layers[-1].units, descent.outputs, point.targets))
        each = ("each one like this" if not spec.optimizer.stateful else
                "the optimizer's state carried from each step to the next")
        if examples > 1:
            each += f", each on all {examples} examples"
            outputs = f"example 1's {outputs}"
        if asked > steps:
            each += (f" (not the {asked} asked for: explain runs at most {steps} steps on a network of "
                     f"{spec.n_parameters} parameters; python -m symgrad train runs more)")
        results.append(Line(Equation((ERROR, Number(descent.errors[-1]))),
                            before=f"The error after {steps} steps, {each}:",
                            after=f"outputs: {outputs}" if spec.n_outputs <= OUTPUT_LIST_LIMIT else ""))
    groups.append(Group("The error", tuple(results)))
    return Section("Update", _update_text(spec.optimizer), tuple(groups))


_SIMULTANEOUS = "Updates are simultaneous: every derivative above was taken at the parameters before the step."


def first_epoch(o: Optimizer) -> Optimizer:
    """The optimizer of the first step: a schedule's rate in epoch 0 as its learning rate."""
    return o if o.schedule is None else replace(o, learning_rate=o.rate(0), schedule=None)


def _schedule_text(o: Optimizer) -> str:
    """What a schedule does to \u03b7, and the rate of the first step (epoch 0)."""
    if o.schedule is None:
        return ""
    return (f" The learning rate follows a schedule, {o.schedule.formula(text_number(repr(o.learning_rate)))} "
            f"in epoch e (from 0): {o.schedule.describe()}, stepped once per epoch of train. Each step here takes "
            f"every example, so step k is epoch k, and the first step, shown below, uses "
            f"\u03b7 = \u03b7_0 = {text_number(repr(o.rate(0)))}.")


def _update_text(o: Optimizer) -> str:
    """The optimizer's rule in words (PyTorch's documented one) and its constants."""
    return _rule_text(first_epoch(o)) + _schedule_text(o)


def _rule_text(o: Optimizer) -> str:
    if o.plain:
        return f"Plain SGD, p\u207a = p \u2212 \u03b7 \u00b7 dE/dp with \u03b7 = {o.learning_rate!r}. {_SIMULTANEOUS}"
    g = "g = dE/dp" + (" + \u03bb\u00b7p" if o.weight_decay and o.name != "adamw" else "")
    constants = [f"\u03b7 = {o.learning_rate!r}"]
    if o.name == "sgd":
        if o.momentum:
            rule = (f"{g}; the momentum buffer b = \u03bc\u00b7b + (1 \u2212 \u03c4)\u00b7g, except on the first step, "
                    "where b = g; p\u207a = p \u2212 \u03b7\u00b7" + ("(g + \u03bc\u00b7b) (Nesterov)" if o.nesterov else "b"))
            constants += [f"\u03bc = {o.momentum!r}", f"\u03c4 = {o.dampening!r}"]
            fresh = "no buffer yet, so b = g"
        else:
            rule, fresh = f"{g}; p\u207a = p \u2212 \u03b7\u00b7g", ""
        title = "SGD (torch.optim.SGD)"
    elif o.name == "rmsprop":
        rule = (f"{g}; v = \u03b1\u00b7v + (1 \u2212 \u03b1)\u00b7g\u00b2; " +
                ("b = \u03bc\u00b7b + g/(\u221av + \u03b5); p\u207a = p \u2212 \u03b7\u00b7b" if o.momentum else
                 "p\u207a = p \u2212 \u03b7\u00b7g/(\u221av + \u03b5)"))
        constants += [f"\u03b1 = {o.alpha!r}", f"\u03b5 = {o.eps!r}"] + ([f"\u03bc = {o.momentum!r}"] if o.momentum else [])
        fresh = "v = 0" + (" and b = 0" if o.momentum else "")
        title = "RMSprop (torch.optim.RMSprop)"
    else:
        decay = "first p \u2190 p\u00b7(1 \u2212 \u03b7\u00b7\u03bb); then " if o.name == "adamw" else ""
        rule = (f"{decay}{g}; m = \u03b2\u2081\u00b7m + (1 \u2212 \u03b2\u2081)\u00b7g; v = \u03b2\u2082\u00b7v + "
                "(1 \u2212 \u03b2\u2082)\u00b7g\u00b2; m\u0302 = m/(1 \u2212 \u03b2\u2081\u1d57), v\u0302 = v/(1 \u2212 \u03b2\u2082\u1d57) "
                "at step t; p\u207a = p \u2212 \u03b7\u00b7m\u0302/(\u221av\u0302 + \u03b5)")
        constants += [f"\u03b2\u2081 = {o.beta1!r}", f"\u03b2\u2082 = {o.beta2!r}", f"\u03b5 = {o.eps!r}"]
        fresh = "m = v = 0, t = 1"
        title = "Adam (torch.optim.Adam)" if o.name == "adam" else "AdamW (torch.optim.AdamW)"
    if o.weight_decay:
        constants.append(f"\u03bb = {o.weight_decay!r}")
    start = f" Below, its first step, from a fresh state ({fresh})." if fresh else ""
    return f"{title}, as PyTorch documents it: {rule}; with {', '.join(constants)}.{start} {_SIMULTANEOUS}"


def _step_lines(o, name: str, value: float, derivative: float, q: Mapping[str, float], new: float) -> list[Line]:
    """One parameter's first step: the optimizer's quantities, then p\u207a, as formulas and with numbers."""
    p = quantity(sp.Symbol(name))
    lines = []
    g, g_number = Partial(Factor("E", name, sp.S.Zero)), Number(derivative)
    if o.weight_decay and o.name != "adamw":  # coupled weight decay: part of the gradient
        coupled = per_parameter("g", name)
        lines.append(Line(Equation((coupled, Sum((g, Product((LAMBDA, p)))),
                                    Sum((g_number, Product((Number(o.weight_decay), Number(value)), "times"))),
                                    Number(q["g"])))))
        g, g_number = coupled, Number(q["g"])

    def define(name_node: Node, formula: Node, numbers: Node, result: float) -> tuple[Node, Number]:
        lines.append(Line(Equation((name_node, formula, numbers, Number(result)))))
        return name_node, Number(result)

    def one_minus(constant: Node, number: float) -> tuple[Node, Number]:
        return Difference(Number(1), constant), Number(1 - number)

    decayed = decayed_number = None
    if o.name == "sgd":
        step, step_number = g, g_number
        if o.momentum:  # the buffer's first value is the gradient itself
            b, b_number = per_parameter("b", name), Number(q["buffer"])
            lines.append(Line(Equation((b, g, b_number))))
            step, step_number = b, b_number
            if o.nesterov:
                step = Sum((g, Product((MU, b))))
                step_number = Sum((g_number, Product((Number(o.momentum), b_number), "times")))
    elif o.name == "rmsprop":
        alpha, alpha_number = one_minus(ALPHA, o.alpha)
        v, v_number = define(per_parameter("v", name), Product((alpha, Square(g))),
                             Product((alpha_number, Square(g_number)), "times"), q["square_avg"])
        step = Fraction(g, Sum((Root(v), EPSILON)))
        step_number = Fraction(g_number, Sum((Root(v_number), Number(o.eps))))
        if o.momentum:
            step, step_number = define(per_parameter("b", name), step, step_number, q["buffer"])
    else:
        beta1, beta1_number = one_minus(BETA1, o.beta1)
        beta2, beta2_number = one_minus(BETA2, o.beta2)
        m, m_number = define(per_parameter("m", name), Product((beta1, g)), Product((beta1_number, g_number), "times"),
                             q["exp_avg"])
        v, v_number = define(per_parameter("v", name), Product((beta2, Square(g))),
                             Product((beta2_number, Square(g_number)), "times"), q["exp_avg_sq"])
        m_hat, m_hat_number = define(per_parameter("m", name, hat=True), Fraction(m, beta1),
                                     Fraction(m_number, beta1_number), q["exp_avg_hat"])
        v_hat, v_hat_number = define(per_parameter("v", name, hat=True), Fraction(v, beta2),
                                     Fraction(v_number, beta2_number), q["exp_avg_sq_hat"])
        step = Fraction(m_hat, Sum((Root(v_hat), EPSILON)))
        step_number = Fraction(m_hat_number, Sum((Root(v_hat_number), Number(o.eps))))
        if o.name == "adamw":  # decoupled weight decay: the parameter shrinks first
            decayed = Product((p, Difference(Number(1), Product((ETA, LAMBDA)))))
            decayed_number = Product((Number(value), Difference(Number(1), Product(
                (Number(o.learning_rate), Number(o.weight_decay)), "times"))), "times")
    lines.append(Line(Equation((
        marked(p, "+"),
        Difference(decayed or p, Product((ETA, step))),
        Difference(decayed_number or Number(value), Product((Number(o.learning_rate), step_number), "times")),
        Number(new)))))
    return lines


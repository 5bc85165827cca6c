"""Plain float64 training for ``explain``: the error after K steps, and every value of a big network.

The loop runs the per-layer rules of :meth:`Gradients.layer_rules` (lambdified with NumPy) on
the theta layout of the vector program: forward a_k = f(W_k a_(k-1) + b_k), output delta from
the loss rule, hidden deltas delta_k = (W_(k+1)^T delta_(k+1)) * f'(net_k), the layers' l1/l2
penalties added to the error and the gradient, then one simultaneous step of the spec's
optimizer on every parameter that is not frozen.  It is independent of the generated modules
and of their templates, so ``explain`` can be compared with them; on one example it agrees with
:func:`symgrad.formulas.evaluate` to rounding.

The worked example's first step and the K steps both go through :class:`Optimizer`, which runs
the reference step of the optimizer table (:mod:`symgrad.optimizers`), PyTorch's documented rule
in plain NumPy; the generated code prints the same rule from its templates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from ..gradients import LOGP, A, Gradients, T, Z
from ..optimizers import Optimizer as OptimizerSpec
from ..optimizers import Quantities
from ..program import LayerPlan, optimize

#: NumPy versions of the rule table's functions, by SymPy class name (what lambdify prints).
_NUMPY_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "Relu": lambda x: np.maximum(x, 0.0),
    "Step": lambda x: (x > 0).astype(np.float64),
    "LeakyRelu": lambda x, slope: np.where(x > 0, x, slope * x),
    "LeakyStep": lambda x, slope: np.where(x > 0, 1.0, slope),
    "Softplus": lambda x: np.logaddexp(0.0, x),
    "erf": np.vectorize(math.erf, otypes=[np.float64]),  # custom formulas may use it; NumPy has none
}


def _compile(expr: sp.Expr | None, args: tuple[sp.Symbol, ...]) -> Callable[..., np.ndarray] | None:
    if expr is None:
        return None
    return sp.lambdify(args, expr, modules=[_NUMPY_FUNCTIONS, "numpy"])


@dataclass(frozen=True)
class LayerState:
    """One layer's values for one example: net inputs, outputs and deltas (1-D arrays)."""

    net: np.ndarray
    out: np.ndarray
    delta: np.ndarray


class Optimizer:
    """The spec's optimizer on a theta array; frozen parameters never change."""

    def __init__(self, options: OptimizerSpec, trainable: np.ndarray) -> None:
        self.options = options
        self.trainable = np.asarray(trainable, dtype=bool)
        self.update = options.rule.reference_step

    @staticmethod
    def fresh_state() -> dict:
        """A state before the first step (PyTorch's: every buffer and moment zero)."""
        return {"step": 0}

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict) -> tuple[np.ndarray, Quantities]:
        """theta after one step (a new array), and the quantities the step computed; ``state`` is updated.

        Each of explain's steps takes every example at once, so step k is epoch k of train: a
        schedule gives it the rate of epoch k (the steps taken before it)."""
        options = self.options
        if options.schedule is not None:
            options = replace(options, learning_rate=options.rate(state["step"]))
        state["step"] += 1
        new, shown = self.update(options, theta, grad, state, self.trainable.astype(np.float64))
        return np.where(self.trainable, new, theta), shown


@dataclass(frozen=True)
class Descent:
    """What K steps did: the error before each step and after the last, and where they ended."""

    errors: tuple[float, ...]          # errors[k] = E after k steps, k = 0..K
    parameters: dict[str, float]       # after K steps
    outputs: tuple[float, ...]         # the outputs after K steps


class _Layer:
    def __init__(self, plan: LayerPlan) -> None:
        rule = plan.rule
        self.plan = plan
        self.softmax = rule.activation == "softmax"
        self.forward = _compile(rule.forward, (Z,))
        self.derivative = _compile(rule.derivative, (Z, A))
        self.loss = _compile(rule.loss, (Z, A, T, LOGP))
        self.delta = _compile(rule.delta, (Z, A, T))
        self.softmax_h = _compile(rule.softmax_h, (Z, A, T))

    def weights(self, theta: np.ndarray) -> np.ndarray:
        p = self.plan
        return theta[p.weight_offset:p.bias_offset].reshape(p.n_out, p.n_in)

    def bias(self, theta: np.ndarray) -> np.ndarray | float:
        p = self.plan
        if p.bias_mode == "none":
            return 0.0
        return theta[p.bias_offset:p.bias_stop]


class Network:
    """The float64 forward pass, backward pass, penalties and optimizer steps of one spec, one example at a time."""

    def __init__(self, gradients: Gradients) -> None:
        self.spec = gradients.model.spec
        program = optimize(gradients, form="vector")
        self.layers = [_Layer(plan) for plan in program.layers]
        frozen = set(self.spec.frozen)
        self.trainable = np.array([name not in frozen for name in self.spec.parameter_names])
        self.optimizer = Optimizer(self.spec.optimizer, self.trainable)
        self.penalized = self.spec.penalized_slices()

    def theta(self, parameters: Mapping[str, float]) -> np.ndarray:
        return np.array([parameters[name] for name in self.spec.parameter_names], dtype=np.float64)

    def forward(self, theta: np.ndarray, x: np.ndarray, t: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Net inputs and outputs per layer (outputs first entry: the inputs) and the error."""
        nets, outs = [], [x]
        for layer in self.layers:
            net = layer.weights(theta) @ outs[-1] + layer.bias(theta)
            if layer.softmax:
                shifted = net - net.max()
                logp = shifted - np.log(np.exp(shifted).sum())
                out = np.exp(logp)
            else:
                logp = np.zeros_like(net)
                with np.errstate(over="ignore"):
                    out = layer.forward(net) * np.ones_like(net)
            nets.append(net)
            outs.append(out)
        last = self.layers[-1]
        error = float(np.sum(last.loss(nets[-1], outs[-1], t, logp) * np.ones_like(t)))
        return nets + outs, error

    def penalty(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The layers' penalties l2 * sum p^2 + l1 * sum |p| over the parameters they cover, and their
        derivatives 2 l2 p + l1 sign(p) (zero elsewhere)."""
        total = 0.0
        grad = np.zeros_like(theta)
        for start, stop, l1, l2, _ in self.penalized:
            covered = theta[start:stop]
            if l2:
                total += l2 * float(np.dot(covered, covered))
                grad[start:stop] += 2 * l2 * covered
            if l1:
                total += l1 * float(np.abs(covered).sum())
                grad[start:stop] += l1 * np.sign(covered)
        return total, grad

    def backward(self, theta: np.ndarray, x: np.ndarray, t: np.ndarray) -> tuple[list[LayerState], float, np.ndarray]:
        """Every layer's values, the error, and dE/dtheta (frozen entries included), penalties not included."""
        values, error = self.forward(theta, x, t)
        n = len(self.layers)
        nets, outs = values[:n], values[n:]
        deltas: list[np.ndarray] = [np.empty(0)] * n
        grad = np.zeros_like(theta)
        for k in reversed(range(n)):
            layer, net, out = self.layers[k], nets[k], outs[k + 1]
            if k == n - 1:
                if layer.softmax:
                    h = layer.softmax_h(net, out, t) * np.ones_like(out)
                    delta = h - out * h.sum()
                else:
                    delta = layer.delta(net, out, t) * np.ones_like(out)
            else:
                following = self.layers[k + 1]
                delta = (following.weights(theta).T @ deltas[k + 1]) * layer.derivative(net, out)
            deltas[k] = delta
            plan = layer.plan
            grad[plan.weight_offset:plan.bias_offset] = np.outer(delta, outs[k]).ravel()
            if plan.bias_mode == "per_unit":
                grad[plan.bias_offset:plan.bias_offset + plan.n_out] = delta
            elif plan.bias_mode == "shared":
                grad[plan.bias_offset] = delta.sum()
        states = [LayerState(nets[k], outs[k + 1], deltas[k]) for k in range(n)]
        return states, error, grad

    def descend(self, parameters: Mapping[str, float], inputs: Sequence[float], targets: Sequence[float],
                steps: int) -> Descent:
        """``steps`` simultaneous steps of the spec's optimizer on one example, from ``parameters`` and a
        fresh optimizer state carried from step to step; errors include the penalties."""
        theta = self.theta(parameters)
        x = np.asarray(inputs, dtype=np.float64)
        t = np.asarray(targets, dtype=np.float64)
        state = self.optimizer.fresh_state()
        errors = []
        for _ in range(steps):
            _, error, grad = self.backward(theta, x, t)
            penalty, penalty_grad = self.penalty(theta)
            errors.append(error + penalty)
            theta, _ = self.optimizer.step(theta, grad + penalty_grad, state)
        values, error = self.forward(theta, x, t)
        errors.append(error + self.penalty(theta)[0])
        return Descent(tuple(errors), dict(zip(self.spec.parameter_names, map(float, theta))),
                       tuple(float(v) for v in values[-1]))

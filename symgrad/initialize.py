"""Initial parameter values: the spec's named values, a seeded scheme for the other weights.

Each layer's whole weight matrix is drawn from one generator seeded by ``initial.seed``, in
layer order, whether or not some of its weights are named; the named values then overwrite
their entries.  So naming one weight never changes the draws of the others, and the same spec
and seed always give the same numbers.  Biases not named start at 0.

Schemes (fan_in = inputs of the layer, fan_out = its units):

* ``xavier_uniform`` (default): U(-a, a), a = sqrt(6 / (fan_in + fan_out))
* ``xavier_normal``: N(0, 2 / (fan_in + fan_out))
* ``he_uniform``: U(-a, a), a = sqrt(6 / fan_in)
* ``he_normal``: N(0, 2 / fan_in)
* ``uniform``: U(-a, a), a = 1 / sqrt(fan_in) (PyTorch's nn.Linear default range)
* ``zeros``
"""

from __future__ import annotations

import math

import numpy as np

from .spec import Spec


def _draw(scheme: str, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    shape = (fan_out, fan_in)
    if scheme == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if scheme == "xavier_normal":
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    if scheme == "he_uniform":
        bound = math.sqrt(6.0 / fan_in)
        return rng.uniform(-bound, bound, shape)
    if scheme == "he_normal":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    if scheme == "uniform":
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape)
    if scheme == "zeros":
        return np.zeros(shape)
    raise ValueError(f"unknown initialization scheme {scheme!r}")


def initial_parameters(spec: Spec) -> np.ndarray:
    """theta at the start of training, float64, in ``spec.parameter_names`` order."""
    rng = np.random.default_rng(spec.seed)
    theta = np.zeros(spec.layout.size)  # biases start at 0
    for slots in spec.layout.layers:
        theta[slots.weight_start:slots.bias_start] = _draw(spec.initial_scheme, rng, slots.n_in, slots.n_out).ravel()
    if spec.initial_values:
        index = {name: k for k, name in enumerate(spec.parameter_names)}
        for name, value in spec.initial_values:
            theta[index[name]] = value
    return theta

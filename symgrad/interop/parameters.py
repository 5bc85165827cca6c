"""theta as per-layer arrays, read through the spec's one layout value (``Spec.layout``).

Both bridges need each layer's weight matrix (unit j's row j, as in ``weights[j][i]``) and its
biases (one per unit, one shared scalar, or none), and the same check of a theta they are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import SpecError
from ..spec import Spec


def checked_theta(spec: Spec, theta: Any, where: str) -> np.ndarray:
    """``theta`` as float64 (the spec's initial values when None); a SpecError at ``where`` when its length is wrong."""
    if theta is None:
        from ..initialize import initial_parameters

        return initial_parameters(spec).astype(np.float64)
    values = np.asarray(theta, dtype=np.float64)
    if values.shape != (spec.n_parameters,):
        raise SpecError(where, f"theta has shape {values.shape}, but {spec.name} has {spec.n_parameters} parameters",
                        "pass the 1-D theta of this spec (order: PARAMETER_NAMES), e.g. what train --save wrote")
    return values


def layer_arrays(spec: Spec, values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weights (n_out, n_in), biases: (n_out,), a shared scalar of shape (), or None) per layer.

    ``values`` is anything laid out like theta (theta itself, or a mask over it); the arrays are views.
    """
    arrays = []
    for slot in spec.layout.layers:
        weights = values[slot.weight_start:slot.bias_start].reshape(slot.n_out, slot.n_in)
        biases = values[slot.bias_start:slot.stop]
        arrays.append((weights, None if slot.bias_mode == "none" else
                       biases.reshape(()) if slot.bias_mode == "shared" else biases))
    return arrays

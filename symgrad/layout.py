"""Where each parameter sits in theta: one value that every stage and emitter reads.

Theta (DESIGN.md section 4) holds the layers one after the other; in each layer its weights in
``weights[j][i]`` order (unit j, then input i), then its biases (one per unit, one shared, or
none).  A layer's l1/l2 penalties cover its weights, and its biases with ``regularize_bias``:
one contiguous range either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from . import naming

if TYPE_CHECKING:
    from .spec import Layer


@dataclass(frozen=True)
class LayerSlots:
    """One layer's part of theta: weights [weight_start, bias_start), biases [bias_start, stop)."""

    index: int  # 0-based layer
    n_in: int
    n_out: int
    bias_mode: str
    weight_start: int
    bias_start: int
    stop: int
    penalty_stop: int  # the penalties cover [weight_start, penalty_stop)
    l1: float
    l2: float

    @property
    def n_biases(self) -> int:
        return self.stop - self.bias_start


@dataclass(frozen=True)
class ThetaLayout:
    layers: tuple[LayerSlots, ...]

    @property
    def size(self) -> int:
        return self.layers[-1].stop if self.layers else 0

    def penalized(self) -> tuple[tuple[int, int, float, float, int], ...]:
        """(start, stop, l1, l2, layer) of every layer that has a penalty."""
        return tuple((s.weight_start, s.penalty_stop, s.l1, s.l2, s.index) for s in self.layers if s.l1 or s.l2)


def theta_layout(layers: Sequence["Layer"]) -> ThetaLayout:
    slots, start = [], 0
    for k, layer in enumerate(layers):
        bias_start = start + layer.n_in * layer.n_out
        stop = bias_start + len(layer.biases)
        slots.append(LayerSlots(k, layer.n_in, layer.n_out, layer.bias_mode, start, bias_start, stop,
                                stop if layer.regularize_bias else bias_start, layer.l1, layer.l2))
        start = stop
    return ThetaLayout(tuple(slots))


def name_groups(layers: Sequence["Layer"]) -> list[dict[str, Any]]:
    """The parameter names in theta order, in runs: a layer whose names symgrad generated is one
    numbered group (``head`` W{k} or b{k}, then ``loops`` over j and i), so a 784-256-10 module
    does not spell out 203,530 strings; names from the spec stay a list (``names``)."""
    groups: list[dict[str, Any]] = []
    for k, layer in enumerate(layers, start=1):
        weights = enumerate(layer.weights)
        if all(name == naming.weight_name(k, j, i) for j, row in weights for i, name in enumerate(row)):
            groups.append({"head": naming.parameter_head("weight", k), "pattern": naming.weight_name(k, "{j}", "{i}"),
                           "loops": [("j", layer.n_out), ("i", layer.n_in)]})
        else:
            groups.append({"names": [name for row in layer.weights for name in row]})
        if layer.bias_mode == "per_unit" and all(name == naming.bias_name(k, j) for j, name in enumerate(layer.biases)):
            groups.append({"head": naming.parameter_head("bias", k), "pattern": naming.bias_name(k, "{j}"),
                           "loops": [("j", layer.n_out)]})
        elif layer.biases:
            groups.append({"names": list(layer.biases)})
    return groups

"""Where the network diagram puts things; ``diagram.svg.jinja`` draws them.

One column per layer (the inputs first), units top to bottom, each layer's bias as a node
"1" under the column before it, as the walk-throughs draw it.  Wide layers show their first
and last units around an ellipsis.  Weights and biases are labelled with their names and
values when the network is small enough for the labels to be read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..formulas import Point
from ..formulas import format_number as _format
from ..spec import Spec
from .printers import text_number

COLUMN = 250        # horizontal distance between layers
ROW = 100           # vertical distance between units
MARGIN_X = 80
MARGIN_TOP = 70
RADIUS = 24
SHOWN = 8           # layers up to this wide show every unit; wider ones the first 3 and the last 2
LABEL_LIMIT = 40    # label every weight and bias up to this many parameters
CHARACTER = 7.2     # the width of a label's character at the diagram's 13 px font, a little generous


@dataclass(frozen=True)
class Node:
    x: float
    y: float
    label: str
    kind: str           # input, hidden, output, bias
    note: str = ""      # a value shown beside the node


@dataclass(frozen=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    lx: float = 0.0
    ly: float = 0.0
    bias: bool = False

    @property
    def label_width(self) -> float:
        """The opaque box behind the label, so the edges do not show through its text."""
        return len(self.label) * CHARACTER + 8


@dataclass(frozen=True)
class Column:
    x: float
    title: str


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    columns: tuple[Column, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    ellipses: tuple[tuple[float, float], ...]
    title: str
    radius: float = RADIUS


def format_number(value: float, digits: int) -> str:
    """A diagram's number, with a minus sign (U+2212) as in the equations."""
    return text_number(_format(value, digits))


def _rows(n: int) -> list[int | None]:
    """Which units a column shows, top to bottom; None is the ellipsis."""
    return list(range(n)) if n <= SHOWN else [0, 1, 2, None, n - 2, n - 1]


def _along(edge: tuple[float, float, float, float], t: float) -> tuple[float, float]:
    x1, y1, x2, y2 = edge
    return x1 + t * (x2 - x1), y1 + t * (y2 - y1)


def _between(x1: float, y1: float, x2: float, y2: float, label: str, t: float, bias: bool = False) -> Edge:
    """The edge from circle to circle (shortened by the radius at both ends), its label at ``t``."""
    length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1.0)
    dx, dy = RADIUS * (x2 - x1) / length, RADIUS * (y2 - y1) / length
    lx, ly = _along((x1, y1, x2, y2), t)
    return Edge(x1 + dx, y1 + dy, x2 - dx, y2 - dy, label, lx, ly, bias)


def layout(spec: Spec, point: Point, digits: int = 6) -> Diagram:
    labelled = spec.n_parameters <= LABEL_LIMIT
    columns = [list(spec.inputs)] + [list(layer.units) for layer in spec.layers]
    rows = [_rows(len(names)) for names in columns]
    tallest = max(len(r) for r in rows)
    has_bias = any(layer.bias_mode != "none" for layer in spec.layers)
    height = MARGIN_TOP + (tallest - 1 + (1 if has_bias else 0)) * ROW + RADIUS + 50
    width = 2 * MARGIN_X + (len(columns) - 1) * COLUMN + (90 if spec.n_outputs <= SHOWN else 40)

    def y_of(c: int, r: int) -> float:
        return MARGIN_TOP + (tallest - len(rows[c])) * ROW / 2 + r * ROW

    position: dict[tuple[int, int], tuple[float, float]] = {}
    nodes, ellipses = [], []
    for c, names in enumerate(columns):
        x = MARGIN_X + c * COLUMN
        kind = "input" if c == 0 else ("output" if c == len(columns) - 1 else "hidden")
        for r, j in enumerate(rows[c]):
            if j is None:
                ellipses.append((x, y_of(c, r)))
                continue
            position[c, j] = (x, y_of(c, r))
            note = ""
            if kind == "input" and len(names) <= SHOWN:
                note = format_number(point.inputs[j], digits)
            elif kind == "output" and len(names) <= SHOWN:
                note = "target " + format_number(point.targets[j], digits)
            nodes.append(Node(x, y_of(c, r), names[j], kind, note))

    edges = []
    bias_y = MARGIN_TOP + tallest * ROW
    values = point.parameters
    for k, layer in enumerate(spec.layers):
        for (c, j), (x2, y2) in position.items():
            if c != k + 1:
                continue
            for i in range(layer.n_in):
                if (k, i) not in position:
                    continue
                x1, y1 = position[k, i]
                name = layer.weights[j][i]
                label = f"{name} = {format_number(values[name], digits)}" if labelled else ""
                edges.append(_between(x1, y1, x2, y2, label, 0.3))
        if layer.bias_mode == "none":
            continue
        bx = MARGIN_X + k * COLUMN
        shared = layer.bias_mode == "shared"
        note = f"{layer.biases[0]} = {format_number(values[layer.biases[0]], digits)}" if shared and labelled else ""
        nodes.append(Node(bx, bias_y, "1", "bias", note))
        for (c, j), (x2, y2) in position.items():
            if c != k + 1:
                continue
            label = ""
            if labelled and not shared:
                label = f"{layer.biases[j]} = {format_number(values[layer.biases[j]], digits)}"
            edges.append(_between(bx, bias_y, x2, y2, label, 0.72, bias=True))

    titles = ["inputs"] + [("output" if k == len(spec.layers) - 1 else f"hidden {k + 1}")
                           + f" ({layer.activation.describe()})" for k, layer in enumerate(spec.layers)]
    sizes = "-".join(str(len(c)) for c in columns)
    return Diagram(width, height, tuple(Column(MARGIN_X + c * COLUMN, t) for c, t in enumerate(titles)),
                   tuple(nodes), tuple(edges), tuple(ellipses), f"{spec.name}: a {sizes} network")

"""The same pass in matrix form: each layer's vectors and matrices, with the numbers of the first example.

Input: the gradients and the values of every symbol.  Output: a :class:`~.document.Section` with
net⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾, δ⁽ᴸ⁾ = ∂E/∂a⁽ᴸ⁾ ⊙ f′(net⁽ᴸ⁾), δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾)ᵀ δ⁽ˡ⁺¹⁾ ⊙ f′(net⁽ˡ⁾) and
∂E/∂W⁽ˡ⁾ = δ⁽ˡ⁾ a⁽ˡ⁻¹⁾ᵀ, the numbers as small matrices, and where the transpose comes from.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import sympy as sp

from ..formulas import value_of
from ..gradients import Gradients
from ..model import ModelLayer
from .document import Group, Line, Section
from .equations import Equation, Matrix, Name, Node, Number, Product, layered, quantity, total
from .printers import superscript

#: Matrices are shown with their numbers up to this many rows and columns.
MATRIX_LIMIT = 12

_A = "<mi>a</mi>"
_DELTA = "<mi>\u03b4</mi>"


def _column(values: Sequence[float]) -> Matrix:
    return Matrix(tuple((Number(v),) for v in values))


def _grid(values: Sequence[Sequence[float]]) -> Matrix:
    return Matrix(tuple(tuple(Number(v) for v in row) for row in values))


def _activations(k: int) -> Name:
    return layered("a", k, mathml_base=_A)


def _nets(k: int) -> Name:
    return layered("net", k, r"\mathrm{net}", "<mi>net</mi>")


def _deltas(k: int) -> Name:
    return layered("\u03b4", k, r"\delta", _DELTA)


def _slope(k: int) -> Name:
    net = _nets(k)
    return Name(f"f\u2032({net.text})", rf"f'\left({net.latex}\right)",
                f"<mrow><msup><mi>f</mi><mo>\u2032</mo></msup><mo>(</mo>{net.mathml}<mo>)</mo></mrow>")


def _dE_by(name: Name) -> Name:
    return Name(f"\u2202E/\u2202{name.text}", rf"\frac{{\partial E}}{{\partial {name.latex}}}",
                f"<mfrac><mrow><mo>\u2202</mo><mi>E</mi></mrow><mrow><mo>\u2202</mo>{name.mathml}</mrow></mfrac>")


def _transposed_row(k: int) -> Name:
    a = _activations(k)
    return Name(f"{a.text}\u1d40", rf"{{{a.latex}}}^{{T}}", f"<msup>{a.mathml}<mi>T</mi></msup>")


class _Numbers:
    """The first example's values, per layer, as lists."""

    def __init__(self, gradients: Gradients, numbers: Mapping[sp.Symbol, float]) -> None:
        self.gradients, self.numbers = gradients, numbers

    def inputs(self, layer: ModelLayer) -> list[float]:
        return [self.numbers[layer.input_symbol(i)] for i in range(layer.spec.n_in)]

    def weights(self, layer: ModelLayer) -> list[list[float]]:
        return [[self.numbers[layer.weight(j, i)] for i in range(layer.spec.n_in)] for j in range(layer.spec.n_out)]

    def of(self, layer: ModelLayer, what: str) -> list[float]:
        return [self.numbers[getattr(unit, what)] for unit in layer.units]

    def unit_factor(self, layer: ModelLayer, what: str) -> list[float]:
        return [value_of(getattr(self.gradients.unit(unit.name), what), self.numbers) for unit in layer.units]


def matrix_section(gradients: Gradients, numbers: Mapping[sp.Symbol, float], several: bool) -> Section:
    model = gradients.model
    values = _Numbers(gradients, numbers)
    shown = all(max(layer.spec.n_in, layer.spec.n_out) <= MATRIX_LIMIT for layer in model.layers)
    forward, backward = [], []
    for layer in model.layers:
        forward += _forward_lines(layer, values, shown)
    for layer in reversed(model.layers):
        backward += _backward_lines(gradients, layer, values, shown)
    names = [Line(Equation((layered("W", layer.index + 1), Matrix(tuple(
        tuple(quantity(layer.weight(j, i)) for i in range(layer.spec.n_in)) for j in range(layer.spec.n_out))))))
        for layer in model.layers]
    text = ("The same pass with one vector per layer: a⁽⁰⁾ = x holds the inputs, a⁽ˡ⁾ the outputs of layer l. "
            "Row j of W⁽ˡ⁾ holds the weights into unit j, so W⁽ˡ⁾[j][i] connects unit i of layer l − 1 to unit j, "
            "and net⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾. Going back, unit j of layer l feeds every unit k of layer l + 1 "
            "through W⁽ˡ⁺¹⁾[k][j], so ∂E/∂out_j = Σ_k W⁽ˡ⁺¹⁾[k][j] δ_k: a sum down column j of W⁽ˡ⁺¹⁾, which is "
            "row j of its transpose. That is where the transpose comes from: δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾)ᵀ δ⁽ˡ⁺¹⁾ ⊙ "
            "f′(net⁽ˡ⁾), with ⊙ the elementwise product. Every weight's derivative is then one outer product, "
            "∂E/∂W⁽ˡ⁾ = δ⁽ˡ⁾ a⁽ˡ⁻¹⁾ᵀ: entry [j][i] is δ_j times input i, the chains above.")
    if several:
        text += " The numbers are example 1's."
    if not shown:
        text += f" Layers wider than {MATRIX_LIMIT} are shown by their formulas only."
    return Section("Matrix form", text, (
        Group("The weight matrices", tuple(names)),
        Group("Forward", tuple(forward)),
        Group("Backward", tuple(backward), "The layers' penalties add their derivative to these afterwards."
              if model.spec.penalized_slices() else ""),
    ))


def _forward_lines(layer: ModelLayer, values: _Numbers, shown: bool) -> list[Line]:
    k = layer.index + 1
    net = _nets(k)
    W, a = layered("W", k), _activations(k - 1)
    bias = layer.spec.bias_mode != "none"
    b = layered("b", k)
    sides: list[Node] = [net, total((Product((W, a), "juxt"),) + ((b,) if bias else ()))]
    if shown:
        biases = [value_of(layer.bias(j), values.numbers) for j in range(layer.spec.n_out)] if bias else []
        sides.append(total((Product((_grid(values.weights(layer)), _column(values.inputs(layer))), "juxt"),)
                           + ((_column(biases),) if bias else ())))
        sides.append(_column(values.of(layer, "net")))
    before = "a\u207d\u2070\u207e = x, the inputs:" if k == 1 else ""
    activation = ("softmax(" if layer.activation == "softmax" else "f(") + net.text + ")"
    out: list[Node] = [_activations(k), Name(activation, activation.replace("net", r"\mathrm{net}").replace(
        net.text, net.latex), f"<mrow><mi>{'softmax' if layer.activation == 'softmax' else 'f'}</mi><mo>(</mo>"
        f"{net.mathml}<mo>)</mo></mrow>")]
    if shown:
        out.append(_column(values.of(layer, "out")))
    return [Line(Equation(tuple(sides)), before=before),
            Line(Equation(tuple(out)), after="elementwise" if layer.activation != "softmax" else "")]


def _backward_lines(gradients: Gradients, layer: ModelLayer, values: _Numbers, shown: bool) -> list[Line]:
    model = gradients.model
    k = layer.index + 1
    delta = _deltas(k)
    lines = []
    if layer.is_output and layer.activation == "softmax":
        sides: list[Node] = [delta, _dE_by(_nets(k))]
        before = "Softmax output: each \u03b4 is the sum over every output shown above:"
    elif layer.is_output:
        sides = [delta, Product((_dE_by(_activations(k)), _slope(k)), "odot")]
        if shown:
            sides.append(Product((_column(values.unit_factor(layer, "dE_dout")),
                                  _column(values.unit_factor(layer, "dout_dnet"))), "odot"))
        before = "The output layer: \u2202E/\u2202out times \u2202out/\u2202net, unit by unit:"
    else:
        following = model.layers[layer.index + 1]
        sides = [delta, Product((Product((layered("W", k + 1, transposed=True),
                                          _deltas(k + 1)), "juxt"), _slope(k)), "odot")]
        if shown:
            transposed = [list(row) for row in zip(*values.weights(following))]
            sides.append(Product((Product((_grid(transposed), _column(values.of(following, "delta"))), "juxt"),
                                  _column(values.unit_factor(layer, "dout_dnet"))), "odot"))
            sides.append(Product((_column(values.unit_factor(layer, "dE_dout")),
                                  _column(values.unit_factor(layer, "dout_dnet"))), "odot"))
        before = (f"Hidden layer {k}: the transpose of W\u207d{superscript(str(k + 1))}\u207e sends each \u03b4 of "
                  "the next layer back along the weights it came through:")
    if shown:
        sides.append(_column(values.of(layer, "delta")))
    lines.append(Line(Equation(tuple(sides)), before=before))
    gradient: list[Node] = [_dE_by(layered("W", k)), Product((delta, _transposed_row(k - 1)), "juxt")]
    if shown:
        deltas, inputs = values.of(layer, "delta"), values.inputs(layer)
        gradient += [Product((_column(deltas), _grid([inputs])), "juxt"),
                     _grid([[d * x for x in inputs] for d in deltas])]
    lines.append(Line(Equation(tuple(gradient))))
    if layer.spec.bias_mode == "per_unit":
        lines.append(Line(Equation((_dE_by(layered("b", k)), delta))))
    elif layer.spec.bias_mode == "shared":
        shared = quantity(sp.Symbol(layer.spec.biases[0]))
        total_delta = Name(f"\u03a3_j {delta.text}_j", rf"\sum_j {delta.latex}_j",
                           f"<mrow><munder><mo>\u2211</mo><mi>j</mi></munder><msub>{delta.mathml}<mi>j</mi></msub></mrow>")
        sides = [_dE_by(shared), total_delta]
        if shown:
            sides.append(Number(sum(values.of(layer, "delta"))))
        lines.append(Line(Equation(tuple(sides)), after="one bias shared by the layer: the sum of its \u03b4s"))
    return lines


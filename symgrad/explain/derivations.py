"""Why each local derivative is what it is: the loss's and every activation's, derived once by SymPy.

Input: the model.  Output: a :class:`~.document.Group` that states the loss term and each
activation in the variables the textbooks use (o and t, x), differentiates them with SymPy, and
says what that makes of the chain-rule factors (dE/dout_k, dout/dnet).  Custom formulas from the
spec get the same treatment from their own SymPy expression.
"""

from __future__ import annotations

from typing import Callable

import sympy as sp

from .. import rules
from ..formulas import Factor
from ..model import Model
from .document import Group, Line
from .equations import Equation, Formula, Name, Node, Parenthesized, Partial, Product

X, OUTPUT, TARGET = rules.FORMULA_X, rules.FORMULA_O, rules.FORMULA_T
NET, OUT = sp.Symbol("net", real=True), sp.Symbol("out", real=True)

#: The elementary definitions behind the rule table's own functions (rules.Sigmoid.eval and
#: rules.Softplus.eval compute the same at numbers), so that SymPy can show the derivative's steps.
_DEFINITIONS: dict[type, Callable[[sp.Expr], sp.Expr]] = {
    rules.Sigmoid: lambda x: 1 / (1 + sp.exp(-x)),
    rules.Softplus: lambda x: sp.log(1 + sp.exp(x)),
}

#: A loss's derivative is also shown factored when it has at most this many operations.
FACTOR_LIMIT = 30

#: One sentence per built-in activation and loss: the calculus step behind SymPy's answer.
_WHY = {
    "sigmoid": "1 \u2212 \u03c3(x) = e^(\u2212x)/(1 + e^(\u2212x)), so the derivative is the output times one minus "
               "the output: a unit needs only its own out to know its slope.",
    "tanh": "tanh\u2032 = 1 \u2212 tanh\u00b2, so the slope is 1 \u2212 out\u00b2.",
    "relu": "relu(x) = max(x, 0) has slope 1 where x > 0 and 0 elsewhere (0 at x = 0, as PyTorch takes it): "
            "step(x).",
    "leaky_relu": "the slope is 1 where x > 0 and the leak elsewhere (also at x = 0, as PyTorch takes it).",
    "softplus": "log(1 + e^x) has the derivative e^x/(1 + e^x), which is \u03c3(x).",
    "linear": "the output is the net input itself: slope 1.",
    "custom": "SymPy differentiates the spec's formula.",
    "half_sse": "the power rule: 2 \u00b7 \u00bd(t \u2212 o) times the inner derivative \u22121 gives o \u2212 t; "
                "the \u00bd is there to cancel the 2.",
    "sse": "the power rule: 2(t \u2212 o) times the inner derivative \u22121.",
    "mse": "the power rule, times the 1/K that averages over the K outputs.",
    "cross_entropy": "d/do of \u2212t log o is \u2212t/o.",
    "binary_cross_entropy": "d/do of \u2212t log o is \u2212t/o, and of \u2212(1 \u2212 t) log(1 \u2212 o) it is "
                            "(1 \u2212 t)/(1 \u2212 o).",
}


def _name(text: str, latex: str, mathml: str) -> Name:
    return Name(text, latex, mathml)


def _d_by(variable: str) -> Name:
    """The operator d/dx."""
    return _name(f"d/d{variable}", rf"\frac{{d}}{{d{variable}}}",
                 f"<mfrac><mi>d</mi><mrow><mi>d</mi><mi>{variable}</mi></mrow></mfrac>")


def _applied(operator: Name, body: sp.Expr) -> Node:
    return Product((operator, Parenthesized(Formula(body))), "juxt")


LOSS_NAME = _name("\u2113(o, t)", r"\ell(o, t)", "<mrow><mi>\u2113</mi><mo>(</mo><mi>o</mi><mo>,</mo><mi>t</mi>"
                  "<mo>)</mo></mrow>")


LOSS_SLOPE = _name("\u2202\u2113/\u2202o", r"\frac{\partial \ell}{\partial o}",
                   "<mfrac><mrow><mo>\u2202</mo><mi>\u2113</mi></mrow><mrow><mo>\u2202</mo><mi>o</mi></mrow></mfrac>")


def _prime(name: str, latex: str, mathml: str) -> Name:
    return _name(f"{name}\u2032(x)", rf"{latex}'(x)", f"<mrow><msup>{mathml}<mo>\u2032</mo></msup><mo>(</mo>"
                 "<mi>x</mi><mo>)</mo></mrow>")


def loss_lines(model: Model) -> list[Line]:
    """The loss term of one output in o and t, and its derivative in o."""
    spec = model.spec
    term = model.loss_term(OUTPUT, TARGET)
    derivative = sp.diff(term, OUTPUT)
    sides: list[Node] = [LOSS_SLOPE, _applied(_d_by("o"), term), Formula(derivative)]
    if sp.count_ops(derivative) <= FACTOR_LIMIT:  # factoring a spec's long formula could take minutes
        simpler = sp.factor(derivative)
        if simpler != derivative and sp.count_ops(simpler) < sp.count_ops(derivative):
            sides.append(Formula(simpler))
    where = (f"with label smoothing {spec.loss.label_smoothing!r} the target t is (1 \u2212 s)t + s/K; "
             if spec.loss.label_smoothing else "")
    return [
        Line(Equation((LOSS_NAME, Formula(term))),
             before=f"The loss ({spec.loss.name}) of one output o with target t; E of an example adds it up over the "
                    "outputs (E_o1 is output o1's share):"),
        Line(Equation(tuple(sides)),
             before=f"Why \u2202E/\u2202out_k is what it is: {where}{_WHY.get(spec.loss.name, _WHY['custom'])} "
                    "Only E_k contains out_k, so \u2202E/\u2202out_k is this with o = out_k, t = t_k:"),
    ]


def activation_lines(model: Model) -> list[Line]:
    """Each activation of the network once (output layer first): its definition, its derivative, and
    the derivative written through the unit's output, as the chains use it."""
    lines: list[Line] = []
    seen: set[str] = set()
    for layer in reversed(model.layers):
        activation = layer.spec.activation
        key = activation.describe()
        if key in seen:
            continue
        seen.add(key)
        if activation.name == "softmax":
            lines.append(Line(Equation((Partial(Factor("out_k", "net_j", sp.S.Zero)),
                                        Formula(rules.softmax_jacobian(sp.Symbol("out_k"), sp.Symbol("out_j"), False)),
                                        )), before="softmax: out_k = e^(net_k)/\u03a3_i e^(net_i). Differentiating the "
                                                   "quotient, \u2202out_k/\u2202net_k = out_k(1 \u2212 out_k) and, for "
                                                   "j \u2260 k, \u2202out_k/\u2202net_j is:"))
            continue
        function = rules.activation_function(activation)
        forward = function(X)
        definition = forward.replace(lambda e: type(e) in _DEFINITIONS, lambda e: _DEFINITIONS[type(e)](*e.args))
        prime = _prime("f", "f", "<mi>f</mi>")
        sides: list[Node] = [prime]
        if definition != forward:
            sides += [_applied(_d_by("x"), definition), Formula(sp.diff(definition, X))]
        sides.append(Formula(_factors_first(sp.diff(forward, X)), as_built=True))
        through = rules.activation_derivative(activation, NET, OUT)
        lines.append(Line(Equation((_name("f(x)", "f(x)", "<mrow><mi>f</mi><mo>(</mo><mi>x</mi><mo>)</mo></mrow>"),
                                    Formula(forward)) + ((Formula(definition),) if definition != forward else ())),
                          before=f"The activation {key} of the {_roles(model, key)}:"))
        lines.append(Line(Equation(tuple(sides)), before="Its derivative, by SymPy: "
                          + _WHY.get(activation.name, _WHY["custom"])))
        lines.append(Line(Equation((Partial(Factor("out", "net", through)), Formula(_factors_first(through),
                                                                                    as_built=True))),
                          before="With out = f(net), the factor \u2202out/\u2202net of every unit of this layer:"))
    return lines


def _factors_first(expr: sp.Expr) -> sp.Expr:
    """A product with its single factors before its sums: σ(x)·(1 − σ(x)), as the textbooks write it."""
    if not isinstance(expr, sp.Mul):
        return expr
    return sp.Mul(*sorted(expr.args, key=lambda factor: isinstance(factor, sp.Add)), evaluate=False)


def _roles(model: Model, key: str) -> str:
    """The layers with activation ``key``, output layer first: ``output layer and hidden layer 1``."""
    return " and ".join("output layer" if layer.is_output else f"hidden layer {layer.index + 1}"
                        for layer in reversed(model.layers) if layer.spec.activation.describe() == key)


def derivations_group(model: Model) -> Group:
    """Why the factors are what they are: the loss's derivative, then each activation's."""
    return Group("Why each factor is what it is", tuple(loss_lines(model) + activation_lines(model)),
                 "The chain rule below multiplies local derivatives. Each comes from one small formula, "
                 "differentiated once here.")

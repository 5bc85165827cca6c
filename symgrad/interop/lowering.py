"""One table of elementwise operations, and a walk that lowers a SymPy expression through it.

An activation or a loss term is a SymPy expression in a few symbols.  Each target (ONNX nodes,
torch tensors) implements the operations named in :data:`OPERATIONS` once; :func:`lower` walks
the expression and calls them, so a custom formula needs no per-target code and no string is
ever evaluated.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, TypeVar

import sympy as sp

from .. import rules
from ..errors import InternalError

Value = TypeVar("Value")

#: SymPy function -> the operation's name; a target implements every name here.
OPERATIONS: dict[type, str] = {
    sp.exp: "exp",
    sp.log: "log",
    sp.tanh: "tanh",
    sp.Abs: "abs",
    sp.erf: "erf",
    sp.sign: "sign",
    sp.Max: "maximum",
    sp.Min: "minimum",
    rules.Sigmoid: "sigmoid",
    rules.Softplus: "softplus",
    rules.Relu: "relu",
    rules.LeakyRelu: "leaky_relu",
}


class Target(Protocol[Value]):
    """What a target supplies: constants and the named operations (plus add, mul, pow, sqrt, reciprocal)."""

    def constant(self, value: float) -> Value: ...

    def apply(self, operation: str, *args: Value) -> Value: ...


def lower(expr: sp.Expr, values: Mapping[sp.Symbol, Value], target: Target[Value]) -> Value:
    """The value of ``expr`` in ``target``, with ``values`` for its free symbols."""
    memo: dict[sp.Expr, Value] = dict(values)

    def walk(node: sp.Expr) -> Value:
        if node in memo:
            return memo[node]
        if node.is_Symbol:
            raise InternalError(f"no value for the symbol {node} while lowering {expr}")
        if node.is_Number:
            result = target.constant(float(node))
        elif isinstance(node, (sp.Add, sp.Mul)):
            operation = "add" if isinstance(node, sp.Add) else "mul"
            args = sorted(node.args, key=sp.default_sort_key)
            result = walk(args[0])
            for arg in args[1:]:
                result = target.apply(operation, result, walk(arg))
        elif isinstance(node, sp.Pow):
            base, exponent = node.args
            if exponent == sp.S.Half:
                result = target.apply("sqrt", walk(base))
            elif exponent == -1:
                result = target.apply("reciprocal", walk(base))
            else:
                result = target.apply("pow", walk(base), walk(exponent))
        elif type(node) in OPERATIONS:
            result = target.apply(OPERATIONS[type(node)], *(walk(arg) for arg in node.args))
        else:
            raise InternalError(f"no lowering for {type(node).__name__} in {expr}; this is a bug in symgrad")
        memo[node] = result
        return result

    return walk(expr)


def activation_expr(activation: Any, x: sp.Symbol) -> sp.Expr:
    """An elementwise activation (every activation but softmax) as a SymPy expression in ``x``."""
    return rules.activation_function(activation)(x)


def loss_parts(model: Any) -> tuple[sp.Expr, sp.Symbol, sp.Symbol, sp.Symbol, sp.Symbol]:
    """One output's loss term, with logarithms taken from the logits: (term, o, t, net, log_o).

    The term is what :meth:`Model.loss_term` gives (mse's 1/K and label smoothing included);
    a target evaluates it elementwise over the (examples, outputs) matrix and sums the outputs.
    """
    o, t, net, log_o = sp.symbols("o t net log_o", real=True)
    activation = model.output_layer.activation
    term = model.loss_term(o, t)
    rewrites = rules.stable_log_rewrites(activation, net, o, log_o if activation == "softmax" else None)
    return term.xreplace(rewrites), o, t, net, log_o

"""The table of activations and losses: each rule's formula, derivative and spellings in one place.

Activations are SymPy functions whose ``fdiff`` states their derivative in terms of themselves
(sigma' = sigma (1 - sigma)), so after ``diff`` a derivative can be rewritten through the unit's
output symbol, which is how the walk-throughs write it.  Kinks follow PyTorch: relu'(0) = 0 and
leaky_relu'(0) = slope.  Numeric arguments evaluate, so substituting Floats gives a number.

Each function's spelling in generated code (NumPy, C), in plain text and in LaTeX stands in
:data:`SPELLINGS`, one line per function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import sympy as sp

from . import expression
from .errors import SpecError

#: The template symbols of a layer's elementwise rules: net input, output, target, log-probability.
Z, A, T, LOGP = sp.symbols("z a t logp", real=True)

if TYPE_CHECKING:
    from .spec import Activation, Layer, Loss


class Sigmoid(sp.Function):
    """The logistic function 1 / (1 + exp(-x))."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self * (1 - self)


class Step(sp.Function):
    """relu's derivative: 1 where x > 0, else 0 (PyTorch's convention at 0)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_Number:
            return sp.S.One if x > 0 else sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero


class Relu(sp.Function):
    """max(x, 0)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_Number:
            return x if x > 0 else sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Step(self.args[0])


class LeakyStep(sp.Function):
    """leaky_relu's derivative: 1 where x > 0, else the slope (also at 0, like PyTorch)."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, slope: sp.Expr) -> sp.Expr | None:
        if x.is_Number:
            return sp.S.One if x > 0 else slope
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero


class LeakyRelu(sp.Function):
    """x where x > 0, else slope * x."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, slope: sp.Expr) -> sp.Expr | None:
        if x.is_Number:
            return x if x > 0 else slope * x
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return LeakyStep(*self.args)


class Softplus(sp.Function):
    """log(1 + exp(x)), whose derivative is the sigmoid."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_Number:
            return sp.log(1 + sp.exp(x))
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Sigmoid(self.args[0])


@dataclass(frozen=True)
class Spelling:
    """How one function is written: ``{0}``, ``{1}`` stand for its printed arguments.

    ``numpy`` and ``c`` name a helper when the operation needs more than one expression; the
    emitters' templates define those helpers.
    """

    numpy: str
    c: str
    text: str
    latex: str
    numpy_helper: str = ""
    c_helper: str = ""


SPELLINGS: dict[type, Spelling] = {
    Sigmoid: Spelling("_sigmoid({0})", "sg_sigmoid({0})", "sigmoid({0})", r"\sigma\left({0}\right)",
                      numpy_helper="_sigmoid", c_helper="sg_sigmoid"),
    Relu: Spelling("np.maximum({0}, 0)", "sg_relu({0})", "relu({0})", r"\operatorname{{relu}}\left({0}\right)",
                   c_helper="sg_relu"),
    Step: Spelling("_step({0})", "sg_step({0})", "step({0})", r"\operatorname{{H}}\left({0}\right)",
                   numpy_helper="_step", c_helper="sg_step"),
    LeakyRelu: Spelling("_leaky_relu({0}, {1})", "sg_leaky_relu({0}, {1})", "leaky_relu({0}, {1})",
                        r"\operatorname{{leaky}}_{{{1}}}\left({0}\right)",
                        numpy_helper="_leaky_relu", c_helper="sg_leaky_relu"),
    LeakyStep: Spelling("_leaky_step({0}, {1})", "sg_leaky_step({0}, {1})", "leaky_step({0}, {1})",
                        r"\operatorname{{H}}_{{{1}}}\left({0}\right)",
                        numpy_helper="_leaky_step", c_helper="sg_leaky_step"),
    Softplus: Spelling("np.logaddexp(0, {0})", "sg_softplus({0})", "softplus({0})",
                       r"\operatorname{{softplus}}\left({0}\right)", c_helper="sg_softplus"),
    sp.tanh: Spelling("np.tanh({0})", "tanh({0})", "tanh({0})", r"\tanh\left({0}\right)"),
    sp.exp: Spelling("np.exp({0})", "exp({0})", "exp({0})", r"e^{{{0}}}"),
    sp.log: Spelling("np.log({0})", "log({0})", "log({0})", r"\log\left({0}\right)"),
    # Functions that formulas from the spec may use, and the derivatives SymPy gives for them.
    sp.Abs: Spelling("np.abs({0})", "fabs({0})", "abs({0})", r"\left|{0}\right|"),
    sp.sign: Spelling("np.sign({0})", "sg_sign({0})", "sign({0})", r"\operatorname{{sign}}\left({0}\right)",
                      c_helper="sg_sign"),
    sp.Heaviside: Spelling("np.heaviside({0}, {1})", "sg_heaviside({0}, {1})", "heaviside({0})",
                           r"\theta\left({0}\right)", c_helper="sg_heaviside"),
    sp.erf: Spelling("_erf({0})", "erf({0})", "erf({0})", r"\operatorname{{erf}}\left({0}\right)",
                     numpy_helper="_erf"),
}


#: The SymPy function behind each name a spec's formula may call (:mod:`symgrad.expression` checks them).
FORMULA_FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "tanh": sp.tanh, "sigmoid": Sigmoid,
    "softplus": Softplus, "erf": sp.erf, "max": sp.Max, "min": sp.Min,
}


def formula_expr(text: str, variables: dict[str, sp.Symbol], where: str,
                 extra: dict[str, tuple[int, Callable[..., float], Callable[..., sp.Expr]]] | None = None) -> sp.Expr:
    """A spec's formula, parsed and checked without SymPy by :mod:`symgrad.expression`, as SymPy in ``variables``.

    ``extra`` adds functions beyond the spec's whitelist: name -> (arity, float value, SymPy function).
    """
    extra = extra or {}
    functions = {**expression.FUNCTIONS, **{name: (arity, value) for name, (arity, value, _) in extra.items()}}
    builders = {**FORMULA_FUNCTIONS, **{name: build for name, (_, _, build) in extra.items()}}
    result = _sympy_of(expression.parse_formula(text, variables, where, functions).tree, variables, builders)
    if result.has(sp.I, sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise SpecError(where, f"the formula {text!r} is complex, undefined or infinite once simplified",
                        "check for division by zero, or the logarithm or square root of something negative")
    return result


def _sympy_of(node: expression.Node, variables: dict[str, sp.Symbol],
              builders: dict[str, Callable[..., sp.Expr]] = FORMULA_FUNCTIONS) -> sp.Expr:
    if isinstance(node, expression.Number):
        return sp.Integer(int(node.text)) if node.integer else sp.Float(float(node.text))
    if isinstance(node, expression.Variable):
        return variables[node.name]
    if isinstance(node, expression.Negate):
        return -_sympy_of(node.operand, variables, builders)
    if isinstance(node, expression.Call):
        return builders[node.function](*(_sympy_of(arg, variables, builders) for arg in node.args))
    return expression.OPERATORS[node.op](_sympy_of(node.left, variables, builders),
                                         _sympy_of(node.right, variables, builders))


def _identity(x: sp.Expr) -> sp.Expr:
    return x


FORMULA_X = sp.Symbol("x", real=True)
FORMULA_O, FORMULA_T = sp.symbols("o t", real=True)


def activation_function(activation: "Activation") -> Callable[[sp.Expr], sp.Expr]:
    """The elementwise activation as a SymPy function of the net input (not softmax)."""
    if activation.name == "custom":
        formula = formula_expr(activation.formula, {"x": FORMULA_X}, "activation")
        return lambda net: formula.xreplace({FORMULA_X: net})
    name, slope = activation.name, activation.slope
    table: dict[str, Callable[[sp.Expr], sp.Expr]] = {
        "sigmoid": Sigmoid,
        "tanh": sp.tanh,
        "relu": Relu,
        "leaky_relu": lambda x: LeakyRelu(x, sp.Float(slope)),
        "softplus": Softplus,
        "linear": _identity,
    }
    return table[name]


def activation_derivative(activation: "Activation", net: sp.Symbol, out: sp.Symbol) -> sp.Expr:
    """d out / d net for an elementwise activation, written through ``out`` wherever SymPy's
    derivative contains the activation itself (sigmoid: out*(1 - out); tanh: 1 - out**2)."""
    function = activation_function(activation)
    forward = function(net)
    derivative = sp.diff(forward, net)
    if forward != net:
        derivative = derivative.xreplace({forward: out})
    return derivative


def loss_term(loss: "Loss", o: sp.Expr, t: sp.Expr) -> sp.Expr:
    """One output's contribution to the per-example loss, before any averaging over outputs."""
    name = loss.name
    if name == "custom":
        formula = formula_expr(loss.formula, {"o": FORMULA_O, "t": FORMULA_T}, "$.loss.expr")
        return formula.xreplace({FORMULA_O: o, FORMULA_T: t})
    if name == "half_sse":
        return sp.Rational(1, 2) * (t - o) ** 2
    if name in ("sse", "mse"):
        return (t - o) ** 2
    if name == "cross_entropy":
        return -t * sp.log(o)
    if name == "binary_cross_entropy":
        return -(t * sp.log(o) + (1 - t) * sp.log(1 - o))
    raise KeyError(name)


def loss_output_scale(name: str, n_outputs: int) -> sp.Expr:
    """mse averages over the outputs; every other loss sums them."""
    return sp.Rational(1, n_outputs) if name == "mse" else sp.S.One


def stable_log_rewrites(activation: str, net: sp.Symbol, out: sp.Symbol,
                        log_out: sp.Symbol | None) -> dict[sp.Expr, sp.Expr]:
    """Replacements that compute a loss's logarithms from the logits instead of the outputs.

    After softmax, log(out_k) = net_k - logsumexp(net) (``log_out`` holds it); after sigmoid,
    log(out) = -softplus(-net) and log(1 - out) = -softplus(net).  Neither overflows nor takes
    log(0) when an output saturates.
    """
    if activation == "softmax" and log_out is not None:
        return {sp.log(out): log_out}
    if activation == "sigmoid":
        return {sp.log(out): -Softplus(-net), sp.log(1 - out): -Softplus(net)}
    return {}


def count_divisions(expr: sp.Expr) -> int:
    return sum(1 for node in sp.preorder_traversal(expr)
               if isinstance(node, sp.Pow) and node.exp.is_negative and not node.base.is_Number)


def simplest_product(expr: sp.Expr) -> sp.Expr:
    """Cancel a chain-rule product when that removes divisions by outputs.

    (-t/o + (1 - t)/(1 - o)) * o*(1 - o) is binary cross-entropy's delta after a sigmoid; it
    divides by 0 when the sigmoid saturates, while its cancelled form o - t never does.
    """
    if count_divisions(expr) == 0:
        return expr
    cancelled = sp.factor(sp.cancel(expr))
    if count_divisions(cancelled) < count_divisions(expr):
        return cancelled
    return expr


def softmax_jacobian(out_k: sp.Symbol, out_j: sp.Symbol, same_unit: bool) -> sp.Expr:
    """d out_k / d net_j for a softmax layer: out_k * (1 - out_j) on the diagonal, -out_k*out_j off it."""
    return out_k * ((1 if same_unit else 0) - out_j)


def penalty_term(layer: "Layer", parameter: sp.Symbol) -> sp.Expr:
    """What one parameter of ``layer`` adds to the loss: l2·p² + l1·|p| (0 when the layer has none).

    The one SymPy spelling of the penalty; its derivative is ``sp.diff(penalty_term(...), p)``.
    """
    if not (layer.l1 or layer.l2):
        return sp.S.Zero
    return sp.Float(layer.l2) * parameter ** 2 + sp.Float(layer.l1) * sp.Abs(parameter)

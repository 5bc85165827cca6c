"""Every name symgrad makes: for what a spec leaves unnamed, and for the values of generated code.

Spec names are checked against ``schema.NAME_PATTERN`` before they reach this module; the names
made here are identifiers in Python and C by construction.  k is a 1-based layer number, j a
unit and i an input (0-based); each may also be a placeholder such as ``"{j}"``, which gives the
pattern the generated modules fill in at run time.
"""

from __future__ import annotations

from typing import Literal, Union

Index = Union[int, str]

#: A unit's values in generated code and in formulas: net_h1, out_h1, delta_h1, t_o1, ...
Role = Literal["param", "input", "target", "net", "out", "delta", "log_out", "lse"]
PREFIXES: dict[str, str] = {
    "param": "p_",
    "input": "x_",
    "target": "t_",
    "net": "net_",
    "out": "out_",
    "delta": "delta_",
    "log_out": "logp_",
    "lse": "lse_",
}


def code_name(role: Role, name: str) -> str:
    """The identifier generated code uses for a spec name in a role (``("net", "h1")`` -> ``net_h1``)."""
    return PREFIXES[role] + name


def display_name(symbol: object) -> str:
    """How formulas show a symbol (or its name): parameters and inputs by their spec names, the rest as made."""
    text = str(getattr(symbol, "name", symbol))
    for role in ("param", "input"):
        prefix = PREFIXES[role]
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def input_name(i: Index) -> str:
    return f"x{i}"


def unit_name(k: Index, j: Index, is_output: bool) -> str:
    """Units of hidden layer k are h{k}_{j}; the output layer's are o{j}."""
    return f"o{j}" if is_output else f"h{k}_{j}"


def parameter_head(kind: Literal["weight", "bias"], k: Index) -> str:
    """What a generated parameter name of layer k starts with: W{k} or b{k} (the indices follow, after _)."""
    return f"W{k}" if kind == "weight" else f"b{k}"


def weight_name(k: Index, j: Index, i: Index) -> str:
    """W{k}_{j}_{i}: the weight from input i to unit j of layer k."""
    return f"{parameter_head('weight', k)}_{j}_{i}"


def bias_name(k: Index, j: Index) -> str:
    """b{k}_{j}: unit j's own bias."""
    return f"{parameter_head('bias', k)}_{j}"


def shared_bias_name(k: Index) -> str:
    """b{k}: the one bias a layer shares."""
    return parameter_head("bias", k)


def gradient_local(parameter: str) -> str:
    """The C local that sums dE/dp over the batch, for a parameter's code name (dE_p_w1)."""
    return "dE_" + parameter

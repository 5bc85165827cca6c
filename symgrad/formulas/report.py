"""The report ``python -m symgrad formulas`` prints.

Input: a spec and the options (parameters, closed form, LaTeX, values).  Output: text with
each dE/dp as chain-rule labels, formulas and (with values) numbers, or each layer's rule for
networks with more than 1000 parameters.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import sympy as sp

from ..errors import SpecError
from ..gradients import Gradients
from .chain import ChainRule, chain_rule, layer_formula_templates
from .evaluation import evaluate, point_from_spec, value_of
from .printing import MULTIPLY, format_number, grouped_text, latex_name, to_latex, to_text

def formulas_report(spec_source: Any, params: Sequence[str] | None = None, expanded: bool = False,
                    latex: bool = False, at: bool = False, values: Mapping[str, Any] | None = None,
                    digits: int = 6) -> str:
    """What ``python -m symgrad formulas`` prints: each dE/dp as labels, formulas, and values."""
    from ..gradients import differentiate
    from ..model import build_model
    from ..spec import parse_spec

    spec = parse_spec(spec_source)
    gradients = differentiate(build_model(spec))
    if params is None and spec.n_parameters > 1000:
        return _layer_report(gradients)
    names = list(params) if params else list(spec.parameter_names)
    if expanded:
        check_expanded_size(gradients, names)
    numbers = None
    lines: list[str] = []
    if at:
        point = point_from_spec(gradients, values)
        numbers = evaluate(gradients, point)
        shown = ", ".join(format_number(v, digits) for v in point.inputs)
        wanted = ", ".join(format_number(v, digits) for v in point.targets)
        lines.append(f"# values at inputs [{shown}], targets [{wanted}]; E = "
                     f"{format_number(numbers[sp.Symbol('E', real=True)], digits)} for this example")
    for name in names:
        chain = chain_rule(gradients, name)
        lines += _latex_chain(chain, gradients, expanded) if latex else \
            _text_chain(chain, gradients, expanded, numbers, digits)
    return "\n".join(lines) + "\n"


#: The closed forms grow exponentially with depth: at most this many operations each, and in all.
MAX_EXPANDED_OPERATIONS = 25_000
MAX_EXPANDED_TOTAL = 250_000


def expanded_size(expr: sp.Expr, substitutions: Mapping[sp.Symbol, sp.Expr]) -> int:
    """How many operations ``expr`` has once every intermediate is substituted away (counted, not built)."""
    sizes: dict[sp.Expr, int] = {}
    stack = [expr]
    while stack:  # post-order without recursion: deep networks make deep expressions
        node = stack[-1]
        parts = (substitutions[node],) if node in substitutions else node.args
        missing = [part for part in parts if part not in sizes]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        sizes[node] = sizes[parts[0]] if node in substitutions else 1 + sum(sizes[part] for part in parts)
    return sizes[expr]


def check_expanded_size(gradients: Gradients, names: Sequence[str]) -> None:
    """Refuse ``--expanded`` when the closed forms would take minutes to build and megabytes to print."""
    substitutions = gradients.substitutions()
    total = 0
    for name in names:
        size = expanded_size(chain_rule(gradients, name).total, substitutions)
        if size > MAX_EXPANDED_OPERATIONS:
            raise SpecError("--expanded", f"the closed form of dE/d{name} would have about {size} operations, more "
                            f"than {MAX_EXPANDED_OPERATIONS} (it grows exponentially with the network's depth)",
                            "drop --expanded (the chain-rule form says the same), or choose parameters nearer "
                            "the output with --param")
        total += size
    if total > MAX_EXPANDED_TOTAL:
        raise SpecError("--expanded", f"the closed forms of {len(names)} parameters would have about {total} "
                        f"operations in all, more than {MAX_EXPANDED_TOTAL}",
                        "choose a few parameters with --param, or drop --expanded")


def _text_chain(chain: ChainRule, gradients: Gradients, expanded: bool,
                numbers: Mapping[sp.Symbol, float] | None, digits: int) -> list[str]:
    head = f"dE/d{chain.parameter} = "
    pad = " " * (len(head) - 2) + "= "
    lines = [head + chain.labels(), pad + chain.formulas()]
    if numbers is not None:
        shown = " + ".join(MULTIPLY.join(format_number(value_of(f.expr, numbers), digits) for f in path.factors)
                           for path in chain.paths)
        if chain.penalty:
            shown += " + " + format_number(value_of(chain.penalty.expr, numbers), digits)
        lines.append(pad + shown)
        lines.append(pad + format_number(value_of(chain.total, numbers), digits))
    for upstream in chain.upstream:
        head = f"  where {upstream.factor.label} = "
        pad = " " * (len(head) - 2) + "= "
        lines.append(head + " + ".join(f"{a.label} * {b.label}" for a, b in upstream.terms))
        lines.append(pad + " + ".join(f"{grouped_text(a.expr)} * {grouped_text(b.expr)}" for a, b in upstream.terms))
        if numbers is not None:
            lines.append(pad + " + ".join(f"{format_number(value_of(a.expr, numbers), digits)} * "
                                          f"{format_number(value_of(b.expr, numbers), digits)}"
                                          for a, b in upstream.terms))
            lines.append(pad + format_number(value_of(upstream.factor.expr, numbers), digits))
    if expanded:
        lines.append(f"  closed form: dE/d{chain.parameter} = {to_text(gradients.closed_form(chain.total))}")
    return lines


def _latex_chain(chain: ChainRule, gradients: Gradients, expanded: bool) -> list[str]:
    lines = [f"$$ {chain.latex()} $$"]
    for upstream in chain.upstream:
        terms = " + ".join(f"{a.latex_label} {b.latex_label}" for a, b in upstream.terms)
        lines.append(f"$$ {upstream.factor.latex_label} = {terms} = {to_latex(upstream.factor.expr)} $$")
    if expanded:
        closed = to_latex(gradients.closed_form(chain.total))
        lines.append(rf"$$ \frac{{\partial E}}{{\partial {latex_name(chain.parameter)}}} = {closed} $$")
    return lines


def _layer_report(gradients: Gradients) -> str:
    spec = gradients.model.spec
    lines = [f"# {spec.name} has {spec.n_parameters} parameters: the rule of each layer "
             "(ask for single parameters with --param NAME)"]
    for k, template in enumerate(layer_formula_templates(gradients), start=1):
        lines.append(f"layer {k} ({spec.layers[k - 1].activation.describe()}, {len(template['units'])} units):")
        lines.append("  " + template["delta"].format(u="u"))
        lines.append("  " + template["weight"].format(p=f"W{k}[u,i]", u="u", x="in_i"))
        lines.append("  " + template["bias"].format(p=f"b{k}[u]", u="u"))
    return "\n".join(lines) + "\n"


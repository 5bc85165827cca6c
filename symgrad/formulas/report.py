"""The report ``python -m symgrad formulas`` prints.

Input: a spec and the options (parameters, closed form, LaTeX, values).  Output: text with
each dE/dp as chain-rule labels, formulas and (with values) numbers, or each layer's rule for
networks with more than 1000 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import sympy as sp

from ..errors import SpecError
from ..gradients import Gradients
from ..optimizers import Optimizer
from .chain import ChainRule, Upstream, chain_rule, layer_formula_templates
from .evaluation import evaluate, points_from_spec, reduce_examples, value_of
from .printing import MULTIPLY, format_number, grouped_text, latex_name, tex_number, to_latex, to_text


def formulas_report(gradients: Gradients, params: Sequence[str] | None = None, expanded: bool = False,
                    latex: bool = False, at: bool = False, values: Mapping[str, Any] | None = None,
                    digits: int = 6) -> str:
    """What ``python -m symgrad formulas`` prints: each dE/dp as labels, formulas, and values.

    It takes the derivatives (``pipeline.analyze(spec).gradients``), so the inspection stage does
    not call back into the driver."""
    spec = gradients.model.spec
    if params is None and spec.n_parameters > 1000:
        return _layer_report(gradients, [option for option, given in (("--at", at), ("--expanded", expanded),
                                                                      ("--latex", latex)) if given])
    names = list(params) if params else list(spec.parameter_names)
    if expanded:
        check_expanded_size(gradients, names)
    examples = None
    lines: list[str] = []
    if at:
        points = points_from_spec(gradients, values)
        examples = [evaluate(gradients, point) for point in points]
        errors = [numbers[ERROR_SYMBOL] for numbers in examples]
        if len(points) == 1:
            shown = ", ".join(format_number(v, digits) for v in points[0].inputs)
            wanted = ", ".join(format_number(v, digits) for v in points[0].targets)
            lines.append(f"# values at inputs [{shown}], targets [{wanted}]; E = "
                         f"{format_number(errors[0], digits)} for this example")
        else:
            lines.append(f"# values at each of the spec's {len(points)} examples, marked (example k); "
                         f"E = {format_number(reduce_examples(errors, spec.loss.reduction), digits)}, the "
                         f"{spec.loss.reduction} of {', '.join(format_number(e, digits) for e in errors)}; "
                         f"each dE/dp below is the {spec.loss.reduction} of its per-example values")
    at_examples = _AtExamples(examples, spec.loss.reduction, _LATEX if latex else _TEXT, digits) if examples else None
    for name in names:
        chain = chain_rule(gradients, name)
        lines += (_latex_chain if latex else _text_chain)(chain, gradients, expanded, at_examples)
    return "\n".join(lines + _schedule_lines(spec.optimizer, latex, digits)) + "\n"


def _schedule_lines(optimizer: Optimizer, latex: bool, digits: int) -> list[str]:
    """The learning rate each epoch's steps use, when the spec has a schedule (as a comment after the formulas)."""
    schedule = optimizer.schedule
    if schedule is None:
        return []
    rates = ", ".join(format_number(optimizer.rate(e), digits) for e in range(SHOWN_EPOCHS))
    mark, formula = "%" if latex else "#", schedule.formula(repr(optimizer.learning_rate))
    return [f"{mark} each step of epoch e (from 0) uses the learning rate {formula}"
            f": {schedule.describe()}, stepped once per epoch of train",
            f"{mark} epochs 0 to {SHOWN_EPOCHS - 1}: {rates}"]


ERROR_SYMBOL = sp.Symbol("E", real=True)


@dataclass(frozen=True)
class _Style:
    """How numbers under a formula are written: text lines under its '=', or LaTeX equations."""

    latex: bool
    times: str
    tag: str  # which example a line is for, a format string in {k}

    def number(self, text: str) -> str:
        if not self.latex:
            return text
        return tex_number(text) if not text.startswith("-") else rf"\left({tex_number(text)}\right)"

    def text(self, words: str) -> str:
        return rf"\text{{{words}}}" if self.latex else words

    def lines(self, head: str, shown: str, value: str) -> list[str]:
        """``head = shown = value``: under a text head two lines, in LaTeX one equation."""
        if self.latex:
            return [f"$$ {head} = {shown} = {value} $$"]
        pad = " " * (len(head) - 2) + "= "
        return [pad + shown, pad + value]

    def line(self, head: str, shown: str, value: str) -> str:
        """``head = shown = value`` on one line."""
        return self.lines(head, shown, value)[0] if self.latex else " " * (len(head) - 2) + f"= {shown} = {value}"


_TEXT = _Style(False, MULTIPLY, "  (example {k})")
_LATEX = _Style(True, r" \cdot ", r" \quad \text{{(example {k})}}")


@dataclass(frozen=True)
class _AtExamples:
    """The values of every symbol at each example, and how to show them under a chain."""

    examples: Sequence[Mapping[sp.Symbol, float]]
    reduction: str
    style: _Style
    digits: int

    def number(self, value: float) -> str:
        return self.style.number(format_number(value, self.digits))

    def tag(self, k: int) -> str:
        return self.style.tag.format(k=k) if len(self.examples) > 1 else ""

    def chain(self, chain: ChainRule, head: str) -> list[str]:
        """The chain's factors and its value at each example, then (several examples) their reduction."""
        style, several = self.style, len(self.examples) > 1
        lines, totals = [], []
        for k, numbers in enumerate(self.examples, start=1):
            shown = " + ".join(style.times.join(self.number(value_of(f.expr, numbers)) for f in path.factors)
                               for path in chain.paths)
            if chain.penalty and not several:
                shown += " + " + self.number(value_of(chain.penalty.expr, numbers))
            paths = chain.total - chain.penalty.expr if chain.penalty and several else chain.total
            totals.append(value_of(paths, numbers))
            lines += style.lines(head, shown, self.number(totals[-1]) + self.tag(k))
        if several:
            batch = reduce_examples(totals, self.reduction)
            text = f"the {self.reduction} over the {len(self.examples)} examples"
            if chain.penalty:
                penalty = value_of(chain.penalty.expr, self.examples[0])
                text += f" + {self.number(penalty)} (the penalty's derivative)"
                batch += penalty
            lines.append(style.line(head, style.text(text), self.number(batch)))
        return lines

    def upstream(self, upstream: Upstream, head: str) -> list[str]:
        """An upstream sum's terms and value at each example."""
        lines = []
        for k, numbers in enumerate(self.examples, start=1):
            shown = " + ".join(f"{self.number(value_of(a.expr, numbers))}{self.style.times}"
                               f"{self.number(value_of(b.expr, numbers))}" for a, b in upstream.terms)
            lines += self.style.lines(head, shown, self.number(value_of(upstream.factor.expr, numbers)) + self.tag(k))
        return lines


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


def _text_chain(chain: ChainRule, gradients: Gradients, expanded: bool, at: _AtExamples | None) -> list[str]:
    head = f"dE/d{chain.parameter} = "
    pad = " " * (len(head) - 2) + "= "
    lines = [head + chain.labels(), pad + chain.formulas()] + (at.chain(chain, head) if at else [])
    for upstream in chain.upstream:
        head = f"  where {upstream.factor.label} = "
        pad = " " * (len(head) - 2) + "= "
        lines.append(head + " + ".join(f"{a.label} * {b.label}" for a, b in upstream.terms))
        lines.append(pad + " + ".join(f"{grouped_text(a.expr)} * {grouped_text(b.expr)}" for a, b in upstream.terms))
        lines += at.upstream(upstream, head) if at else []
    if expanded:
        lines.append(f"  closed form: dE/d{chain.parameter} = {to_text(gradients.closed_form(chain.total))}")
    return lines


def _latex_chain(chain: ChainRule, gradients: Gradients, expanded: bool, at: _AtExamples | None) -> list[str]:
    head = rf"\frac{{\partial E}}{{\partial {latex_name(chain.parameter)}}}"
    lines = [f"$$ {chain.latex()} $$"] + (at.chain(chain, head) if at else [])
    for upstream in chain.upstream:
        terms = " + ".join(f"{a.latex_label} {b.latex_label}" for a, b in upstream.terms)
        lines.append(f"$$ {upstream.factor.latex_label} = {terms} = {to_latex(upstream.factor.expr)} $$")
        lines += at.upstream(upstream, upstream.factor.latex_label) if at else []
    if expanded:
        lines.append(f"$$ {head} = {to_latex(gradients.closed_form(chain.total))} $$")
    return lines


#: How many epochs' learning rates formulas lists for a schedule.
SHOWN_EPOCHS = 5


def _layer_report(gradients: Gradients, ignored: Sequence[str] = ()) -> str:
    spec = gradients.model.spec
    lines = [f"# {spec.name} has {spec.n_parameters} parameters: the rule of each layer "
             "(ask for single parameters with --param NAME)"]
    if ignored:
        lines.append(f"# {', '.join(ignored)} apply to single parameters: add --param NAME to use them")
    for k, template in enumerate(layer_formula_templates(gradients), start=1):
        lines.append(f"layer {k} ({spec.layers[k - 1].activation.describe()}, {len(template['units'])} units):")
        lines.append("  " + template["delta"].format(u="u"))
        lines.append("  " + template["weight"].format(p=f"W{k}[u,i]", u="u", x="in_i"))
        lines.append("  " + template["bias"].format(p=f"b{k}[u]", u="u"))
    return "\n".join(lines + _schedule_lines(spec.optimizer, False, 6)) + "\n"


"""What both emitters take from a Program: its names and assignment blocks, the output layer's rules,
and the provenance header of every generated file."""

from __future__ import annotations

from typing import Any, Iterable

from ..program import Block, Program, ScalarProgram
from ..rules import LOGP
from ..version import __version__


def assignment_lines(blocks: Iterable[Block], printer: Any) -> list[dict[str, Any]]:
    """Blocks of assignments as the templates lay them out: a title, then target = expr  # comment."""
    return [{"title": block.title,
             "lines": [{"target": printer.doprint(a.target), "expr": printer.doprint(a.expr), "comment": a.comment}
                       for a in block.assignments]}
            for block in blocks]


def scalar_names(program: ScalarProgram, printer: Any) -> dict[str, Any]:
    """What every backend's template needs of a scalar program: its names and assignment blocks."""
    return {
        "parameters": [printer.doprint(p) for p in program.parameters],
        "inputs": [printer.doprint(s) for s in program.inputs],
        "targets": [printer.doprint(s) for s in program.targets],
        "forward": assignment_lines(program.forward, printer),
        "outputs": [printer.doprint(s) for s in program.outputs],
        "loss": printer.doprint(program.loss.expr),
        "backward": assignment_lines(program.backward, printer),
    }


def output_rules(rule: Any, printer: Any) -> dict[str, Any]:
    """An output layer's loss and delta rules as the templates need them (empty for hidden layers)."""
    if rule.loss is None:
        return {}
    return {
        "loss": printer.doprint(rule.loss),
        "needs_logp": LOGP in rule.loss.free_symbols,
        "delta": printer.doprint(rule.delta) if rule.delta is not None else None,
        "softmax_h": printer.doprint(rule.softmax_h) if rule.softmax_h is not None else None,
    }


def provenance(program: Program) -> dict[str, object]:
    """What every generated file's header says about where it came from."""
    spec = program.spec
    return {
        "version": __version__,
        "spec_name": spec.name,
        "spec_hash": spec.source_hash,
        "sizes": "-".join(str(n) for n in [spec.n_inputs] + [layer.n_out for layer in spec.layers]),
        "n_parameters": spec.n_parameters,
        "form": program.form,
        "op_counts": ", ".join(f"{k} {v}" for k, v in program.op_counts.items()),
    }

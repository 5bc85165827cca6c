"""Stage 5: a :class:`Program` -> the files of a generated package, through Jinja2 templates.

Each backend is a subpackage holding its emitter and, beside it, the templates it fills.  An
emitter prints SymPy expressions with a printer of its own and lays them out with a template;
generated text is never assembled from strings scattered through the compiler.  Everything
here is deterministic: the same program gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import jinja2

import numpy as np

from ..version import __version__
from ..errors import InternalError
from ..rules import LOGP
from ..program import Block, Program, ScalarProgram, preferred_backends


def template_environment(folder: Path) -> jinja2.Environment:
    """The one strict Jinja configuration every emitter uses."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["py"] = _python_literal
    return environment


def _python_literal(value: object) -> str:
    """A str or number as a Python literal (what ``repr`` gives is valid source for these)."""
    if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
        return repr(value)
    if not isinstance(value, (str, int, float)):
        raise TypeError(f"no Python literal for {type(value).__name__}")
    return repr(value)


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


def emit_package(program: Program, initial: np.ndarray, backends: tuple[str, ...] = ("numpy",)) -> dict[str, bytes]:
    """Every file of the package ``<name>/`` for the given backends: relative path -> content.

    ``program`` must have gone through :func:`symgrad.program.complete` (formula texts, C form).
    """
    from .c import emit_c
    from .numpy import emit_numpy

    if program.formulas is None or program.c_form is None:
        raise InternalError("emit_package needs a program from symgrad.program.complete(program, gradients)")
    files: dict[str, bytes] = {}
    if "numpy" in backends or "c" in backends:  # the C module re-exports the NumPy module's constants
        files.update(emit_numpy(program, initial))
    if "c" in backends:
        files.update(emit_c(program.c_form, initial))
    environment = template_environment(Path(__file__).parent)
    init = environment.get_template("package_init.py.jinja").render(
        meta=provenance(program), backends=preferred_backends(program, backends))
    files["__init__.py"] = init.encode()
    return files

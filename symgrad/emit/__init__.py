"""Stage 5: a :class:`Program` -> the files of a generated package, through Jinja2 templates.

Each backend is a subpackage holding its emitter and, beside it, the templates it fills.  An
emitter prints SymPy expressions with a printer of its own and lays them out with a template;
generated text is never assembled from strings scattered through the compiler.  Everything
here is deterministic: the same program gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InternalError
from ..program import Program, auto_policy
from ..templates import template_environment
from .common import provenance


def emit_package(program: Program, initial: np.ndarray, backends: tuple[str, ...] = ("numpy",)) -> dict[str, bytes]:
    """Every file of the package ``<name>/`` for the given backends: relative path -> content.

    ``program`` must have gone through :func:`symgrad.program.complete` (formula texts, C form).
    """
    from .c import emit_c
    from .numpy import emit_numpy

    if program.formulas is None or program.c_form is None:
        raise InternalError("emit_package needs a program from symgrad.program.complete (the driver attaches FORMULAS)")
    files: dict[str, bytes] = {}
    if "numpy" in backends or "c" in backends:  # the C module re-exports the NumPy module's constants
        files.update(emit_numpy(program, initial))
    if "c" in backends:
        files.update(emit_c(program.c_form, initial))
    environment = template_environment(Path(__file__).parent)
    order, numpy_from_rows = auto_policy(program, backends)
    if "auto" in order:  # C for small batches, NumPy for large ones: a module that chooses per call
        files["auto_backend.py"] = environment.get_template("auto_backend.py.jinja").render(
            meta=provenance(program), numpy_from_rows=numpy_from_rows, spec=program.spec).encode()
    init = environment.get_template("package_init.py.jinja").render(meta=provenance(program), backends=order)
    files["__init__.py"] = init.encode()
    return files

"""symgrad: a symbolic-to-code gradient compiler.

A JSON network spec becomes SymPy expressions for the loss; SymPy differentiates them with
respect to every weight and bias; the derivatives are emitted as generated NumPy (and C) code
for the training step.  The pipeline's stages are public and each returns an immutable value::

    spec = parse_spec("mazur.json")        # Spec
    model = build_model(spec)              # Model: named symbols per unit
    gradients = differentiate(model)       # Gradients: dE/dp by the chain rule
    program = optimize(gradients)          # Program: CSE'd assignments or layer rules
    program = complete(program, gradients) # + formula texts and the C form (symgrad.program)
    files = emit_package(program, initial) # {path: bytes}, through Jinja2 templates

The modules are named after what each stage produces (spec, model, gradients, program, emit,
builder, loader); ``pipeline`` is the driver that runs them in order: ``analyze`` up to the
derivatives, ``build`` up to a package (written or reused), ``load`` up to its module.
"""

from .version import __version__
from .errors import BuildError, DataError, InternalError, SpecError, SymgradError, SymgradWarning
from .spec import Spec, parse_spec


_LAZY = {  # public name -> module; these import SymPy, which a cache hit never needs
    "build_model": "model",
    "differentiate": "gradients",
    "optimize": "program",
    "emit_package": "emit",
    "analyze": "pipeline",
    "build": "pipeline",
    "BuildResult": "builder",
    "load": "pipeline",
    "chain_rule": "formulas",
    "formula_texts": "formulas",
    "evaluate": "formulas",
    "point_from_spec": "formulas",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'symgrad' has no attribute {name!r}")


__all__ = [
    "__version__", "BuildError", "DataError", "InternalError", "SpecError", "SymgradError", "SymgradWarning", "Spec",
    "parse_spec", "build_model", "differentiate", "optimize", "emit_package", "analyze", "build", "load",
    "BuildResult", "chain_rule", "formula_texts", "evaluate", "point_from_spec",
]

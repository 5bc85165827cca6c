"""The driver: each command's way through the stages, one stage a line.

    parse -> model -> differentiate -> optimize -> emit -> build -> load

:func:`analyze` stops after differentiate (what ``formulas``, ``explain`` and ``check``
inspect), :func:`build` after build (the ``build`` command), :func:`load` goes all the way
(``symgrad.load``, ``train``).  A cache hit skips every stage before build: it never parses the
spec, so it needs neither SymPy nor Jinja2.  This module is the one place the stages are called
in order; everything else calls it.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import builder, loader
from .builder import BuildResult
from .errors import BuildError, SymgradWarning
from .spec import Spec, parse_spec

if TYPE_CHECKING:
    from .gradients import Gradients
    from .model import Model
    from .program import Formulas, Program

Source = Spec | str | Path | dict[str, Any]


@dataclass(frozen=True)
class Analysis:
    """The stage values up to the derivatives: what the inspecting commands need."""
    spec: Spec
    model: "Model"
    gradients: "Gradients"


_ANALYSES: OrderedDict[str, Analysis] = OrderedDict()
_ANALYSES_KEPT = 4


def analyze(source: Source, max_parameters: int | None = None) -> Analysis:
    """parse -> model -> differentiate, remembered for the last few specs of this process."""
    from .gradients import differentiate
    from .model import build_model

    spec = source if isinstance(source, Spec) else parse_spec(source, max_parameters)
    if spec.source_hash not in _ANALYSES:
        model = build_model(spec)
        gradients = differentiate(model)
        _ANALYSES[spec.source_hash] = Analysis(spec, model, gradients)
        while len(_ANALYSES) > _ANALYSES_KEPT:
            _ANALYSES.popitem(last=False)
    _ANALYSES.move_to_end(spec.source_hash)
    return _ANALYSES[spec.source_hash]


def build(source: Source, out: str | Path | None = None, backend: str = "all", form: str = "auto",
          max_parameters: int | None = None) -> BuildResult:
    """parse -> ... -> build: the package of ``source`` in ``out/<name>/`` (or only in the cache).

    Networks over ``max_parameters`` (default ``symgrad.spec.default_max_parameters()``) are refused,
    on a cache hit too.
    """
    started = time.perf_counter()
    request = builder.request(source, backend, form, max_parameters)
    manifest = builder.cached(request)
    hit = manifest is not None
    if manifest is None:
        spec = request.spec or parse_spec(request.document, max_parameters)
        request, manifest = _generate(request, spec)
    return builder.publish(request, manifest, out, hit, started)


def _generate(request: builder.Request, spec: Spec) -> tuple[builder.Request, dict[str, Any]]:
    """model -> differentiate -> optimize -> emit -> build; with ``--backend all``, NumPy alone
    (and a one-line warning) when the C build fails."""
    gradients = analyze(spec).gradients
    program = lower(gradients, request.form)
    try:
        return request, _emit_and_store(request, spec, program)
    except BuildError as error:
        if not request.fallback:
            raise
        warnings.warn(SymgradWarning(f"building {spec.name} without the C backend, whose build failed: "
                                     f"{str(error).splitlines()[0]} (build with --backend c for the whole message)"),
                      stacklevel=4)
        request = request.without_c()
        return request, builder.cached(request) or _emit_and_store(request, spec, program)


def lower(gradients: "Gradients", form: str = "auto") -> "Program":
    """differentiate -> optimize: the completed Program the emitters print (FORMULAS and C form attached)."""
    from .program import complete, optimize

    program = optimize(gradients, form)
    return complete(program, gradients, _formulas(program, gradients))


def _formulas(program: "Program", gradients: "Gradients") -> "Formulas":
    """The FORMULAS the generated module carries: every dE/dp's chain rule as text, or per-layer
    templates that the module fills in on demand for a network printed as layer loops."""
    from .formulas import formula_texts, layer_formula_templates
    from .program import Formulas, formula_kind

    if formula_kind(program) == "table":
        return Formulas("table", texts=tuple(formula_texts(gradients).items()))
    return Formulas("layers", layers=tuple(layer_formula_templates(gradients)))


def _emit_and_store(request: builder.Request, spec: Spec, program: "Program") -> dict[str, Any]:
    """emit -> build: the package's sources, compiled where needed and stored in the cache."""
    from .emit import emit_package
    from .initialize import initial_parameters

    sources = emit_package(program, initial_parameters(spec), request.backends)
    return builder.store(request, spec, program.form, sources)


def load(source: Source, backend: str = "auto", out: str | Path | None = None, form: str = "auto",
         max_parameters: int | None = None) -> ModuleType:
    """parse -> ... -> build -> load: the generated module of ``source`` for ``backend``.

    ``auto`` (or ``all``) builds every backend this machine can build and returns the fastest.
    The module is imported from the cache entry of this very build (``out``, when given, gets
    a copy), so a rebuild or a concurrent build of another spec of the same name never changes
    what was loaded.
    """
    return build_and_load(source, backend, out, form, max_parameters)[1]


def build_and_load(source: Source, backend: str = "auto", out: str | Path | None = None, form: str = "auto",
                   max_parameters: int | None = None) -> tuple[BuildResult, ModuleType]:
    """:func:`load`, also returning the build's result (what ``train`` reports)."""
    backend = loader.backend_to_load(backend)
    result = build(source, out, "all" if backend == "auto" else backend, form, max_parameters)
    return result, loader.import_backend(result.cache_dir, backend)

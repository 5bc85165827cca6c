"""Stage 7 (load): import a generated package without touching ``sys.path``.

Each package is imported under a private module name derived from its folder and build key,
so two builds of specs with the same name, or two builds of one spec, never collide, and the
same build is imported once per process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .builder import MANIFEST, build
from .errors import BuildError
from .spec import Spec


def import_package(package_dir: Path) -> ModuleType:
    """The package in ``package_dir`` as a module (its ``__init__`` picks the fastest backend)."""
    package_dir = Path(package_dir).resolve()
    try:
        key = (package_dir / MANIFEST).read_bytes()
    except OSError:
        key = b""
    token = hashlib.sha256(str(package_dir).encode() + b"\0" + key).hexdigest()[:16]
    module_name = f"_symgrad_generated_{package_dir.name}_{token}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    init = package_dir / "__init__.py"
    spec = importlib.util.spec_from_file_location(module_name, init, submodule_search_locations=[str(package_dir)])
    if spec is None or spec.loader is None or not init.is_file():
        raise BuildError(f"{package_dir} holds no generated package (no __init__.py); rebuild it")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def import_backend(package_dir: Path, backend: str = "auto") -> ModuleType:
    """One backend's module of a generated package; ``auto`` is the one the package prefers."""
    package = import_package(package_dir)
    chosen = package.BACKEND if backend == "auto" else backend
    try:
        return importlib.import_module(f"{package.__name__}.{chosen}_backend")
    except ImportError as error:
        raise BuildError(f"the {chosen} backend of {package_dir} cannot be imported: {error}") from None


def load(spec: Spec | str | Path | dict[str, Any], backend: str = "auto", out: str | Path | None = None,
         form: str = "auto", max_parameters: int | None = None) -> ModuleType:
    """Build (cached) and import the generated module of ``spec`` for ``backend``.

    With ``out=None`` the package lives in the user's cache directory (``$SYMGRAD_CACHE`` when
    set), never in the current directory.
    """
    if backend not in ("auto", "numpy", "c"):
        from .errors import SpecError

        raise SpecError("backend", f'"{backend}" is not a backend to load', "use auto, numpy or c")
    result = build(spec, out=out, backend="all" if backend == "auto" else backend, form=form,
                   max_parameters=max_parameters)
    return import_backend(result.package_dir, backend)

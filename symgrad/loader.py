"""Stage 7 (load): import a generated package without touching ``sys.path``.

Each package is imported under a private module name derived from its folder and build key,
so two builds of specs with the same name, or two builds of one spec, never collide, and the
same build is imported once per process.  A compiled extension cannot be loaded twice from one
path in a process (the second ``dlopen`` returns the first library), which is why
``symgrad.load`` imports the build's own cache entry, a folder that never changes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from .builder import MANIFEST
from .errors import BuildError, SpecError

LOADABLE = ("auto", "numpy", "c")


def backend_to_load(backend: str) -> str:
    """``backend`` checked: auto, numpy or c (``all`` means auto: every backend built, the fastest loaded)."""
    if backend == "all":
        return "auto"
    if backend not in LOADABLE:
        raise SpecError("--backend", f'"{backend}" is not a backend to load', "use auto, numpy or c")
    return backend


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
    """One backend's module of a generated package; ``auto`` is the one the package prefers, which
    may be its ``auto_backend`` (BACKEND "auto": C or NumPy chosen per call by the batch's rows)."""
    backend = backend_to_load(backend)
    package = import_package(package_dir)
    chosen = package.BACKEND if backend == "auto" else backend
    built = _built_backends(Path(package_dir))
    if built is not None and chosen != "auto" and chosen not in built:
        raise BuildError(f"{package_dir} was built without the {chosen} backend (it has: {', '.join(built)}); "
                         f"build it with --backend {chosen}, or load --backend auto")
    try:
        return importlib.import_module(f"{package.__name__}.{chosen}_backend")
    except ImportError as error:
        reason = str(error).replace(package.__name__, package_dir.name)  # not the private module name
        raise BuildError(f"the {chosen} backend of {package_dir} cannot be imported ({reason}); "
                         "rebuild the package") from None


def _built_backends(package_dir: Path) -> list[str] | None:
    """The backends the manifest lists, or None for a package without one (e.g. a committed copy)."""
    try:
        backends = json.loads((package_dir / MANIFEST).read_text()).get("backends")
    except (OSError, ValueError, AttributeError):
        return None
    return [b for b in backends if isinstance(b, str)] if isinstance(backends, list) else None

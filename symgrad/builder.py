"""Stage 6 (build): run the pipeline and write the generated package, atomically and cached.

The driver :func:`generate` reads as the stages.  :func:`build` puts its files either in a
directory the user names (``generated/<name>/``: each file replaced atomically, a manifest
written last) or in the user's cache, where every build lives in a folder named by its key and
appears there by one atomic rename, so concurrent builds of one spec need no lock.

The key covers the spec's canonical JSON, symgrad's version and a digest of symgrad's own
sources and templates, the backends and the form: a rebuild of an unchanged spec is a cache
hit, and any change to the generator invalidates old entries.  A cache hit imports neither
SymPy nor Jinja2.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .errors import BuildError, SpecError
from .schema import NAME_PATTERN
from .spec import Spec, document_hash, parse_spec, read_document

MANIFEST = "symgrad-build.json"
BACKENDS = ("numpy", "c")
FORMS = ("auto", "scalar", "vector")


@dataclass(frozen=True)
class BuildResult:
    package_dir: Path
    backends: tuple[str, ...]
    form: str
    key: str
    cache_hit: bool
    seconds: float
    files: tuple[str, ...]

    def __str__(self) -> str:
        what = f"{', '.join(self.backends)} backend{'s' if len(self.backends) > 1 else ''}, {self.form} form"
        if self.cache_hit:
            return f"{self.package_dir} is up to date ({what}; cache hit, {self.seconds:.2f} s)"
        return f"built {self.package_dir} ({what}) in {self.seconds:.2f} s"


def generate(spec: Spec, backends: tuple[str, ...] = ("numpy",), form: str = "auto") -> tuple[str, dict[str, bytes]]:
    """spec -> model -> gradients -> program -> files: the whole pipeline, one stage a line."""
    from .emit import emit_package
    from .gradients import differentiate
    from .initialize import initial_parameters
    from .model import build_model
    from .program import complete, optimize

    model = build_model(spec)
    gradients = differentiate(model)
    program = complete(optimize(gradients, form), gradients)
    initial = initial_parameters(spec)
    try:
        files = emit_package(program, initial, backends)
        if "c" in backends:
            from .compiler import compile_package
            files.update(compile_package(files, spec.name, cache_root()))
    except BuildError as error:
        if "c" not in backends or backends == ("c",):
            raise
        # --backend all: C where it works, with a warning where it does not
        warnings.warn(f"symgrad: building {spec.name} without the C backend: {error}", stacklevel=3)
        files = emit_package(program, initial, tuple(b for b in backends if b != "c"))
    return program.form, files


_NOT_GENERATORS = frozenset({"explain", "cli.py", "training.py", "__main__.py"})


@lru_cache(maxsize=1)
def generator_digest() -> str:
    """A digest of symgrad's own sources and templates: part of every cache key."""
    root = Path(__file__).parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in _NOT_GENERATORS:  # they never touch what a build writes
            continue
        if path.suffix in (".py", ".jinja") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_key(source_hash: str, backends: tuple[str, ...], form: str) -> str:
    toolchain = None
    if "c" in backends:  # a compiled extension is only valid for its compiler and Python ABI
        from .compiler import toolchain_fingerprint
        toolchain = toolchain_fingerprint()
    material = json.dumps({"spec": source_hash, "generator": generator_digest(),
                           "backends": list(backends), "form": form, "toolchain": toolchain}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def resolve_backends(backend: str) -> tuple[str, ...]:
    """The backends to build: ``all``/``auto`` is every backend this machine can build (C only
    with a working compiler, else a warning); ``c`` without a compiler is a BuildError."""
    from .compiler import unavailable_reason

    if backend in ("all", "auto"):
        reason = unavailable_reason()
        if reason is None:
            return BACKENDS
        warnings.warn(f"symgrad: building without the C backend: {reason}", stacklevel=3)
        return tuple(b for b in BACKENDS if b != "c")
    if backend not in BACKENDS:
        raise SpecError("--backend", f'"{backend}" is not an available backend',
                        "use one of: " + ", ".join(BACKENDS + ("all",)))
    if backend == "c":
        reason = unavailable_reason()
        if reason is not None:
            raise BuildError(f"cannot build the C backend: {reason}; or build with --backend numpy")
    return (backend,)


def cache_root() -> Path:
    """``$SYMGRAD_CACHE``, else the platform's cache folder (never the current directory)."""
    configured = os.environ.get("SYMGRAD_CACHE")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "symgrad"


def build(spec: Spec | str | Path | dict[str, Any], out: str | Path | None = None, backend: str = "all",
          form: str = "auto", max_parameters: int | None = None) -> BuildResult:
    """Generate the package for ``spec`` into ``out/<name>/`` (or the cache when ``out`` is None).

    Networks over ``max_parameters`` (default ``symgrad.spec.default_max_parameters()``) are refused.

    A cache hit is recognised from the document's hash alone, before the spec is resolved: a
    document that was built before was valid then, and its key says nothing has changed since.
    """
    started = time.perf_counter()
    if form not in FORMS:
        raise SpecError("--form", f'"{form}" is not a form', "use auto, scalar or vector")
    backends = resolve_backends(backend)
    if isinstance(spec, Spec):
        name, source_hash = spec.name, spec.source_hash
    else:
        document = read_document(spec)
        name, source_hash = document.get("name"), document_hash(document)
        if not (isinstance(name, str) and re.match(NAME_PATTERN, name)):
            spec = parse_spec(document, max_parameters)  # reports what is wrong with the name
    key = build_key(source_hash, backends, form)
    package_dir = (cache_root() / "packages" / key[:32] if out is None else Path(out)) / name
    manifest = _valid_manifest(package_dir, key)
    hit = manifest is not None
    if manifest is None:
        spec = spec if isinstance(spec, Spec) else parse_spec(document, max_parameters)
        if out is None:
            manifest = _build_in_cache(spec, backends, form, key, package_dir)
        else:
            manifest = _build_in_directory(spec, backends, form, key, package_dir)
    return BuildResult(package_dir, tuple(manifest["backends"]), manifest["form"], key, hit,
                       time.perf_counter() - started, tuple(sorted(manifest["files"])))


def _valid_manifest(package_dir: Path, key: str) -> dict[str, Any] | None:
    """The manifest when it matches ``key`` and every file it lists is intact, else None."""
    try:
        manifest = json.loads((package_dir / MANIFEST).read_text())
        if manifest.get("key") != key:
            return None
        for name, digest in manifest["files"].items():
            if hashlib.sha256((package_dir / name).read_bytes()).hexdigest() != digest:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _manifest(spec: Spec, backends: tuple[str, ...], form: str, key: str, files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "key": key,
        "spec": spec.name,
        "spec_hash": spec.source_hash,
        "symgrad": __version__,
        "backends": [b for b in backends if f"{b}_backend.py" in files],  # C may have been skipped
        "form": form,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


@lru_cache(maxsize=1)
def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old file or the new one, never a part."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from others
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _build_in_directory(spec: Spec, backends: tuple[str, ...], form: str, key: str,
                        package_dir: Path) -> dict[str, Any]:
    chosen_form, files = generate(spec, backends, form)
    try:
        package_dir.mkdir(parents=True, exist_ok=True)
        previous = _previous_files(package_dir)
        for name, data in sorted(files.items()):
            target = package_dir / name
            if not (target.is_file() and target.read_bytes() == data):
                write_atomic(target, data)
        for stale in previous - set(files):
            with contextlib.suppress(OSError):
                (package_dir / stale).unlink()
        manifest = _manifest(spec, backends, chosen_form, key, files)
        write_atomic(package_dir / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    except OSError as error:
        raise BuildError(f"cannot write the package to {package_dir}: {error.strerror or error}; "
                         "check that the output directory is writable, or choose another with --out") from None
    return manifest


def _previous_files(package_dir: Path) -> set[str]:
    try:
        listed = json.loads((package_dir / MANIFEST).read_text()).get("files", {})
        return {name for name in listed if isinstance(name, str) and "/" not in name and not name.startswith(".")}
    except (OSError, ValueError, AttributeError):
        return set()


def _build_in_cache(spec: Spec, backends: tuple[str, ...], form: str, key: str, package_dir: Path) -> dict[str, Any]:
    entry = package_dir.parent
    chosen_form, files = generate(spec, backends, form)
    manifest = _manifest(spec, backends, chosen_form, key, files)
    try:
        (cache_root() / "tmp").mkdir(parents=True, exist_ok=True)
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_root() / "tmp", prefix=key[:12] + "."))
        try:
            (staging / spec.name).mkdir()
            for name, data in files.items():
                (staging / spec.name / name).write_bytes(data)
            (staging / spec.name / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            # Publish under a lock, re-checking first: another process may have finished the same
            # entry meanwhile (then it is used as it is), and only a broken entry is ever replaced,
            # so a process that is importing a valid entry never sees it disappear.
            with _entry_lock(entry):
                finished = _valid_manifest(package_dir, key)
                if finished is not None:
                    manifest = finished
                else:
                    if entry.exists():
                        _discard(entry)
                    os.rename(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise BuildError(f"cannot write to the cache {cache_root()}: {error.strerror or error}; "
                         "set SYMGRAD_CACHE to a writable directory") from None
    return manifest


@contextlib.contextmanager
def _entry_lock(entry: Path) -> Iterator[None]:
    """An exclusive lock per cache entry (POSIX flock; elsewhere the rename alone)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks in the standard library
        yield
        return
    locks = entry.parent.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{entry.name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _discard(entry: Path) -> None:
    trash = Path(tempfile.mkdtemp(dir=entry.parent.parent / "tmp", prefix="discard."))
    with contextlib.suppress(OSError):
        os.rename(entry, trash / "entry")
    shutil.rmtree(trash, ignore_errors=True)

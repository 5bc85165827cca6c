"""Stage 6 (build): compile what needs compiling, keep each package as an immutable cache entry,
and publish a copy into ``--out``.

Every package lives in the cache under its key (``<cache>/packages/<key>/<name>/``): written
beside, renamed into place, with a manifest of every file's sha256.  An entry is used only when
every file matches its manifest (a truncated or swapped file is rebuilt, never loaded) and never
changes once it is there, so a process imports exactly what its build made, whatever other
builds of the same name do meanwhile.  ``--out DIR`` receives a copy: ``DIR/<name>/`` is replaced
as a whole folder (built beside it, swapped in), so it never mixes two builds, and files in it
that no build wrote are carried over.

The key covers the spec's canonical JSON, a digest of symgrad's own sources and templates, the
backends, the form and (for C) the toolchain: a rebuild of an unchanged spec is a cache hit,
recognised from the document alone, without SymPy or Jinja2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from .cache import cache_root, locked
from .errors import BuildError, SpecError, SymgradWarning
from .files import public_directory
from .schema import NAME_PATTERN
from .spec import Spec, default_max_parameters, document_hash, parse_spec, read_document
from .version import __version__

MANIFEST = "symgrad-build.json"
BACKENDS = ("numpy", "c")
FORMS = ("auto", "scalar", "vector")


@dataclass(frozen=True)
class BuildResult:
    package_dir: Path   # where the caller asked for the package: DIR/<name>, or the cache entry
    cache_dir: Path     # the immutable copy in the cache, which symgrad.load imports
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


@dataclass(frozen=True)
class Request:
    """What is to be built, known before the spec is parsed (a cache hit never parses it)."""
    name: str
    key: str
    source_hash: str
    backends: tuple[str, ...]
    form: str
    fallback: bool                  # --backend all: C may be left out when its build fails
    spec: Spec | None               # the caller's parsed spec, or
    document: dict[str, Any] | None  # the JSON document to parse on a cache miss
    max_parameters: int | None

    @property
    def entry(self) -> Path:
        return cache_root() / "packages" / self.key[:32] / self.name

    def without_c(self) -> "Request":
        backends = tuple(b for b in self.backends if b != "c")
        return replace(self, backends=backends, fallback=False, key=build_key(self.source_hash, backends, self.form))


def request(source: Spec | str | Path | dict[str, Any], backend: str = "all", form: str = "auto",
            max_parameters: int | None = None) -> Request:
    """Read the document (not the whole spec) and work out the build's key."""
    if form not in FORMS:
        raise SpecError("--form", f'"{form}" is not a form', "use auto, scalar or vector")
    backends = resolve_backends(backend)
    spec, document = (source, None) if isinstance(source, Spec) else (None, read_document(source))
    if spec is not None:
        name, source_hash = spec.name, spec.source_hash
    else:
        name, source_hash = document.get("name"), document_hash(document)
        if not (isinstance(name, str) and re.fullmatch(NAME_PATTERN, name)):
            parse_spec(document, max_parameters)  # reports what is wrong with the name
    return Request(name, build_key(source_hash, backends, form), source_hash, backends, form,
                   backend in ("all", "auto") and "c" in backends, spec, document, max_parameters)


def cached(request: Request) -> dict[str, Any] | None:
    """The manifest of the request's cache entry when it is intact and allowed, else None.

    A network over the request's parameter limit is a miss, so that parsing it reports the limit.
    """
    manifest = _valid_manifest(request.entry, request.key)
    if manifest is None or request.document is None:
        return manifest
    limit = default_max_parameters() if request.max_parameters is None else request.max_parameters
    count = manifest.get("n_parameters")
    return manifest if isinstance(count, int) and count <= limit else None


def store(request: Request, spec: Spec, form: str, sources: dict[str, bytes]) -> dict[str, Any]:
    """Compile the C sources (when C is wanted) and put the package into the cache; its manifest."""
    files = dict(sources)
    if "c" in request.backends:
        from .compiler import compile_package

        files.update(compile_package(files, spec.name, cache_root()))
    return _store_in_cache(request, _manifest(request, spec, form, files), files)


def publish(request: Request, manifest: dict[str, Any], out: str | Path | None, hit: bool,
            started: float) -> BuildResult:
    """The result of a build, after copying the cache entry into ``out/<name>/`` when asked."""
    package_dir = request.entry if out is None else Path(out) / request.name
    if out is not None and _valid_manifest(package_dir, request.key) is None:
        _publish(request.entry, package_dir, manifest)
        hit = False
    return BuildResult(package_dir, request.entry, tuple(manifest["backends"]), manifest["form"], request.key, hit,
                       time.perf_counter() - started, tuple(sorted(manifest["files"])))


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
        if path.suffix in (".py", ".jinja", ".h") and "__pycache__" not in path.parts:  # .h: float_math.h
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
    with a working compiler, else a one-line warning); ``c`` without a compiler is a BuildError."""
    from .compiler import unavailable_reason

    if backend in ("all", "auto"):
        reason = unavailable_reason()
        if reason is None:
            return BACKENDS
        warnings.warn(SymgradWarning(f"building without the C backend: {reason}"), stacklevel=3)
        return tuple(b for b in BACKENDS if b != "c")
    if backend not in BACKENDS:
        raise SpecError("--backend", f'"{backend}" is not an available backend',
                        "use one of: " + ", ".join(BACKENDS + ("all",)))
    if backend == "c":
        reason = unavailable_reason()
        if reason is not None:
            raise BuildError(f"cannot build the C backend: {reason}; or build with --backend numpy")
    return (backend,)


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


def _manifest(request: Request, spec: Spec, form: str, files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "key": request.key,
        "spec": spec.name,
        "spec_hash": spec.source_hash,
        "n_parameters": spec.n_parameters,
        "symgrad": __version__,
        "backends": [b for b in request.backends if f"{b}_backend.py" in files],
        "form": form,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2) + "\n").encode()


def _store_in_cache(request: Request, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    package_dir = request.entry
    entry = package_dir.parent
    try:
        (cache_root() / "tmp").mkdir(parents=True, exist_ok=True)
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_root() / "tmp", prefix=request.key[:12] + "."))
        try:
            (staging / request.name).mkdir()
            for name, data in files.items():
                (staging / request.name / name).write_bytes(data)
            (staging / request.name / MANIFEST).write_bytes(_manifest_bytes(manifest))
            # Publish under a lock, re-checking first: another process may have finished the same
            # entry meanwhile (then it is used as it is), and only a broken entry is ever replaced,
            # so a process that is importing a valid entry never sees it disappear.
            with locked(entry.name):
                finished = _valid_manifest(package_dir, request.key)
                if finished is not None:
                    manifest = finished
                else:
                    _swap_in(staging, entry, cache_root() / "tmp")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise BuildError(f"cannot write to the cache {cache_root()}: {error.strerror or error}; "
                         "set SYMGRAD_CACHE to a writable directory") from None
    return manifest


def _publish(entry: Path, package_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace ``package_dir`` as a whole by a copy of the cache entry (a link to it stays a link)."""
    folder = Path(os.path.realpath(package_dir))
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists() and not folder.is_dir():
            raise BuildError(f"{package_dir} is a file, not a package folder; remove it or choose another --out")
        with locked("out-" + hashlib.sha256(str(folder).encode()).hexdigest()[:32]):
            for stale in (*folder.parent.glob(f".{folder.name}.*.new"), *folder.parent.glob(f".{folder.name}.*.old")):
                shutil.rmtree(stale, ignore_errors=True)  # left by a publisher that was killed (we hold its lock)
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".new"))
            try:
                public_directory(staging)
                for name in (*manifest["files"], MANIFEST):
                    shutil.copyfile(entry / name, staging / name)
                if folder.exists():
                    _carry_over(folder, staging, set(manifest["files"]))
                _swap_in(staging, folder, folder.parent)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise BuildError(f"cannot write the package to {package_dir}: {error.strerror or error}; "
                         "check that the output directory is writable, or choose another with --out") from None


def _carry_over(old: Path, new: Path, written: set[str]) -> None:
    """Copy into ``new`` what ``old`` holds that no symgrad build wrote (the user's own files)."""
    built_before = _previous_files(old) | written | {MANIFEST, "__pycache__"}
    for item in old.iterdir():
        if item.name in built_before or (new / item.name).exists():
            continue
        if item.is_symlink():
            os.symlink(os.readlink(item), new / item.name)
        elif item.is_dir():
            shutil.copytree(item, new / item.name, symlinks=True)
        else:
            shutil.copy2(item, new / item.name)


def _previous_files(package_dir: Path) -> set[str]:
    try:
        listed = json.loads((package_dir / MANIFEST).read_text()).get("files", {})
        return {name for name in listed if isinstance(name, str) and "/" not in name}
    except (OSError, ValueError, AttributeError):
        return set()


def _swap_in(staging: Path, folder: Path, scratch: Path) -> None:
    """Put the finished ``staging`` folder where ``folder`` is: the old one leaves by one rename
    (into ``scratch``, then deleted), the new one arrives by another; never a mixture."""
    if folder.exists():
        trash = Path(tempfile.mkdtemp(dir=scratch, prefix=f".{folder.name}.", suffix=".old"))
        os.rename(folder, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    os.rename(staging, folder)

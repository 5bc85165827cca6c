"""Compiling the C backend's extension with nothing but a C compiler.

The command comes from the running Python's own ``sysconfig`` (its compiler, CFLAGS, the
flags for shared objects and the link step, its include directory and EXT_SUFFIX) plus
NumPy's include directory; ``$CC`` replaces the compiler when set.  No setuptools, cffi or
Cython is involved.  ``-g`` is dropped from Python's CFLAGS (it only slows the compiler down).

NUMERIC_FLAGS are added, none of which changes a result: ``-fno-trapping-math`` (nobody reads
the floating-point exception flags, so gcc may compute both sides of a select; without it the
branch-free float32 tanh, relu and clamps do not vectorize: digits epoch 2.5 -> 1.7 ms together
with sg_tanhf), ``-fno-math-errno`` (sqrt and friends need not set errno; they return the same
values) and ``-ffp-contract=off`` (no fused multiply-add: x86-64 without -march has none anyway,
and on other targets it keeps the kernel's operations those of the NumPy backend).  Not used:
``-ffast-math`` (reorders sums and assumes no NaN: gradients would stop matching NumPy).

LOOP_FLAGS are added when the compiler accepts them (gcc does): ``-fno-loop-unroll-and-jam`` and
``--param=max-completely-peel-times=4``.  Without them gcc 12 "unrolls and jams" the vector form's
four-row outer-product tiles (the loop over a block's examples) into gathers and spills the
registers the tile was written to keep; with them the tiles compile as written (digits epoch
0.62 -> 0.55 ms).  Neither changes a result: they choose which loops are unrolled, not the order
of any operation.

``-march=native`` is added when the compiler accepts it (digits 64-32-10 epoch at batch 32,
float32: 1.25 ms -> 0.70 ms, the wider vectors of the machine's own instruction set; with
``-ffp-contract=off`` it fuses nothing and reorders no sum, so results are unchanged).  An
extension built so may not run on another processor, so the processor (its /proc/cpuinfo model
and flags, elsewhere the platform's description) is part of the cache key: a cache shared
between machines keeps one extension per processor.  ``SYMGRAD_PORTABLE=1`` leaves the flag out.
(An AVX2 build via target_clones was tried and was slower: the clones stop inlining helpers.)

Compiled extensions are cached in ``<cache>/c/<key>/`` where the key covers the C sources,
the full compiler command, the compiler's ``--version`` text, the Python ABI (EXT_SUFFIX),
NumPy's version and symgrad's version.  A compile writes to a temporary name in that folder
and appears by ``os.replace``, so processes compiling the same sources at once all end with a
correct file; a note beside it records its key and sha256, and a cached extension that does not
match its note (truncated, damaged, another build's) is compiled again, never used.  A failed
compile raises :class:`BuildError` with the compiler's own message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from functools import lru_cache
from pathlib import Path

from .cache import cache_root
from .errors import BuildError
from .files import write_atomic
from .version import __version__

#: How long one compile may take before it counts as failed.
TIMEOUT_SECONDS = 600


def compiler() -> list[str]:
    """The C compiler as an argument list: ``$CC`` when set, else the one Python was built with."""
    text = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(text)


def _config_flags(name: str) -> list[str]:
    return shlex.split(sysconfig.get_config_var(name) or "")


#: Added after Python's CFLAGS; none of them changes a floating-point result (module docstring).
NUMERIC_FLAGS = ["-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off"]


#: Loop flags that keep gcc's vectorizer on the kernel's register tiles (module docstring); each is
#: added when the compiler accepts it.
LOOP_FLAGS = ["-fno-loop-unroll-and-jam", "--param=max-completely-peel-times=4"]


def compile_flags() -> list[str]:
    """Python's CFLAGS for extensions (without -g), NUMERIC_FLAGS, the loop flags the compiler takes,
    the processor's own instruction set where allowed, and the flags for position-independent code."""
    flags = [f for f in _config_flags("CFLAGS") if f != "-g" and not f.startswith("-g")]
    return flags + NUMERIC_FLAGS + loop_flags() + native_flags() + _config_flags("CCSHARED")


def loop_flags() -> list[str]:
    """LOOP_FLAGS that the compiler accepts (asked once, the answer remembered like -march=native's)."""
    cc = tuple(compiler())
    return [flag for flag in LOOP_FLAGS if _accepts(cc, flag)]


def _optional_flags() -> tuple[str, ...]:
    """Every flag compile_flags may add after asking the compiler."""
    native = os.environ.get("SYMGRAD_PORTABLE", "") in ("", "0")
    return tuple(LOOP_FLAGS) + (("-march=native",) if native else ())


def native_flags() -> list[str]:
    """``-march=native`` when the compiler takes it and SYMGRAD_PORTABLE is not set."""
    if os.environ.get("SYMGRAD_PORTABLE", "") not in ("", "0"):
        return []
    return ["-march=native"] if _accepts(tuple(compiler()), "-march=native") else []


@lru_cache(maxsize=8)
def _accepts(cc: tuple[str, ...], flag: str) -> bool:
    """Whether the compiler compiles an empty translation unit with ``flag``.

    The answer is remembered in the cache folder under the compiler's path, size and time, so
    a cached build does not start the compiler just to ask.
    """
    found = shutil.which(cc[0]) if cc else None
    if found is None:
        return False
    stat = os.stat(found)
    question = _question(found, stat, cc, flag)
    memo = cache_root() / "compiler-probes.json"
    try:
        answers = json.loads(memo.read_text())
    except (OSError, ValueError):
        answers = {}
    if not isinstance(answers, dict):
        answers = {}
    if isinstance(answers.get(question), bool):
        return answers[question]
    # Not asked yet: ask about every optional flag in one compile (a cold build asks once, not once
    # per flag); only when that fails, about this flag alone.
    others = [f for f in _optional_flags() if f != flag and _question(found, stat, cc, f) not in answers]
    together = [flag] + others
    if others and _probe(cc, *together):
        for each in together:
            answers[_question(found, stat, cc, each)] = True
        answer = True
    else:
        answer = _probe(cc, flag)
    answers[question] = answer
    with contextlib.suppress(OSError):
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(memo, json.dumps(answers, sort_keys=True).encode())
    return answer


def _question(found: str, stat: os.stat_result, cc: tuple[str, ...], flag: str) -> str:
    """The memo's key for one flag of one compiler (its path, size and time, and its arguments)."""
    return json.dumps([os.path.realpath(found), stat.st_size, stat.st_mtime_ns, list(cc[1:]), flag])


def _probe(cc: tuple[str, ...], *flags: str) -> bool:
    """Whether the compiler compiles an empty translation unit with all of ``flags``."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "probe.c"
        source.write_text("int symgrad_probe(void) { return 0; }\n")
        try:
            result = subprocess.run([*cc, *flags, "-c", str(source), "-o", str(Path(folder) / "probe.o")],
                                    capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0


@lru_cache(maxsize=1)
def processor_identity() -> str:
    """The processor an extension compiled with -march=native is for (model and feature flags)."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        wanted = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags", "Features",
                                                                          "CPU part", "isa")]
        if wanted:
            return "\n".join(sorted(set(wanted)))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {platform.platform()}"


def link_flags() -> list[str]:
    """The flags of Python's LDSHARED after its compiler name (-shared, or -bundle on macOS)."""
    ldshared = _config_flags("LDSHARED")
    built_with = shlex.split(sysconfig.get_config_var("CC") or "")
    if built_with and ldshared[:len(built_with)] == built_with:
        ldshared = ldshared[len(built_with):]
    elif ldshared:
        ldshared = ldshared[1:]
    return ldshared or ["-shared"]


def include_dirs() -> list[str]:
    return [sysconfig.get_paths()["include"], numpy_include()]


@lru_cache(maxsize=1)
def numpy_include() -> str:
    """NumPy's C headers, found without importing NumPy (a cached build should not pay 80 ms for it)."""
    import importlib.util

    spec = importlib.util.find_spec("numpy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("NumPy is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    for candidate in (root / "_core" / "include", root / "core" / "include"):  # NumPy 2, NumPy 1
        if (candidate / "numpy" / "arrayobject.h").is_file():
            return str(candidate)
    import numpy  # an unusual layout: ask NumPy itself

    return numpy.get_include()


def extension_suffix() -> str:
    return sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def compile_command(source: str, output: str, include: list[str]) -> list[str]:
    """The command that compiles one translation unit ``source`` to the object file ``output``."""
    # the package's own folder only for #include "...": a package named stdint or limits must not shadow <stdint.h>
    return (compiler() + compile_flags() + [f"-I{d}" for d in include_dirs()] + [f"-iquote{d}" for d in include]
            + ["-c", source, "-o", output])


def link_command(objects: list[str], output: str) -> list[str]:
    """The command that links ``objects`` into the extension ``output``."""
    return compiler() + objects + ["-o", output] + link_flags() + ["-lm"]


def unavailable_reason() -> str | None:
    """Why no C extension can be compiled here, or None when a compiler and headers are present."""
    cc = compiler()
    if not cc or shutil.which(cc[0]) is None:
        return (f"no C compiler found (looked for {cc[0] if cc else 'cc'!r}); install gcc or clang, "
                "or set CC to a C compiler")
    try:
        headers = include_dirs()
    except ImportError:
        return "NumPy is not installed"
    if not (Path(headers[0]) / "Python.h").is_file():
        return (f"Python's C headers are missing ({headers[0]}/Python.h); install the Python "
                "development package (e.g. python3-dev)")
    return None


@lru_cache(maxsize=8)
def _compiler_version(cc: tuple[str, ...]) -> str:
    try:
        result = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30)
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"


def toolchain_fingerprint() -> str:
    """What, besides the sources, decides the compiled bytes (one compiler probe per process)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        numpy_version = version("numpy")
    except PackageNotFoundError:
        numpy_version = "unknown"
    flags = compile_flags()
    material = {"cc": compiler(), "cflags": flags, "ldflags": link_flags(),
                "ext": extension_suffix(), "soabi": sysconfig.get_config_var("SOABI"),
                "numpy": numpy_version, "symgrad": __version__,
                "processor": processor_identity() if "-march=native" in flags else None}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def artifact_key(sources: dict[str, bytes], module: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"toolchain": toolchain_fingerprint(), "module": module,
                              "compiler": _compiler_version(tuple(compiler()))}).encode())
    for name, data in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def compile_extension(sources: dict[str, bytes], compile_order: list[str], module: str,
                      cache: Path) -> bytes:
    """The compiled extension ``module`` (its file's bytes) from ``sources``, via the cache.

    ``sources`` maps file names to contents (headers included); ``compile_order`` names the
    translation units.  The result is cached under ``cache/c/<key>/``.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise BuildError(f"cannot build the C backend: {reason}")
    key = artifact_key(sources, module)
    folder = cache / "c" / key[:32]
    target = folder / (module + extension_suffix())
    cached = _verified_artifact(folder, target, key)
    if cached is not None:
        return cached
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".build.") as workdir:
            work = Path(workdir)
            for name, data in sources.items():
                (work / name).write_bytes(data)
            output = work / (module + extension_suffix())
            # the translation units compile in parallel (the glue's Python and NumPy headers
            # take most of the time), then one link
            objects = [str(work / (name + ".o")) for name in compile_order]
            _run([compile_command(str(work / name), obj, [str(work)]) for name, obj in zip(compile_order, objects)],
                 work)
            _run([link_command(objects, str(output))], work)
            if not output.is_file():
                raise BuildError(f"the C compiler did not produce {output.name}")
            data = output.read_bytes()
            os.replace(output, target)
            note = {"key": key, "sha256": hashlib.sha256(data).hexdigest()}
            write_atomic(folder / ARTIFACT_NOTE, json.dumps(note, sort_keys=True).encode())
        return data
    except OSError as error:
        raise BuildError(f"cannot write the compiled C extension to {folder}: {error.strerror or error}; "
                         "set SYMGRAD_CACHE to a writable directory") from None


#: Beside each cached extension: its key and sha256, checked before the extension is used.
ARTIFACT_NOTE = "artifact.json"


def _verified_artifact(folder: Path, target: Path, key: str) -> bytes | None:
    """The cached extension's bytes when they match the note beside them, else None."""
    try:
        note = json.loads((folder / ARTIFACT_NOTE).read_bytes())
        data = target.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("key") != key or note.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return data


def _run(commands: list[list[str]], cwd: Path) -> None:
    """Run the commands at once; a BuildError with the compiler's own message when one fails."""
    running = []
    try:
        for argv in commands:
            try:
                running.append((argv, subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                                       stderr=subprocess.PIPE, text=True)))
            except OSError as error:
                raise BuildError(f"cannot run the C compiler {argv[0]!r}: {error.strerror or error}; "
                                 "set CC to a working C compiler") from None
        for argv, process in running:
            try:
                out, err = process.communicate(timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                raise BuildError(f"the C compiler took more than {TIMEOUT_SECONDS} s; "
                                 "build with --backend numpy") from None
            if process.returncode != 0:
                message = (err or out).strip()
                raise BuildError(f"the C compiler failed (exit status {process.returncode}):\n"
                                 f"$ {shlex.join(argv)}\n{message}")
    finally:
        for _, process in running:
            if process.poll() is None:
                process.kill()
                process.wait()


def compile_package(files: dict[str, bytes], name: str, cache: Path) -> dict[str, bytes]:
    """The compiled extension of a generated package's C sources: {file name: bytes}."""
    from .emit.c import EXTENSION

    sources = {path: data for path, data in files.items() if path in (f"{name}.h", f"{name}.c", "c_backend.c")}
    if len(sources) != 3:
        raise BuildError(f"the package {name} has no C sources to compile")
    return {EXTENSION + extension_suffix(): compile_extension(sources, ["c_backend.c", f"{name}.c"], EXTENSION, cache)}

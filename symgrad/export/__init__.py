"""Export: a spec (and trained parameters) -> a self-contained package for another platform.

``python -m symgrad export SPEC --target T --out DIR`` looks ``T`` up in :data:`TARGETS`; each
target turns the spec into ``{relative path: bytes}`` plus the lines to print, and
:func:`write_package` writes them.  A target is one entry of the table, so another (ONNX, ...)
is one more line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import SpecError
from .exported import Exported

#: the file in an export folder that lists what symgrad wrote there (and may overwrite)
MANIFEST = ".symgrad-export"


def _c(source: Any, init: str | None) -> Exported:
    from .c import export_c

    return export_c(source, init)


def _onnx(source: Any, init: str | None) -> Exported:
    from ..interop import to_onnx
    from ..pipeline import analyze, load
    from ..training import load_checkpoint

    spec = analyze(source).spec
    theta = None if init is None else load_checkpoint(init, load(spec, backend="numpy")).theta
    model = to_onnx(spec, theta)
    return Exported({"model.onnx": model}, [f"ONNX graph of {spec.name}'s forward pass ({spec.dtype}, opset "
                                            f"17): input X (batch, {spec.n_inputs}), output Y (batch, "
                                            f"{spec.n_outputs}); {len(model):,} bytes"])


@dataclass(frozen=True)
class Target:
    """One --target: what it makes, what it is, and whether --out names a folder or the one file."""

    make: Callable[[Any, str | None], Exported]
    description: str
    writes: str = "folder"


TARGETS: dict[str, Target] = {
    "c": Target(_c, "a C99 package for a microcontroller: kernel, header, Makefile, CMakeLists.txt, example, "
                "self-test (--out names a folder)"),
    "onnx": Target(_onnx, "an ONNX inference graph of forward (--out names the .onnx file; needs pip install "
                   "'symgrad[onnx]')", writes="file"),
}


def export(source: Any, target: str, out: str | Path, init: str | None = None) -> Exported:
    """Export ``source`` for ``target`` into ``out``: a folder whose own files are never touched, or
    (for a one-file target) that file, replaced atomically."""
    if target not in TARGETS:
        raise SpecError("--target", f"unknown target {target!r}", f"choose one of {', '.join(TARGETS)}")
    chosen = TARGETS[target]
    path = Path(out)
    if chosen.writes == "file":
        from ..files import write_atomic
        from ..outputs import check_output

        check_output(path, "--out")
        exported = chosen.make(source, init)
        (data,) = exported.files.values()
        write_atomic(path, data)
        return Exported({path.name: data}, exported.report)
    _check_folder(path)
    exported = chosen.make(source, init)
    write_package(path, exported.files)
    return exported


def _check_folder(folder: Path) -> None:
    """Refuse a folder that holds files symgrad did not write there (they would be overwritten or mixed in)."""
    if folder.exists() and not folder.is_dir():
        raise SpecError("--out", f"{folder} exists and is not a folder", "name a new or empty folder")
    if not folder.is_dir():
        return
    ours = _manifest(folder)
    foreign = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and p.name not in ours)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise SpecError("--out", f"{folder} holds files symgrad did not write ({shown})",
                        "export into a new or empty folder, or one an earlier export wrote")


def _manifest(folder: Path) -> set[str]:
    from ..files import read_limited

    path = folder / MANIFEST
    if not path.is_file():
        return set()
    return {line for line in read_limited(path, 1 << 20).decode(errors="replace").splitlines() if line}


def write_package(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder`` (created when missing), each atomically, the manifest first,
    so that an interrupted export can be repeated; files of an earlier export not written again
    are removed."""
    from ..errors import BuildError
    from ..files import write_atomic

    try:
        folder.mkdir(parents=True, exist_ok=True)
        stale = _manifest(folder) - set(files)
        write_atomic(folder / MANIFEST, "".join(f"{name}\n" for name in sorted(set(files) | stale)).encode())
        for name, data in sorted(files.items()):
            write_atomic(folder / name, data)
        for name in sorted(stale):
            (folder / name).unlink(missing_ok=True)
        write_atomic(folder / MANIFEST, "".join(f"{name}\n" for name in sorted(files)).encode())
    except OSError as error:
        raise BuildError(f"cannot write the package to {folder}: {error.strerror or error}") from None

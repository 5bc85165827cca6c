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

#: the file in an export folder that lists what symgrad wrote there (and may overwrite)
MANIFEST = ".symgrad-export"


@dataclass(frozen=True)
class Exported:
    """What a target produced: the files and what ``export`` prints about them."""
    files: dict[str, bytes]
    report: list[str]


def _c(source: Any, init: str | None) -> Exported:
    from .c import export_c

    return export_c(source, init)


#: --target name -> (function(spec source, --init path or None) -> Exported, one-line description)
TARGETS: dict[str, tuple[Callable[[Any, str | None], Exported], str]] = {
    "c": (_c, "a C99 package for a microcontroller: kernel, header, Makefile, CMakeLists.txt, example, self-test"),
}


def export(source: Any, target: str, out: str | Path, init: str | None = None) -> Exported:
    """Export ``source`` for ``target`` into the folder ``out``; the folder's own files are never touched."""
    if target not in TARGETS:
        raise SpecError("--target", f"unknown target {target!r}", f"choose one of {', '.join(TARGETS)}")
    folder = Path(out)
    _check_folder(folder)
    exported = TARGETS[target][0](source, init)
    write_package(folder, exported.files)
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

"""Files the user asked for (--out, --save, --plot): checked before the work, written atomically.

Checking first means a long run never ends in "cannot write" with its result lost.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError


def check_output(path: str | Path, option: str) -> None:
    """Fail now, before any work, if ``path`` cannot be written (so no trained result is lost)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise DataError(f"{option} {path}: is a folder; give a file name inside it")
    if not folder.is_dir():
        raise DataError(f"{option} {path}: the folder {folder} does not exist; create it first or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{option} {path}: the folder {folder} is not writable; choose another path")


def write_output(path: str | Path, data: bytes) -> None:
    """Write a file the user asked for, atomically, as a one-line user error when that fails."""
    from .files import write_atomic

    try:
        write_atomic(Path(path), data)
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}; choose another path") from None

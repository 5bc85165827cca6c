"""Reading and writing the user's files: bounded reads, atomic writes that keep links and devices.

Every file symgrad reads on the user's behalf (a spec, a values file, a data file) goes through
:func:`read_limited`, which bounds the read itself: ``st_size`` says nothing about ``/dev/zero``,
a FIFO or a file that grows while it is read.  Every file symgrad writes goes through
:func:`write_atomic`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from functools import lru_cache
from pathlib import Path

_CHUNK = 1 << 20


class FileTooLarge(OSError):
    """A file holds more than the reader accepts (``strerror`` says how much that is)."""

    def __init__(self, path: str | Path, limit: int) -> None:
        super().__init__(errno.EFBIG, f"it holds more than {limit:,} bytes", str(path))
        self.limit = limit

    def __str__(self) -> str:
        return str(self.strerror)


def max_data_bytes() -> int:
    """The most a data or parameter file may hold: ``$SYMGRAD_MAX_DATA_BYTES``, else 1 GiB."""
    configured = os.environ.get("SYMGRAD_MAX_DATA_BYTES", "")
    return int(configured) if configured.isdigit() else 1 << 30


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path``, or :class:`FileTooLarge` once more than ``limit`` bytes have come.

    Reads in chunks, so memory stays bounded by ``limit`` whatever the file is.
    """
    chunks: list[bytes] = []
    total = 0
    with open(path, "rb") as stream:
        while True:
            chunk = stream.read(min(_CHUNK, limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(path, limit)


@lru_cache(maxsize=1)
def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: str | Path, data: bytes) -> None:
    """Give ``path`` the contents ``data`` so that readers see the old file or the new one, never a part.

    A regular file (or a new one) is replaced by renaming a finished temporary file over it,
    keeping its permissions.  A symbolic link is followed: its target gets the new contents and
    the link stays.  Anything else (a FIFO, a terminal, ``/dev/null``) is written directly,
    since renaming over it would replace the device or pipe with a plain file.
    """
    target = Path(os.path.realpath(path))
    try:
        status: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        status = None
    if status is not None and not stat.S_ISREG(status.st_mode):
        with open(target, "wb") as stream:  # a directory raises IsADirectoryError here
            stream.write(data)
        return
    mode = stat.S_IMODE(status.st_mode) if status is not None else 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, mode)  # mkstemp's 0600 would hide the file from others
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def public_directory(path: Path) -> None:
    """Give a folder made by ``mkdtemp`` (mode 0700) the permissions a plain ``mkdir`` gives."""
    os.chmod(path, 0o777 & ~_umask())

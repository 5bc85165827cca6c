"""Where symgrad keeps what it built: the cache root and one lock per cache entry.

The cache is ``$SYMGRAD_CACHE`` when set, else the platform's cache folder, never the current
directory.  Its folders: ``packages/<key>/<name>/`` (built packages), ``c/<key>/`` (compiled
extensions), ``tmp/`` (builds in progress) and ``locks/``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator


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


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """An exclusive lock named ``name`` among processes sharing the cache (POSIX flock; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks in the standard library; renames alone
        yield
        return
    locks = cache_root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

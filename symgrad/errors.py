"""Errors symgrad raises, split by whose fault they are.

A :class:`SymgradError` is the user's to fix (a bad spec, a bad data file, a missing compiler):
the CLI prints it on one line and exits with status 2.  An :class:`InternalError` is a bug in
symgrad itself and says so.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any, Iterator


class SymgradError(Exception):
    """Something the user can fix; its message says what, where and how."""


class SpecError(SymgradError, ValueError):
    """A spec (or a values file) is not valid.

    ``path`` is a JSON path such as ``$.layers[1].activation``; ``hint`` says how to fix it.
    """

    def __init__(self, path: str, problem: str, hint: str = "") -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        message = f"{path}: {problem}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class DataError(SymgradError, ValueError):
    """A data or values file does not fit the spec."""


class BuildError(SymgradError):
    """Generating, compiling or loading a module failed for a reason outside symgrad."""


class InternalError(RuntimeError):
    """A bug in symgrad: an invariant the pipeline relies on does not hold."""

    def __init__(self, message: str) -> None:
        super().__init__(f"internal error (this is a bug in symgrad, please report it): {message}")


def json_path(parts: tuple[str | int, ...]) -> str:
    """``("layers", 1, "weights")`` -> ``$.layers[1].weights``; odd keys are quoted."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            text += "[" + _quote(part) + "]"
    return text


def _quote(key: str) -> str:
    shown = key if len(key) <= 40 else key[:37] + "..."
    return '"' + shown.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


class SymgradWarning(UserWarning):
    """Something the user should know that does not stop the work (C skipped: no compiler)."""


@contextlib.contextmanager
def warnings_on_one_line() -> Iterator[None]:
    """Show symgrad's warnings the way the CLI shows errors: ``symgrad: warning: ...``, one line."""
    with warnings.catch_warnings():
        shown_before = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, SymgradWarning):
                print(f"symgrad: warning: {message}", file=sys.stderr)
            else:
                shown_before(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield

"""The one strict Jinja2 environment that every generator of text uses (emitters, explain, exercise).

Strict: an undefined name in a template is an error, not an empty string; blocks and indentation
are trimmed so templates can be laid out readably; no autoescaping unless the caller asks (HTML).
"""

from __future__ import annotations

from pathlib import Path

import jinja2


def template_environment(folder: Path) -> jinja2.Environment:
    """The one strict Jinja configuration every emitter uses."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["py"] = _python_literal
    return environment


def _python_literal(value: object) -> str:
    """A str or number as a Python literal (what ``repr`` gives is valid source for these)."""
    if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
        return repr(value)
    if not isinstance(value, (str, int, float)):
        raise TypeError(f"no Python literal for {type(value).__name__}")
    return repr(value)

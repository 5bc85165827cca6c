"""The float-only math of float32 kernels (float_math.h), cut to what one kernel calls.

A float32 kernel carries its own exp, log, tanh, ... (no libm, no double) so that the exported
package stands alone and gives the same bits on every IEEE-754 target.  Only the functions the
kernel calls (and those they call) are pasted in: an unused static function is a warning under
``-Wall``, an error under ``-Werror``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

HEADER = Path(__file__).with_name("float_math.h")

#: libm's name -> the float-only function a float32 kernel calls instead
REPLACES = {"exp": "sg_expf", "log": "sg_logf", "log1p": "sg_log1pf", "tanh": "sg_tanhf", "erf": "sg_erff",
            "pow": "sg_powf"}

#: a function with the comment above it: one line, or up to the closing brace in column 0
_DEFINITION = re.compile(r"^(?:/\*(?:[^*]|\*(?!/))*\*/\n)?static (?:inline )?[a-z0-9_]+ (sg_[a-z0-9_]+)\("
                         r"(?:[^\n]*}\n|.*?^}\n)", re.M | re.S)
_CALL = re.compile(r"\b(sg_[a-z0-9_]+)\(")


@lru_cache(maxsize=1)
def _parts() -> tuple[str, dict[str, str]]:
    """The header's preamble (comment and includes) and each function's text (with its comment)."""
    text = HEADER.read_text()
    found = list(_DEFINITION.finditer(text))
    preamble = text[:found[0].start()].rstrip() + "\n"
    return preamble, {m.group(1): m.group(0) for m in found}


def source_for(kernel: str) -> str:
    """The preamble and every float-only function that ``kernel`` calls, directly or not, in the
    header's order; "" when it calls none."""
    preamble, functions = _parts()
    needed: set[str] = set()
    todo = [name for name in _CALL.findall(kernel) if name in functions]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(callee for callee in _CALL.findall(functions[name]) if callee in functions)
    if not needed:
        return ""
    return preamble + "".join("\n" + body for name, body in functions.items() if name in needed)

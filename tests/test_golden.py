"""generated/digits/ is the committed vector-form example (a wide layer's loops and matrix products):
it is what a fresh build of examples/digits.json writes, byte for byte (compiled files aside)."""

from __future__ import annotations

import difflib

import pytest

import symgrad
from helpers import EXAMPLES, ROOT

GOLDEN = ROOT / "generated" / "digits"
REGENERATE = "python -m symgrad build examples/digits.json"
COMPILED = (".so", ".pyd", ".o", ".json")  # the extension and the build manifest are not committed


def _committed_files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.endswith(COMPILED)}


def test_vector_form_golden_copy_is_current(tmp_path):
    symgrad.build(EXAMPLES / "digits.json", out=tmp_path)
    fresh, committed = _committed_files(tmp_path / "digits"), _committed_files(GOLDEN)
    assert sorted(fresh) == sorted(committed), f"files differ; regenerate with `{REGENERATE}`"
    assert {"numpy_backend.py", "digits.c", "digits.h", "c_backend.c", "initial.npy"} <= set(committed)
    for name, data in fresh.items():
        if data != committed[name]:
            if name.endswith(".npy"):
                pytest.fail(f"generated/digits/{name} is out of date; regenerate with `{REGENERATE}`")
            old, new = committed[name].decode().splitlines(True), data.decode().splitlines(True)
            diff = "".join(difflib.unified_diff(old, new, f"generated/digits/{name}", "fresh build"))
            pytest.fail(f"generated/digits/{name} is out of date; regenerate with `{REGENERATE}`\n{diff}")
    assert "vector form" in committed["numpy_backend.py"].decode()

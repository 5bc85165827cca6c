"""Damaged caches are rebuilt, never loaded: every compiled extension is checked against its
recorded sha256 before use, wherever it sits (the compile cache, a package's cache entry, an
``--out`` folder).  A damaged extension that was loaded anyway would kill the process (SIGBUS)
or run another spec's code, so each load happens in a fresh process and its numbers are checked.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_rebuild import _assert_is, _env, _spec

import symgrad
from helpers import ROOT
from symgrad import compiler
from symgrad.builder import MANIFEST

pytestmark = pytest.mark.skipif(compiler.unavailable_reason() is not None,
                                reason=f"no C toolchain: {compiler.unavailable_reason()}")

DAMAGES = ("truncated", "empty", "garbage", "swapped", "swapped_with_note")
PLACES = ("compile_cache", "package_entry", "out_folder")

_LOAD = """
import json, sys
sys.path.insert(0, sys.argv[3])
import symgrad
from test_rebuild import _observed
print(json.dumps(_observed(symgrad.load(json.loads(sys.argv[1]), backend="c", out=sys.argv[2]))))
"""


def _extension(folder: Path) -> Path:
    (found,) = [p for p in folder.iterdir() if p.name.startswith("_c_kernel")]
    return found


def _damage(target: Path, how: str, other: Path) -> None:
    data = target.read_bytes()
    if how == "truncated":
        target.write_bytes(data[: len(data) // 3])
    elif how == "empty":
        target.write_bytes(b"")
    elif how == "garbage":
        target.write_bytes(hashlib.sha256(data).digest() * (len(data) // 32))
    else:  # another spec's kernel, alone or with the note that vouches for it
        target.write_bytes(other.read_bytes())
        if how == "swapped_with_note" and (other.parent / compiler.ARTIFACT_NOTE).exists():
            shutil.copyfile(other.parent / compiler.ARTIFACT_NOTE, target.parent / compiler.ARTIFACT_NOTE)


def _intact(target: Path) -> bool:
    """The file matches what its folder records for it (the manifest, or the compile cache's note)."""
    if (target.parent / MANIFEST).exists():
        recorded = json.loads((target.parent / MANIFEST).read_text())["files"][target.name]
    else:
        recorded = json.loads((target.parent / compiler.ARTIFACT_NOTE).read_text())["sha256"]
    return hashlib.sha256(target.read_bytes()).hexdigest() == recorded


SPEC, OTHER = _spec(activation="tanh"), _spec(name="other", learning_rate=0.75)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache and --out folder holding SPEC and OTHER, compiled once for every test to copy."""
    root = tmp_path_factory.mktemp("built")
    patcher = pytest.MonkeyPatch()
    patcher.setenv("SYMGRAD_CACHE", str(root / "cache"))
    symgrad.build(SPEC, out=root / "out", backend="c")
    kernels = set((root / "cache" / "c").iterdir())
    symgrad.build(OTHER, out=root / "elsewhere", backend="c")
    patcher.undo()
    (theirs,) = set((root / "cache" / "c").iterdir()) - kernels
    (mine,) = kernels
    return root, mine.name, theirs.name


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_extension_is_rebuilt_never_loaded(tmp_path, monkeypatch, built, place, how):
    root, my_kernel, their_kernel = built
    for folder in ("cache", "out", "elsewhere"):
        shutil.copytree(root / folder, tmp_path / folder, symlinks=True)
    cache, out, spec = tmp_path / "cache", tmp_path / "out", SPEC
    monkeypatch.setenv("SYMGRAD_CACHE", str(cache))
    mine = symgrad.build(spec, out=out, backend="c")
    theirs = symgrad.build(OTHER, out=tmp_path / "elsewhere", backend="c")
    assert mine.cache_hit and theirs.cache_hit
    my_folder, their_folder = cache / "c" / my_kernel, cache / "c" / their_kernel
    target = {"compile_cache": _extension(my_folder), "package_entry": _extension(mine.cache_dir),
              "out_folder": _extension(mine.package_dir)}[place]
    source = {"compile_cache": _extension(their_folder)}.get(place, _extension(theirs.cache_dir))
    _damage(target, how, source)
    if place == "compile_cache":  # make the next build go back to the compiled extension
        shutil.rmtree(cache / "packages")
    result = subprocess.run([sys.executable, "-c", _LOAD, json.dumps(spec), str(out), str(ROOT / "tests")],
                            capture_output=True, text=True, env={**_env(), "SYMGRAD_CACHE": str(cache)}, timeout=300)
    assert result.returncode == 0, f"status {result.returncode}: {result.stderr[-2000:]}"
    _assert_is(json.loads(result.stdout), spec)
    assert _intact(target), f"the damaged {target.name} in the {place} was not rebuilt"

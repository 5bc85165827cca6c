"""Building: the committed example is current, output is deterministic, writes are atomic and cached."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys

import pytest

import symgrad
import symgrad.compiler
from helpers import EXAMPLES, MAZUR, ROOT, make_spec, subprocess_env
from symgrad.builder import MANIFEST
from symgrad.cache import cache_root

GOLDEN = ROOT / "generated" / "mazur"
REGENERATE = "python -m symgrad build examples/mazur.json"


def _sources(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != MANIFEST and not p.name.endswith((".so", ".pyd", ".o"))}


def test_committed_example_is_up_to_date(tmp_path):
    """generated/mazur/ is the readable example in the repository; regenerate it with one command."""
    symgrad.build(MAZUR, out=tmp_path)
    fresh, committed = _sources(tmp_path / "mazur"), _sources(GOLDEN)
    assert sorted(fresh) == sorted(committed), f"files differ; regenerate with `{REGENERATE}`"
    for name in fresh:
        if fresh[name] != committed[name]:
            diff = "".join(difflib.unified_diff(committed[name].decode().splitlines(True),
                                                fresh[name].decode().splitlines(True),
                                                f"generated/mazur/{name}", "fresh build"))
            pytest.fail(f"generated/mazur/{name} is out of date; regenerate with `{REGENERATE}`\n{diff}")


def test_rebuild_of_unchanged_spec_is_a_cache_hit(tmp_path):
    first = symgrad.build(MAZUR, out=tmp_path)
    second = symgrad.build(MAZUR, out=tmp_path)
    assert not first.cache_hit and second.cache_hit
    assert "up to date" in str(second)


def test_changed_spec_rebuilds(tmp_path):
    spec = json.loads(MAZUR.read_text())
    symgrad.build(spec, out=tmp_path)
    spec["optimizer"]["learning_rate"] = 0.25
    result = symgrad.build(spec, out=tmp_path)
    assert not result.cache_hit
    assert "LEARNING_RATE = 0.25" in (tmp_path / "mazur" / "numpy_backend.py").read_text()


def test_corrupted_file_is_detected_and_rebuilt(tmp_path):
    symgrad.build(MAZUR, out=tmp_path)
    source = tmp_path / "mazur" / "numpy_backend.py"
    good = source.read_bytes()
    source.write_bytes(good[: len(good) // 2])
    result = symgrad.build(MAZUR, out=tmp_path)
    assert not result.cache_hit and source.read_bytes() == good


def test_same_spec_gives_identical_files_in_other_processes_and_folders(tmp_path):
    for spec in (MAZUR, EXAMPLES / "mnist_mlp.json"):
        symgrad.build(spec, out=tmp_path / "a")
        subprocess.run([sys.executable, "-m", "symgrad", "build", str(spec), "--out", str(tmp_path / "b")],
                       check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "123"})
        name = json.loads(spec.read_text())["name"]
        assert _sources(tmp_path / "a" / name) == _sources(tmp_path / "b" / name)


def test_load_uses_the_cache_and_leaves_sys_path_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path / "cache"))
    path_before = list(sys.path)
    module = symgrad.load(make_spec([2, 2, 1], ["tanh", "linear"], "mse"), backend="numpy")
    assert sys.path == path_before
    assert cache_root() == tmp_path / "cache"
    assert str(tmp_path / "cache") in module.__file__
    again = symgrad.load(make_spec([2, 2, 1], ["tanh", "linear"], "mse") | {"name": module.NAME}, backend="numpy")
    assert again is module


def test_cache_entry_that_was_damaged_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE", str(tmp_path / "cache"))
    spec = make_spec([2, 3, 1], ["relu", "linear"], "sse")
    first = symgrad.build(spec)
    (first.package_dir / "numpy_backend.py").write_text("raise SystemExit('damaged')\n")
    second = symgrad.build(spec)
    assert not second.cache_hit and second.package_dir == first.package_dir
    assert "damaged" not in (second.package_dir / "numpy_backend.py").read_text()


def test_generated_files_are_readable_by_others(tmp_path):
    symgrad.build(MAZUR, out=tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "mazur").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_mnist_example_builds_with_the_vector_form(tmp_path):
    result = symgrad.build(EXAMPLES / "mnist_mlp.json", out=tmp_path)
    assert result.form == "vector"
    size = (tmp_path / "mnist_mlp" / "numpy_backend.py").stat().st_size
    assert size < 100_000, "the vector form's source must not grow with the layer widths"


def _snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("command", [
    ["train", "mazur.json", "--epochs", "2"],
    ["train", "mazur.json", "--epochs", "2", "--lr", "0.3"],
    ["train", "mazur.json", "--epochs", "2", "--backend", "numpy"],
    ["train", "mazur.json", "--epochs", "2", "--backend", "c"],
    ["train", "mazur.json", "--epochs", "2", "--backend", "auto"],
    ["explain", "mazur.json", "--steps", "3"],
    ["formulas", "mazur.json", "--at", "initial"],
])
def test_only_build_writes_into_generated(tmp_path, command):
    """train, explain and formulas use the cache; the committed generated/<name>/ is left alone."""
    if "c" in command and symgrad.compiler.unavailable_reason() is not None:
        pytest.skip("no C compiler")
    (tmp_path / "mazur.json").write_bytes(MAZUR.read_bytes())
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "mazur").mkdir()
    for path in GOLDEN.iterdir():
        if path.is_file():
            (tmp_path / "generated" / "mazur" / path.name).write_bytes(path.read_bytes())
    before = _snapshot(tmp_path / "generated" / "mazur")
    result = subprocess.run([sys.executable, "-m", "symgrad", *command], cwd=tmp_path, capture_output=True,
                            text=True, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert _snapshot(tmp_path / "generated" / "mazur") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated", "mazur.json"]
    assert "Traceback" not in result.stderr and "_symgrad_generated" not in result.stdout + result.stderr


def _cli(*argv, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "symgrad", *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          env=subprocess_env(**(env or {})), timeout=300)


@pytest.mark.parametrize("compiler_env", [{"CC": "/nonexistent/cc"}, {"CC": "false"}, {"CC": "true"},
                                          {"CC": "cc -Wl,--no-such-linker-flag"}])
def test_backend_all_says_on_one_line_when_it_leaves_c_out(tmp_path, compiler_env):
    """No compiler, or one that fails: the package is NumPy only and stderr says so, on one line."""
    spec = make_spec([2, 2, 1], ["tanh", "linear"], "mse")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = _cli("build", "spec.json", "--out", "out", cwd=tmp_path, env={**compiler_env,
                                                                              "SYMGRAD_CACHE": str(tmp_path / "c")})
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("symgrad: warning: ") and result.stderr.count("\n") == 1, result.stderr
    assert "without the C backend" in result.stderr and "numpy backend," in result.stdout
    again = _cli("build", "spec.json", "--out", "out", cwd=tmp_path, env={**compiler_env,
                                                                             "SYMGRAD_CACHE": str(tmp_path / "c")})
    assert "without the C backend" in again.stderr, "a second build must not hide the missing backend"


def test_backend_c_with_a_failing_compiler_is_an_error(tmp_path):
    spec = make_spec([2, 2, 1], ["tanh", "linear"], "mse")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = _cli("build", "spec.json", "--backend", "c", cwd=tmp_path, env={"CC": "false"})
    assert result.returncode == 2 and "the C compiler failed" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("out", [None, "folder"])
def test_a_cache_hit_honours_max_parameters(tmp_path, out):
    spec = make_spec([3, 4, 2], ["tanh", "linear"], "mse")  # 26 parameters
    target = None if out is None else tmp_path / out
    symgrad.build(spec, out=target, backend="numpy")
    assert symgrad.build(spec, out=target, backend="numpy", max_parameters=26).cache_hit
    with pytest.raises(symgrad.SpecError, match="26 parameters, more than the limit of 25"):
        symgrad.build(spec, out=target, backend="numpy", max_parameters=25)
    with pytest.raises(symgrad.SpecError, match="more than the limit of 10"):
        symgrad.load(spec, backend="numpy", max_parameters=10)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    for command in (["build", "spec.json", "--backend", "numpy"], ["train", "spec.json", "--backend", "numpy"]):
        result = _cli(*command, "--max-parameters", "25", cwd=tmp_path)
        assert result.returncode == 2 and "more than the limit of 25" in result.stderr


@pytest.mark.parametrize("backend, built", [("c", "numpy"), ("numpy", "c")])
def test_loading_a_backend_that_was_not_built_names_it(tmp_path, backend, built):
    from symgrad.loader import import_backend

    if "c" in (backend, built) and symgrad.compiler.unavailable_reason() is not None:
        pytest.skip("no C compiler")
    result = symgrad.build(make_spec([2, 2, 1], ["tanh", "linear"], "mse"), out=tmp_path, backend=built)
    with pytest.raises(symgrad.BuildError, match=f"built without the {backend} backend") as caught:
        import_backend(result.package_dir, backend)
    assert "_symgrad_generated" not in str(caught.value)


def test_a_rebuild_keeps_the_users_own_files_and_links(tmp_path):
    spec = make_spec([2, 2, 1], ["tanh", "linear"], "mse")
    (tmp_path / "real").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / spec["name"]).symlink_to(tmp_path / "real")
    symgrad.build(spec, out=tmp_path / "out", backend="numpy")
    (tmp_path / "real" / "notes.txt").write_text("mine")
    spec["optimizer"]["learning_rate"] = 0.2
    symgrad.build(spec, out=tmp_path / "out", backend="numpy")
    assert (tmp_path / "out" / spec["name"]).is_symlink()
    assert (tmp_path / "real" / "notes.txt").read_text() == "mine"
    assert "LEARNING_RATE = 0.2" in (tmp_path / "real" / "numpy_backend.py").read_text()


def test_a_file_where_the_package_folder_goes_is_a_clear_error(tmp_path):
    spec = make_spec([2, 2, 1], ["tanh", "linear"], "mse")
    (tmp_path / spec["name"]).write_text("not a folder")
    with pytest.raises(symgrad.BuildError, match="is a file, not a package folder"):
        symgrad.build(spec, out=tmp_path, backend="numpy")
    assert (tmp_path / spec["name"]).read_text() == "not a folder"


def test_folders_left_by_a_killed_publisher_are_cleared(tmp_path):
    spec = make_spec([2, 2, 1], ["tanh", "linear"], "mse")
    for leftover in (f".{spec['name']}.abc123.new", f".{spec['name']}.def456.old"):
        (tmp_path / leftover / "old").mkdir(parents=True)
    (tmp_path / f".{spec['name']}x.abc.new").mkdir()  # another package's: not ours to clear
    symgrad.build(spec, out=tmp_path, backend="numpy")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{spec['name']}x.abc.new", spec["name"]]

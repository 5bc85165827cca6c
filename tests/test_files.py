"""Reading and writing the user's files: reads are bounded, writes go through links and devices.

``--out FILE`` and ``--save FILE`` used to replace the path by a rename, turning a symbolic link,
a FIFO or /dev/null into a plain file; ``build /dev/zero`` read until memory ran out.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from helpers import MAZUR, subprocess_env
from symgrad.files import FileTooLarge, read_limited, write_atomic


def _symgrad(*argv, cwd, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "symgrad", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, env={**subprocess_env(), **(env or {})}, timeout=timeout)


# -- writing ------------------------------------------------------------------------------------

def test_a_new_file_and_a_replaced_file(tmp_path):
    target = tmp_path / "new.txt"
    write_atomic(target, b"one")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    target.chmod(0o640)
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["new.txt"], "a temporary file was left behind"


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symbolic_link_is_written_through(tmp_path, dangling):
    real = tmp_path / "real.txt"
    if not dangling:
        real.write_bytes(b"old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"


def test_a_link_to_a_link_is_written_through_to_the_end(tmp_path):
    real = tmp_path / "real.txt"
    real.write_bytes(b"old")
    (tmp_path / "first").symlink_to(real)
    (tmp_path / "second").symlink_to(tmp_path / "first")
    write_atomic(tmp_path / "second", b"new")
    assert (tmp_path / "second").is_symlink() and (tmp_path / "first").is_symlink()
    assert real.read_bytes() == b"new"


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, b"through the pipe")
    reader.join(10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_character_device_is_written_into_not_replaced():
    before = os.lstat("/dev/null")
    write_atomic("/dev/null", b"nothing")
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_directory_is_an_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, b"x")


@pytest.mark.parametrize("command", [
    ["schema", "--out", "{target}"],
    ["formulas", "mazur.json", "--out", "{target}"],
    ["explain", "mazur.json", "--steps", "2", "--out", "{target}"],
    ["train", "mazur.json", "--epochs", "1", "--backend", "numpy", "--save", "{target}"],
])
@pytest.mark.parametrize("kind", ["link", "fifo"])  # /dev/null: the test above, without a root-only risk
def test_the_commands_write_through_links_and_devices(tmp_path, command, kind):
    (tmp_path / "mazur.json").write_bytes(MAZUR.read_bytes())
    if kind == "link":
        target = tmp_path / "link.out"
        target.symlink_to(tmp_path / "real.out")
    else:
        target = tmp_path / "pipe"
        os.mkfifo(target)
    received = []
    if kind == "fifo":
        reader = threading.Thread(target=lambda: received.append(target.read_bytes()))
        reader.start()
    result = _symgrad(*[part.format(target=target) for part in command], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if kind == "link":
        assert target.is_symlink() and (tmp_path / "real.out").stat().st_size > 0
    else:
        reader.join(30)
        assert stat.S_ISFIFO(os.lstat(target).st_mode) and received and received[0]
    if command[0] == "train" and kind == "link":
        assert set(np.load(tmp_path / "real.out")) >= {"theta"}


# -- reading ------------------------------------------------------------------------------------

def test_read_limited_reads_up_to_the_limit_and_no_further(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"x" * 100)
    assert read_limited(path, 100) == b"x" * 100
    with pytest.raises(FileTooLarge, match="more than 99 bytes"):
        read_limited(path, 99)
    with pytest.raises(FileTooLarge):
        read_limited("/dev/zero", 3 << 20)  # a device with no end: the read itself stops


def test_a_fifo_that_never_ends_is_cut_off(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def endless():
        try:
            with open(fifo, "wb") as stream:
                while True:
                    stream.write(b"{" * 65536)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    with pytest.raises(FileTooLarge):
        read_limited(fifo, 1 << 20)


@pytest.mark.parametrize("command", [
    ["build", "/dev/zero", "--out", "{tmp}"],
    ["formulas", "/dev/zero"],
    ["explain", "/dev/zero"],
    ["train", "/dev/zero"],
    ["formulas", "mazur.json", "--at", "/dev/zero"],
    ["explain", "mazur.json", "--at", "/dev/zero"],
    ["train", "mazur.json", "--data", "/dev/zero.csv"],
    ["train", "mazur.json", "--data", "/dev/zero.npz"],
    ["train", "mazur.json", "--init", "/dev/zero.npz"],
    ["build", "big.json", "--out", "{tmp}"],
])
def test_endless_and_huge_user_files_are_refused_in_bounded_memory(tmp_path, command):
    (tmp_path / "mazur.json").write_bytes(MAZUR.read_bytes())
    with open(tmp_path / "big.json", "wb") as stream:  # sparse: large, but costs no disk
        stream.truncate(80 * 1024 * 1024)
    for suffix in (".csv", ".npz"):  # /dev/zero under a name with the suffix the reader wants
        (tmp_path / f"zero{suffix}").symlink_to("/dev/zero")
    argv = [part.format(tmp=tmp_path / "out").replace("/dev/zero.", str(tmp_path / "zero.")) for part in command]
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({2 << 30}, {2 << 30}))"
    result = subprocess.run([sys.executable, "-c", f"{limit}; import sys; from symgrad.cli import main; "
                             "sys.exit(main(sys.argv[1:]))", *argv], cwd=tmp_path, capture_output=True,
                            text=True, env={**subprocess_env(), "SYMGRAD_MAX_DATA_BYTES": str(8 << 20)}, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "more than" in result.stderr and result.stderr.count("\n") == 1, result.stderr

"""A server's scratch folder (the wheel's backends and the Python stub, 2.8 MB) carries its owner's pid, and a start
removes those whose owner is gone, never a live process's.

Probed: a `quantserve serve` killed by SIGKILL (no cleanup runs) left /tmp/quantserve-triton-XXXX forever; six such
folders of a morning's runs sat in /tmp. Folders named before the pid was in the name are left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serving.deploy import deploy
from serving.server import TritonServer

SCRATCH_PREFIX = "quantserve-triton-"  # the folder's name as users find it in /tmp


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


@pytest.fixture
def other_live_process() -> Iterator[int]:
    """A live process other than this one (another session's serve, as far as the sweep can tell)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def scratch_folders(parent: Path, *owners: int | str) -> list[Path]:
    """One fake scratch folder per owner (a pid, or a name without one), each with a file, as a server leaves it."""
    folders = []
    for owner in owners:
        folder = (
            parent / f"{SCRATCH_PREFIX}{owner}-x1" if isinstance(owner, int) else parent / f"{SCRATCH_PREFIX}{owner}"
        )
        (folder / "backends").mkdir(parents=True)
        (folder / "backends" / "libtriton_python.so").write_bytes(b"\0" * 64)
        folders.append(folder)
    return folders


def test_a_start_removes_a_killed_owners_scratch_and_keeps_live_ones(
    dense_build: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    other_live_process: int,
    triton_server_factory: Callable[..., TritonServer],
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the server makes its scratch folder
    dead, mine, other, legacy = scratch_folders(temp, dead_pid(), os.getpid(), other_live_process, "k2j4h1_x")
    deploy(dense_build, tmp_path / "repo", "dense", max_batch=8)
    server = triton_server_factory(tmp_path / "repo")
    own = [p for p in temp.glob(f"{SCRATCH_PREFIX}{os.getpid()}-*") if p != mine]
    assert len(own) == 1 and (own[0] / "backends" / "python").is_dir(), sorted(temp.iterdir())
    assert not dead.exists()
    assert mine.exists() and other.exists() and legacy.exists()  # live owners; a name that says no owner
    server.stop()
    assert sorted(temp.iterdir()) == sorted([mine, other, legacy])  # its own removed at stop, as before

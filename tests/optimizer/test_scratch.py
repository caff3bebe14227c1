"""Hidden folders carry their owner's pid; the next run removes a killed run's folders, never a live one's."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from optimizer.pipeline import run_atomically
from optimizer.scratch import make_owned_dir, owned_tempdir, process_alive, remove_stale_dirs
from quantserve.artifact import Artifact, Manifest, TensorSpec


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_owned_folders_are_named_for_this_process(tmp_path: Path) -> None:
    made = make_owned_dir(tmp_path / "new", ".out.partial-")
    assert made.is_dir() and made.name.startswith(f".out.partial-{os.getpid()}-")
    with owned_tempdir(tmp_path, ".calib-") as scratch:
        assert scratch.name.startswith(f".calib-{os.getpid()}-")
    assert not scratch.exists()


def test_only_dead_owners_folders_are_removed(tmp_path: Path) -> None:
    pid = dead_pid()
    assert not process_alive(pid)
    dead = tmp_path / f".calib-{pid}-abc"
    live = tmp_path / f".calib-{os.getpid()}-def"
    legacy = tmp_path / ".calib-k2j4h1"  # written before pids were in the name: nothing says it is stale
    other = tmp_path / f"calib-{pid}-abc"
    for folder in (dead, live, legacy, other):
        folder.mkdir()
    assert remove_stale_dirs(tmp_path, (".calib-",)) == [dead]
    assert [p.exists() for p in (dead, live, legacy, other)] == [False, True, True, True]


@dataclass
class WriteManifest:
    """The smallest real job run_atomically runs: write a manifest into the staging folder."""

    def run(self, staging: Path, work: Path) -> Artifact:
        assert work.name.startswith(f".out.work-{os.getpid()}-")
        manifest = Manifest(name="m", inputs=[TensorSpec("x", "float32", ("batch", 2))], outputs=[])
        manifest.save(staging)
        (staging / "model.onnx").write_bytes(b"model")
        return Artifact(staging / "model.onnx", manifest)


def test_run_removes_a_killed_runs_folders_and_keeps_a_live_ones(tmp_path: Path) -> None:
    pid = dead_pid()
    stale = [tmp_path / f".out.{kind}-{pid}-x" for kind in ("partial", "work", "old")]
    running = tmp_path / f".out.partial-{os.getpid()}-y"
    for folder in [*stale, running]:
        folder.mkdir()
    for _ in range(2):  # the second run replaces the first output (through an `.old-` folder)
        built = run_atomically(WriteManifest(), tmp_path / "out")  # type: ignore[arg-type]
    assert built.path == tmp_path / "out" / "model.onnx" and built.path.read_bytes() == b"model"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", running.name])


@pytest.mark.parametrize("name", ["", "7", "x-1"])
def test_names_without_a_pid_are_left_alone(name: str, tmp_path: Path) -> None:
    folder = tmp_path / f".calib-{name}"
    folder.mkdir()
    assert remove_stale_dirs(tmp_path, (".calib-",)) == []

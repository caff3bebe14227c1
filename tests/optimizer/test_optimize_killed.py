"""`quantserve optimize` killed with SIGKILL (a real child process): no half-written output, and the next run cleans up.

The previous complete build stays byte-identical (or comes back whole), and the next run removes
the dead run's hidden folders — beside the output and in the calibration cache — and succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantserve.cli import main

# Kills its own process with SIGKILL right after `_move_into_place` retired the previous output:
# the one moment at which the output folder is missing.
DIE_AFTER_RETIRING = """
import os, signal, sys
rename = os.rename
def rename_then_die(src, dst, *args, **kwargs):
    rename(src, dst, *args, **kwargs)
    if os.path.basename(dst) == "previous":
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename_then_die
from quantserve.cli import main
sys.exit(main(sys.argv[1:]))
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def optimize_argv(model: Path, calib: Path, out: Path) -> list[str]:
    return ["optimize", str(model), "--calib", str(calib), "--out", str(out), "--skip-timing"]


def wait_for_folder(child: subprocess.Popen[bytes], parent: Path, prefix: str, timeout_s: float = 120.0) -> Path:
    """The first `parent/PREFIX*` folder, polled while `child` runs; fails if the child ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(parent.glob(f"{prefix}*")) if parent.is_dir() else []
        if found:
            return found[0]
        assert child.poll() is None, f"optimize ended (code {child.returncode}) before {prefix}* appeared"
        time.sleep(0.002)
    raise AssertionError(f"no {prefix}* under {parent} within {timeout_s:.0f} s")


@pytest.fixture
def built(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A complete earlier build in `tmp_path/build/tiny`, and its bytes."""
    out = tmp_path / "build" / "tiny"
    assert main(optimize_argv(tiny_onnx, calib_npz, out)) == 0
    return out, snapshot(out)


def test_optimize_killed_while_calibrating(
    built: tuple[Path, dict[str, bytes]], tiny_onnx: Path, tmp_path: Path, calib_cache: Path
) -> None:
    import make_tiny_models

    out, before = built
    other_calib = make_tiny_models.write_digits_like_npz(tmp_path / "other.npz", samples=400, seed=1)  # a cache miss
    argv = optimize_argv(tiny_onnx, other_calib, out)
    child = subprocess.Popen([sys.executable, "-m", "quantserve", *argv], stdout=subprocess.DEVNULL)
    try:
        scratch = wait_for_folder(child, calib_cache, f".calib-{child.pid}-")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        assert child.wait(timeout=30) == -signal.SIGKILL
    assert snapshot(out) == before, "a killed run must leave the previous build byte-identical"
    left = hidden(out.parent)
    assert left and all(f"-{child.pid}-" in name for name in left), left  # the killed run's staging and work folders
    assert scratch.exists()

    assert main(argv) == 0
    assert hidden(out.parent) == [] and not scratch.exists()
    assert [p.name for p in calib_cache.iterdir() if p.name.startswith(".")] == []
    assert snapshot(out) != before and (out / "manifest.json").is_file()


def test_optimize_killed_between_retiring_the_old_build_and_renaming_the_new(
    built: tuple[Path, dict[str, bytes]], tiny_onnx: Path, calib_npz: Path
) -> None:
    out, before = built
    argv = optimize_argv(tiny_onnx, calib_npz, out)
    child = subprocess.run([sys.executable, "-c", DIE_AFTER_RETIRING, *argv], capture_output=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert not out.exists()
    (retired,) = (out.parent / name for name in hidden(out.parent) if name.startswith(".tiny.old-"))
    assert snapshot(retired / "previous") == before

    # The next run puts the previous build back first: a run that then fails leaves it as it was.
    assert main([*argv, "--output-kind", "logits=dense", "--min-channel-correlation", "1.0"]) == 1
    assert snapshot(out) == before and hidden(out.parent) == []
    assert main(argv) == 0
    assert hidden(out.parent) == [] and (out / "manifest.json").is_file()


def test_a_live_runs_folders_are_not_touched(
    built: tuple[Path, dict[str, bytes]], tiny_onnx: Path, calib_npz: Path
) -> None:
    out, _ = built
    live = out.parent / f".tiny.partial-{os.getppid()}-x"  # the pytest runner's parent: alive
    live.mkdir()
    assert main(optimize_argv(tiny_onnx, calib_npz, out)) == 0
    assert hidden(out.parent) == [live.name]

"""A deploy cut by the process's file size limit (`ulimit -f`) says so, and that it wrote nothing.

Measured (session 55): under `ulimit -f 1000` deploy stopped with only "repo/digits_int8: file too large", where a
full disk's line and serve's own EFBIG line name the cause and what was left.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from quantserve.cli import main

ROOT = Path(__file__).resolve().parents[2]
LEFT = "nothing written: its versions and config are as they were"


def tree(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}


def limited_to(size: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_file_size_limit_is_named_and_the_repository_left_as_it_was(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    before = tree(repo)
    smallest = min(p.stat().st_size for p in (repo / "dense" / "1").iterdir())
    command = [sys.executable, "-m", "quantserve", "deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, preexec_fn=lambda: limited_to(smallest), timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"quantserve: error: {repo / 'dense'}: file too large (this process's file size limit, ulimit -f, cut a file "
        f"written there); {LEFT}\n"
    )
    assert tree(repo) == before

"""SIGHUP (the terminal closed) stops `quantserve serve` like SIGTERM: it says so, and leaves nothing behind.

It died at once with no message, leaving tritonserver's scratch folder (/tmp/quantserve-triton-…) and its
endpoint record (serve-PORT.json) behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from test_serve_stop import _lines_of, _still_running, _wait_for

from quantserve.cli import main

pytestmark = pytest.mark.e2e


def _scratch_of(triton: psutil.Process) -> Path:
    """The folder serve made for this server's backends (--backend-directory=<scratch>/backends)."""
    (flag,) = [a for a in triton.cmdline() if a.startswith("--backend-directory=")]
    return Path(flag.split("=", 1)[1]).parent


def test_sighup_stops_serve_and_removes_its_scratch_folder_and_record(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    repo, run_dir = tmp_path / "repo", tmp_path / "run"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "4"]) == 0
    ports = [str(free_port_factory()) for _ in range(3)]
    command = [sys.executable, "-m", "quantserve", "serve", "--repo", str(repo), "--grpc-port", ports[0]]
    command += ["--http-port", ports[1], "--metrics-port", ports[2], "--log-file", str(tmp_path / "triton.log")]
    env = {**os.environ, "QUANTSERVE_RUNTIME_DIR": str(run_dir)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env
    )
    started: list[psutil.Process] = []
    try:
        lines, seen = _lines_of(process), []
        _wait_for(lines, "press Ctrl-C to stop", seen)
        (triton,) = [p for p in psutil.Process(process.pid).children() if p.name() == "tritonserver"]
        started = [triton, *triton.children(recursive=True)]
        scratch, record = _scratch_of(triton), run_dir / f"serve-{ports[0]}.json"
        assert scratch.is_dir() and record.is_file()
        process.send_signal(signal.SIGHUP)
        assert process.wait(timeout=60) == 0
        _wait_for(lines, "stopped", seen, timeout_s=10)
        assert any(line.startswith("stopping") for line in seen), seen
        assert _still_running(started) == []
        assert not scratch.exists(), f"{scratch} left behind"
        assert not record.exists(), f"{record} left behind"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for leftover in _still_running(started):
            leftover.kill()

"""`quantserve serve` says "stopped" only once tritonserver and every process it started are gone, on SIGTERM
and on SIGHUP, and leaves nothing behind.

It printed "stopped" on SIGTERM and then spent seconds stopping the server: a script that waited for the
line and restarted on the same ports found them taken.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from serving_models import wait_for_line

from quantserve.cli import main

pytestmark = pytest.mark.e2e


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def _still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those not gone; a zombie (ended, not yet reaped by init) holds nothing and counts as gone."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def _scratch_of(triton: psutil.Process) -> Path:
    """The folder serve made for this server's backends (--backend-directory=<scratch>/backends)."""
    (flag,) = [a for a in triton.cmdline() if a.startswith("--backend-directory=")]
    return Path(flag.split("=", 1)[1]).parent


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stopped_is_printed_once_tritonserver_and_its_stubs_are_gone(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int], stop: signal.Signals
) -> None:
    """SIGHUP (the terminal closed) too: serve died at once with no message, leaving tritonserver's scratch folder
    (/tmp/quantserve-triton-…) and its endpoint record (serve-PORT.json) behind."""
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
        wait_for_line(lines, "press Ctrl-C to stop", seen)
        (triton,) = [p for p in psutil.Process(process.pid).children() if p.name() == "tritonserver"]
        started = [triton, *triton.children(recursive=True)]
        assert len(started) >= 2, started  # the server and the model's Python backend stub
        scratch, record = _scratch_of(triton), run_dir / f"serve-{ports[0]}.json"
        assert scratch.is_dir() and record.is_file()
        process.send_signal(stop)
        wait_for_line(lines, "stopped", seen, timeout_s=60)
        assert _still_running(started) == [], f"'stopped' printed while these run: {_still_running(started)}"
        assert process.wait(timeout=60) == 0
        assert any(line.startswith("stopping") for line in seen), seen  # said at once, before the wait
        assert not scratch.exists(), f"{scratch} left behind"
        assert not record.exists(), f"{record} left behind"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for leftover in _still_running(started):
            leftover.kill()

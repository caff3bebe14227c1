"""Ctrl-C in a `--workers 2` warm-up, end to end: the run records the interrupt when it came, and says it stopped the
users before the window opened.

Before, only the master was sent SIGTERM: the workers still starting stayed until the 10 s grace ran out and were
killed, and the interrupt was timed after that, 10 s after the master had gone. The test signals the loadtest as
soon as all three Locust processes exist (their logs), long before any window can open, and notes when it first
sees the master gone: the interrupt recorded must not come after it. No duration is asserted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import loadtest_models as models
import psutil
import pytest

from loadtest.harness import BEFORE_WINDOW

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CPU_BEFORE_SIGNAL_S = 0.2  # each Locust process has used this much CPU (its imports take seconds of it)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., Any]) -> tuple[Any, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("interrupt-workers"))
    return triton_server_factory(repo), data


def _locusts_once_started(loadtest: subprocess.Popen[str], record_dir: Path) -> list[psutil.Process]:
    """The master and both workers, once each runs Locust and has used CPU_BEFORE_SIGNAL_S importing it: the harness
    has started all three and waits on them (an interrupt while it starts them takes another path), and none has
    joined or warmed up yet."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert loadtest.poll() is None, f"loadtest ended before Locust started: {loadtest.communicate()}"
        logs = {path.stem for path in record_dir.glob("*/*.log")}
        children = psutil.Process(loadtest.pid).children()
        if {"master", "worker0", "worker1"} <= logs and len(children) == 3 and all(map(_importing, children)):
            return children
        time.sleep(0.05)
    raise AssertionError("the three Locust processes did not start within 60 s")


def _importing(process: psutil.Process) -> bool:
    try:
        cpu = process.cpu_times()
        return "locust" in process.cmdline() and cpu.user + cpu.system >= CPU_BEFORE_SIGNAL_S
    except psutil.Error:
        return False


def _first_seen_gone(process: psutil.Process) -> float:
    """When this test first sees `process` gone (wall time): after it ended, whenever that was."""
    deadline = time.monotonic() + 30
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.time()


def test_ctrl_c_in_a_workers_warm_up_is_recorded_when_it_came(served: tuple[Any, Path], tmp_path: Path) -> None:
    server, data = served
    out = tmp_path / "r"
    argv = [sys.executable, "-m", "quantserve", "-q", "loadtest", "--url", server.grpc_url, "--model", "mlp"]
    argv += ["--data", str(data), "--out", str(out), "--users", "4", "--workers", "2", "--duration", "30s"]
    loadtest = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        locusts = _locusts_once_started(loadtest, out / "raw")
        [master] = [process for process in locusts if "--master" in process.cmdline()]
        loadtest.send_signal(signal.SIGINT)
        master_gone = _first_seen_gone(master)
        _, err = loadtest.communicate(timeout=60)
    finally:
        if loadtest.poll() is None:
            loadtest.kill()
    assert loadtest.returncode == 130, err
    _, alive = psutil.wait_procs(locusts, timeout=10)
    assert not alive, f"left running: {alive}"
    stop = json.loads((out / "load-mlp.json").read_text())["interrupted"]
    at = datetime.fromisoformat(stop["at"].replace("Z", "+00:00")).timestamp()  # whole seconds, rounded down
    assert at <= master_gone, (stop, master_gone)  # it was timed when the workers were 10 s from being killed
    assert stop["note"].startswith(f"u4 omitted: {BEFORE_WINDOW} (logs: "), stop

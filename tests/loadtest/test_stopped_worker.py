"""A Locust worker that stops reporting mid-run (SIGSTOP: alive and silent) ends the run on time, not in a hang.

Before, `quantserve loadtest --workers 2` with one worker stopped waited on it long past the run's end and saved
nothing. Now the master ends the run at its planned time, the harness gives the silent worker a bounded grace,
kills it, and the result names it among the lost workers: its requests are in no figure, so the run fails (exit 1).

The test stops the worker once the server has counted the load's requests (never after a fixed sleep).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from loadtest import locust_processes
from loadtest.load_run import LoadRun

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVED_BEFORE_STOP = 100  # requests the server answered in the run before the test stops a worker


def _served(metrics_url: str, model: str) -> float:
    from loadtest.triton_metrics import scrape

    return float(scrape(metrics_url).get(model, {}).get("nv_inference_request_success", 0.0))


def _workers_once_loading(
    loadtest: subprocess.Popen[str], served_models: Any, timeout_s: float = 40.0
) -> dict[str, psutil.Process]:
    """The two Locust worker processes by the harness's name for them (`worker0`, `worker1`: the log each writes its
    output to), once the server answered SERVED_BEFORE_STOP requests of the run."""
    deadline = time.monotonic() + timeout_s
    before = None
    while time.monotonic() < deadline:
        assert loadtest.poll() is None, f"loadtest ended before its workers loaded: {loadtest.communicate()}"
        workers = [p for p in psutil.Process(loadtest.pid).children() if "--worker" in _cmdline(p)]
        if len(workers) == 2 and before is None:
            before = _served(served_models.metrics_url, served_models.fp32)
        elif (
            before is not None and _served(served_models.metrics_url, served_models.fp32) - before >= SERVED_BEFORE_STOP
        ):
            return {Path(os.readlink(f"/proc/{p.pid}/fd/1")).stem: p for p in workers}
        time.sleep(0.1)
    raise AssertionError(f"the workers answered fewer than {SERVED_BEFORE_STOP} requests in {timeout_s} s")


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_a_stopped_worker_ends_the_run_with_what_the_others_measured(served_models: Any, tmp_path: Path) -> None:
    out = tmp_path / "r"
    argv = [sys.executable, "-m", "quantserve", "loadtest", "--url", served_models.url, "--model", served_models.fp32]
    argv += ["--data", str(served_models.load_data), "--out", str(out), "--metrics-url", served_models.metrics_url]
    argv += ["--users", "4", "--workers", "2", "--duration", "8s"]
    loadtest = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped: psutil.Process | None = None
    try:
        workers = _workers_once_loading(loadtest, served_models)
        stopped = workers["worker1"]
        stopped.send_signal(signal.SIGSTOP)
        # generous: the run has at most 8 s left, then its bounded grace; before, it waited past this and more
        out_text, err = loadtest.communicate(timeout=60)
    finally:
        if loadtest.poll() is None:
            loadtest.kill()
            loadtest.communicate()
        if stopped is not None and stopped.is_running():
            stopped.kill()  # SIGKILL ends a stopped process too
    print(out_text, err, sep="\n")
    assert stopped is not None
    assert loadtest.returncode == 1, err  # a lost worker fails the run, as a killed one does
    assert not stopped.is_running() or stopped.status() == psutil.STATUS_ZOMBIE, "the stopped worker was left"
    (result,) = LoadRun.load(out / f"load-{served_models.fp32}.json").results
    (lost,) = result.lost_workers
    grace = f"{locust_processes.WORKER_EXIT_GRACE_S:g} s"
    assert (
        lost
        == f"worker1 (pid {stopped.pid}, its process stopped, killed {grace} after the master ended) stopped reporting"
    )
    assert result.has_failures and result.requests > 0 and result.failed_requests == 0
    [note] = [line for line in out_text.splitlines() if "stopped reporting" in line]
    assert note.startswith("note: ") and "requests are lost" in note and "worker1" in note
    assert "1 Locust worker lost" in err
    raw = out / "raw" / f"{served_models.fp32}-u4"
    assert len(list(raw.glob("latencies-*.npy"))) == 1, "only the worker that reported recorded its requests"


def test_a_worker_still_running_after_the_grace_is_killed_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real child processes: one exits 0 with the master, one is stopped (alive, silent). The stopped one is waited
    for WORKER_EXIT_GRACE_S at most, then killed and named; the one that exited is not lost."""
    monkeypatch.setattr(locust_processes, "WORKER_EXIT_GRACE_S", 0.5)
    workers = [subprocess.Popen([sys.executable, "-c", code]) for code in ("pass", "import time; time.sleep(60)")]
    workers[1].send_signal(signal.SIGSTOP)
    try:
        lost = locust_processes.lost_workers(workers)
    finally:
        workers[1].kill()
    assert lost == [
        f"worker1 (pid {workers[1].pid}, its process stopped, killed 0.5 s after the master ended) stopped reporting"
    ]
    assert workers[1].returncode == -signal.SIGKILL and workers[0].returncode == 0

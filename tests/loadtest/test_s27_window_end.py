"""The open loop offers no arrival due at or after the window's planned end, however late Locust's stop comes.

A prober (pl6) replayed 200 arrivals at one instant and one a second later for `--duration 5s`: the window closed
78 ms late (Locust's stop), the schedule ran on to it and offered the next pass's burst, due 0.02 s past the planned
end: "offered 1204 requests … 136 never sent", exit 1, where the plan said ~1004 and every planned burst was answered.
Here the stop is held 0.4 s on purpose, so the burst past the end lies inside the recorded window every time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest import recording_files
from loadtest.arrival_trace import read_trace
from serving.ports import free_port

pytestmark = pytest.mark.slow

WINDOW_S = 2
# a test_stopping listener ahead of the window's own: the window's end, and the users' stop, come this much late
LATE_STOP_LOCUSTFILE = textwrap.dedent(
    """
    import os

    import gevent
    from locust import events
    from locust.runners import WorkerRunner

    @events.test_stopping.add_listener
    def stop_late(environment, **_):
        if not isinstance(environment.runner, WorkerRunner):
            gevent.sleep(0.4)

    from loadtest.open_loop_user import OpenLoopTritonUser  # noqa: E402

    os.environ.setdefault("LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP", "30")  # as locustfile_open_loop.py

    class LateStoppedUser(OpenLoopTritonUser):
        pass
    """
)


def _bursts(path: Path) -> Path:
    """20 arrivals at one instant and one 0.5 s later: a pass of 0.525 s, whose fifth burst (2.1 s) is past a 2 s
    window's end."""
    np.savetxt(path, [0.0] * 20 + [0.5], fmt="%.3f", header="timestamp", comments="")
    return path


def _run_late_stopped(tmp_path: Path, url: str, load: list[str], workers: int) -> Path:
    """One open-loop Locust run (one process, or a master and `workers` workers) whose stop comes late."""
    locustfile = tmp_path / "locustfile_late_stop.py"
    locustfile.write_text(LATE_STOP_LOCUSTFILE)
    data = models.labeled_data(16, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    record = tmp_path / "raw"
    common = [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "WARNING"]
    common += ["--triton-url", url, "--triton-model", "m", "--triton-data", str(data), *load]
    common += ["--max-in-flight", "4", "--request-timeout", "1", "--record-dir", str(record)]
    head = [*common, "--headless", "-u", str(max(1, workers)), "-r", str(max(1, workers)), "--only-summary"]
    head += ["--window-time", str(WINDOW_S), "--stop-timeout", "0"]
    root = Path(__file__).parents[2]
    if not workers:
        subprocess.run(head, capture_output=True, text=True, timeout=60, cwd=root)
        return record
    port = str(free_port())
    master = subprocess.Popen(
        [*head, "--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1", "--master-bind-port",
         port], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    link = ["--worker", "--master-host", "127.0.0.1", "--master-port", port]
    worker_list = [
        subprocess.Popen([*common, *link], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        master.wait(timeout=60)
        for worker in worker_list:
            worker.wait(timeout=20)
    finally:
        for process in [master, *worker_list]:
            if process.poll() is None:
                process.kill()
                process.wait()
    return record


def _offered(record: Path) -> tuple[int, np.ndarray]:
    """The arrivals the window offered, and those recorded at or after its planned end."""
    window = recording_files.read_window(record)
    arrivals = recording_files.read_arrivals(record)
    stopped = json.loads((record / recording_files.WINDOW_FILE).read_text())["end"]  # Locust's stop, held late
    assert stopped - window.start > WINDOW_S + 0.3, "the stop was not held late: the test proves nothing"
    return recording_files.offered_in_window(arrivals, window.start, window.end), arrivals[
        arrivals >= window.start + WINDOW_S
    ]


@pytest.mark.parametrize("workers", [0, 1], ids=["one-process", "a-worker"])
def test_a_trace_offers_no_burst_past_the_windows_planned_end(silent_server: str, tmp_path: Path, workers: int) -> None:
    trace = _bursts(tmp_path / "bursts.csv")
    record = _run_late_stopped(tmp_path, silent_server, ["--trace", str(trace)], workers)
    offered, late = _offered(record)
    planned = read_trace(trace).arrivals_within(WINDOW_S)  # 4 bursts of 20 and 3 single arrivals: 83
    assert (offered, len(late)) == (planned, 0), f"offered {offered} of {planned} planned, {len(late)} past the end"

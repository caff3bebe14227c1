"""The harness's handling of its Locust processes, with real child processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.locust_processes import lost_workers


def test_a_worker_that_died_before_the_end_is_named_with_its_signal() -> None:
    """A worker killed (SIGKILL) or exiting non-zero is lost; one that exits 0 with the master is not."""
    programs = ["pass", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "raise SystemExit(3)"]
    workers = [subprocess.Popen([sys.executable, "-c", program]) for program in programs]
    assert lost_workers(workers) == ["worker1 killed by SIGKILL", "worker2 exited with code 3"]


def test_a_results_folder_another_load_run_holds_is_refused(tmp_path: Path) -> None:
    """Two loadtests into one --out each read both runs' records and printed their sum as their own figures."""
    import os

    import numpy as np

    from loadtest.harness import run_pattern
    from loadtest.load_settings import LoadSettings
    from loadtest.recording_files import results_folder_held
    from quantserve.errors import QuantserveError

    np.savez(tmp_path / "d.npz", x=np.zeros((4, 3), np.float32))
    out = tmp_path / "out"
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", duration_s=5.0)
    with results_folder_held(out), pytest.raises(QuantserveError) as caught:
        run_pattern(settings, out)
    assert str(caught.value) == (
        f"{out}: another load run (pid {os.getpid()}) is writing its results here; give this one another --out"
    )
    with results_folder_held(out):  # released: the next run takes it
        pass


def test_a_server_pid_that_is_not_the_listening_server_or_its_parent_is_refused() -> None:
    """`--server-pid 1` reported init's family as the server's CPU and memory; a negative pid failed in the sampling
    thread and the run still exited 0."""
    import os

    from loadtest.step_checks import check_server_pid
    from quantserve.errors import QuantserveError

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        check_server_pid(server.pid, server.pid, "127.0.0.1:8001")  # the server itself
        check_server_pid(os.getpid(), server.pid, "127.0.0.1:8001")  # its parent, as `quantserve serve` is
        check_server_pid(server.pid, None, "127.0.0.1:8001")  # the listener unseen: alive is enough
        with pytest.raises(QuantserveError, match=r"--server-pid 1: process 1 \(.*\) is not the server listening at "):
            check_server_pid(1, server.pid, "127.0.0.1:8001")
    finally:
        server.kill()
        server.wait()
    for pid in (-5, server.pid):
        with pytest.raises(QuantserveError, match=rf"^--server-pid {pid}: no such process$"):
            check_server_pid(pid, None, "127.0.0.1:8001")

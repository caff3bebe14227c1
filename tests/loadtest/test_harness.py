"""The harness's handling of its Locust processes, with real child processes."""

from __future__ import annotations

import subprocess
import sys

from loadtest.locust_processes import lost_workers


def test_a_worker_that_died_before_the_end_is_named_with_its_signal() -> None:
    """A worker killed (SIGKILL) or exiting non-zero is lost; one that exits 0 with the master is not."""
    programs = ["pass", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "raise SystemExit(3)"]
    workers = [subprocess.Popen([sys.executable, "-c", program]) for program in programs]
    assert lost_workers(workers) == ["worker1 killed by SIGKILL", "worker2 exited with code 3"]

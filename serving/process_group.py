"""Stop a server's process group and wait until every process of it is gone.

A Python backend stub shares tritonserver's process group; a SIGKILLed stub may still hold its memory and
shared memory for a moment after the signal, so "stopped" is said only once /proc shows none of the group running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

PROC_DIR = Path("/proc")
GROUP_EXIT_S = 5.0  # after SIGKILL, how long to wait for the server's process group to be gone


def terminate_group(process: subprocess.Popen[bytes], timeout_s: float, graceful: bool = True) -> list[int]:
    """Stop the server and its process group; returns the pids of the group still running after GROUP_EXIT_S."""
    try:
        if graceful and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout_s)
    finally:
        # Python backend stubs share the server's process group; none may outlive it, even on a second Ctrl-C.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return wait_group_gone(process.pid, GROUP_EXIT_S)


def wait_group_gone(pgid: int, timeout_s: float) -> list[int]:
    """Wait until no process of group `pgid` runs (SIGKILL is delivered, not awaited: a stub killed a moment ago
    may still hold its memory and shm); returns those still running at `timeout_s`. A zombie holds nothing."""
    deadline = time.monotonic() + timeout_s
    while (running := group_running(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


def group_running(pgid: int) -> list[int]:
    """The pids of process group `pgid` that have not ended, from /proc (none where there is no /proc)."""
    running = []
    for stat in PROC_DIR.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended while we looked
            continue
        state, _parent, group = text[text.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            running.append(int(stat.parent.name))
    return running

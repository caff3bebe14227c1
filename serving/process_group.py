"""Stop a server's process group and wait until every process of it is gone; have a child die with its parent.

A Python backend stub shares tritonserver's process group; a SIGKILLed stub may still hold its memory and
shared memory for a moment after the signal, so "stopped" is said only once /proc shows none of the group running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PROC_DIR = Path("/proc")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
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


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when this thread ends (PR_SET_PDEATHSIG), so a
    SIGKILLed `serve` leaves no tritonserver behind holding its ports; None elsewhere. Triton takes seconds
    to stop (and never does while SIGSTOPped): a `serve` started meanwhile waits for it (serving.port_holder).

    The signal fires when the *thread* that forked exits, not the process: it is set only from the main
    thread (where `serve` starts and restarts the server), never from a worker thread that may end first.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork: the child only calls it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect (SIGKILL: no handler before exec)
            os.kill(os.getpid(), signal.SIGKILL)

    return set_parent_death_signal

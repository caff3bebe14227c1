"""Loads still running when `quantserve serve` stops: waited for a few seconds, then abandoned with the server.

Measured (session 65, Triton 2.51): a SIGTERM while serve's watcher loaded a model with a slow `initialize` kept
tritonserver up for serve's whole 20 s stop timeout. Triton waits its exit timeout (30 s) for open HTTP connections,
and serve's own load request is one ("Timeout 30: Found 1 HTTP service connections"), then for the loading model;
serve killed it at 20 s and said only that it "had not exited". A load is now given LOAD_STOP_WAIT_S to end; one
still running is abandoned: the server and its model processes are killed by pid, and one line names the models.
Nothing is written into the repository by a load, so the version folders stay as they were.
"""

from __future__ import annotations

import threading
import time

LOAD_STOP_WAIT_S = 5.0  # how long a stop waits for the loads in flight before it abandons them


def loads_still_running(loading: dict[str, threading.Thread], wait_s: float = LOAD_STOP_WAIT_S) -> list[str]:
    """The models whose load thread is still alive after waiting for all of them together at most `wait_s`."""
    deadline = time.monotonic() + wait_s
    for thread in loading.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    return sorted(name for name, thread in loading.items() if thread.is_alive())


def abandoned_line(models: list[str], server_pid: int | None, wait_s: float = LOAD_STOP_WAIT_S) -> str:
    """One line saying which loads a stop abandoned, and that the repository was left as it was."""
    named = ", ".join(f"'{name}'" for name in models)
    which = f"model {named}" if len(models) == 1 else f"models {named}"
    return (
        f"abandoned the load of {which}, still loading {wait_s:g} s after the stop began: tritonserver (pid "
        f"{server_pid}) and its model processes killed; the version folders are as they were, loaded at the next start"
    )

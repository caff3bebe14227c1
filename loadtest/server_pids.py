"""The processes that listened on the server's gRPC port during a step, each with when it started, and which of them
listened when the measured window opened.

The pid read before Locust started was compared with the pid at the end: a tritonserver that `quantserve serve`
restarted during Locust's start (SIGKILLed 13 s before the window opened, its successor ready 0.4 s before) read
as "restarted during the measured window", its counters over a window one process served whole were dropped, and
the CPU/memory samples followed the dead pid. A process first seen listening before the window opened served it
from the start; one seen only after it replaced the server during it, though it may have started before: a successor
started 7 s before the window opened began listening 2.2 s into it (168 requests failed) and read as "restarted before
the measured window opened".
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

START_TIME_FIELD = 19  # /proc/PID/stat's field 22 (starttime, clock ticks since boot), counted after "pid (comm)"


LOOKUP_TRIES = 3  # a lookup that failed (a process gone while its sockets were read) is tried again


def listening_pid(url: str) -> int | None:
    """The pid of the local process listening on the gRPC port, for CPU/memory sampling. A lookup that failed
    (psutil reads every process's sockets; one ending meanwhile can fail it) is tried again: a None here reads as
    "no process at the end" of a window (`step_result`), the server's figures left out."""
    import psutil

    port = int(url.rsplit(":", 1)[-1])
    for _ in range(LOOKUP_TRIES):
        try:
            connections = psutil.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
        return None
    return None


def started_at(pid: int) -> float | None:
    """When process `pid` started (wall-clock seconds, to the kernel's clock tick), None where /proc cannot say.
    psutil's `create_time` adds the boot time in whole seconds (/proc/stat's btime), up to a second early: a server
    restarted just after the window opened would read as started before it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[START_TIME_FIELD])
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # no /proc (not Linux), the process gone
        return None
    return time.time() - since_boot


class Listener(NamedTuple):
    """A process seen listening on the server's port: when it started (`started_at`) and when it was first seen
    listening (wall-clock seconds, None where unknown); it began listening at or before then."""

    pid: int
    started: float | None
    listening: float | None


def window_pid(seen: Sequence[Listener], opened: float) -> int | None:
    """Which of the processes `seen` listening (the first listened before the run began) listened when the window
    opened at `opened`: the last of those that started, and were seen listening, before it. One started before
    but first seen listening after it, or either time unknown, counts as replacing the server during the window:
    a process started is not yet serving (tritonserver loads its models before it opens its gRPC port)."""
    if not seen:
        return None
    before = [pid for pid, started, listening in seen[1:] if _before(started, opened) and _before(listening, opened)]
    return before[-1] if before else seen[0].pid


def _before(at: float | None, opened: float) -> bool:
    return at is not None and at < opened


def replaced_before_window(seen: Sequence[Listener], opened: float) -> str | None:
    """One line when the server listening at the run's start was replaced before the window opened (None: it was
    not): the window measured its successor alone, so its counters and samples cover the window whole."""
    measured = window_pid(seen, opened)
    if not seen or measured == seen[0].pid:
        return None
    return (
        f"tritonserver restarted before the measured window opened, during Locust's start or the users' warm-ups "
        f"(pid {seen[0].pid} → pid {measured}); the window measured pid {measured}"
    )


@dataclass
class ServerPids:
    """The processes seen listening on `url`'s port, in the order seen (`Listener`)."""

    url: str
    seen: list[Listener] = field(default_factory=list)

    @classmethod
    def at_start(cls, url: str) -> ServerPids:
        """The process listening now, before the step's Locust processes start (none where the server is remote)."""
        pids = cls(url)
        pids.saw(listening_pid(url))
        return pids

    @property
    def first(self) -> int | None:
        return self.seen[0].pid if self.seen else None

    def saw(self, pid: int | None) -> None:
        """Note `pid` as seen listening now (where new), the lookup that found it just done."""
        if pid is not None and pid not in (known.pid for known in self.seen):
            self.seen.append(Listener(pid, started_at(pid), time.time()))

    def current(self) -> int | None:
        """The process listening now: the last one seen while it lives, else the port's listener, looked up only
        then (a lookup reads every process's sockets). None where none listened at the start (a remote server)."""
        if not self.seen:
            return None
        last = self.seen[-1].pid
        if _alive(last):
            return last
        pid = listening_pid(self.url)
        self.saw(pid)
        return pid

    def at_window(self, opened: float) -> int | None:
        """The process listening when the window opened (`window_pid`)."""
        return window_pid(self.seen, opened)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a killed server its supervisor has not reaped yet is a zombie: gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False

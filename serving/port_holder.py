"""Who holds a port `serve` wants, where it is a tritonserver that a `quantserve serve` now gone left behind.

A `serve` SIGKILLed (by a supervisor, the OOM killer) takes its tritonserver down through the parent-death signal
(serving.process_group), but Triton takes seconds to stop: a new `serve` started 0.5 s later was told its gRPC
port "is already in use" and exited 2 while the old server still shut down (session 52; it exited ~3 s later).
One that was stopped (SIGSTOP: its SIGTERM waits for SIGCONT) or hangs never exits, and held all three ports with
no name given. Such a server is waited for, and one that stays is named; it is never killed here.

The holder is found as the kernel knows it: the listening socket's inode in /proc/net/tcp(6), the process with
that socket open in /proc/PID/fd; the serve that left it is the endpoint record (serving.endpoints) that lists the
port and names a pid no longer running (a SIGKILLed serve never removes its record). A stale record is removed by
whoever reads it first (a load test's metrics lookup), so the server also carries its starter's pid in its
environment (STARTER_PID_ENV, read back from /proc/PID/environ), and a server left by a SIGKILLed tune or bench
is known the same way.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from optimizer.scratch import process_alive
from serving.endpoints import served_records

PROC_DIR = Path("/proc")
STARTER_PID_ENV = "QUANTSERVE_STARTER_PID"  # in tritonserver's environment: the process that started it
LEFT_EXIT_S = 10.0  # how long a left tritonserver gets to finish its shutdown before serve refuses its port
POLL_S = 0.1
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column
TRITONSERVER = "tritonserver"
STATES = {"R": "running", "S": "sleeping", "D": "waiting on I/O", "T": "stopped", "t": "stopped by a debugger"}
STOPPED = ("T", "t")  # a stopped process's pending SIGTERM waits for SIGCONT: it cannot exit by itself


@dataclass(frozen=True)
class LeftServer:
    """A tritonserver listening on a port, started by a process that is gone (`starter`: who, in a few words)."""

    pid: int
    starter: str

    def state(self) -> str | None:
        """Its /proc state letter (R, S, D, T…), or None once it has ended (a zombie holds no port)."""
        return process_state(self.pid)

    def still_running(self) -> str:
        """The refusal's words: who holds the port, who left it, and the state it is in."""
        letter = self.state() or "?"
        return (
            f"is held by tritonserver pid {self.pid}, left by {self.starter} (gone) and still running "
            f"(state {letter}: {STATES.get(letter, 'unknown')})"
        )


def starter_env() -> dict[str, str]:
    """What a tritonserver started by this process carries in its environment, so it is known once we are gone."""
    return {STARTER_PID_ENV: str(os.getpid())}


def left_tritonserver(port: int) -> LeftServer | None:
    """The tritonserver listening on `port` whose starter is gone: named in its environment, or (a server started
    before servers carried it) the serve a record listing the port names."""
    for pid in listener_pids(port):
        if _command_name(pid) == TRITONSERVER:
            return _left(pid, _starter_pid(pid), _gone_serves(port))
    return None


def _left(pid: int, starter: int | None, gone_serves: list[int]) -> LeftServer | None:
    if starter is None:
        return LeftServer(pid, f"`quantserve serve` pid {gone_serves[0]}") if gone_serves else None
    if process_alive(starter):
        return None
    return LeftServer(pid, f"`quantserve serve` pid {starter}" if starter in gone_serves else f"process {starter}")


def wait_gone(left: LeftServer, port_free: Callable[[], bool]) -> bool:
    """Whether the port came free within LEFT_EXIT_S as the left server exits; False at once for a stopped one."""
    deadline = time.monotonic() + LEFT_EXIT_S
    while not port_free():
        if left.state() in STOPPED or time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def listener_pids(port: int) -> list[int]:
    """The processes with a socket listening on TCP `port` open (any address), from /proc; [] where none or no /proc."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return []
    pids = []
    for fd_dir in PROC_DIR.glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):  # ended while we looked, or another user's
            if any(_link(fd) in inodes for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
    return sorted(pids)


def process_state(pid: int) -> str | None:
    """The state letter /proc gives `pid`, or None where it has ended (or is a zombie)."""
    try:
        stat = (PROC_DIR / str(pid) / "stat").read_text()
    except OSError:
        return None
    state = stat.rpartition(")")[2].split()[:1]
    return state[0] if state and state[0] not in ("Z", "X") else None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC_DIR / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()  # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(fields[9])
    return inodes


def _link(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:
        return ""


def _command_name(pid: int) -> str:
    try:
        return (PROC_DIR / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def _gone_serves(port: int) -> list[int]:
    """The serves no longer running whose records list `port` (a SIGKILLed serve never removes its record)."""
    records = [served for _path, served in served_records()]
    listing = [served.pid for served in records if port in (served.grpc_port, served.http_port, served.metrics_port)]
    return [pid for pid in listing if not process_alive(pid)]


def _starter_pid(pid: int) -> int | None:
    """The pid its environment names as its starter (STARTER_PID_ENV), or None."""
    try:
        environ = (PROC_DIR / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = f"{STARTER_PID_ENV}=".encode()
    values = [item.removeprefix(prefix) for item in environ if item.startswith(prefix)]
    return int(values[0]) if values and values[0].isdigit() else None

"""Ports for the servers and Locust masters the tool starts itself (tune's trials, bench, the demo, a load test's
master): any the OS says is free, or, where a machine's firewall or its neighbours allow only some, ones free in
the range `QUANTSERVE_PORT_RANGE` (`LO-HI`, inclusive; the `--port-range` flag sets it for one command, and
`QUANTSERVE_PORT_RANGE_FROM` to name the flag, not the variable, where the range runs short).

The ports one server needs at once are asked for together (`free_ports`), so they always differ: asked one by one
from a range, each came back as the first bindable port, and once the range's free ports had all been handed
(servers stop; their ports come free), a server got one port three times. The OS hands out an ephemeral port
(bind to port 0) and does not hand it again soon; a range has no such memory, so ports this process already handed
out are taken last. The search starts at a random place in the range so two processes sharing it rarely race.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket

from quantserve.errors import QuantserveError
from serving.bind_host import family
from serving.port_holder import left_tritonserver, wait_gone

PORT_RANGE_ENV = "QUANTSERVE_PORT_RANGE"
PORT_RANGE_FROM_ENV = "QUANTSERVE_PORT_RANGE_FROM"  # "--port-range" while the flag set PORT_RANGE_ENV (port_flags)
RANGE_FLAG = "--port-range"
WIDEN = "widen the range (a server takes 3 at once, a load test's Locust master 1)"
_handed: set[int] = set()  # ports free_ports returned from a range in this process


def parse_port_range(text: str, source: str = "--port-range") -> range:
    """`LO-HI` (inclusive, 1–65535, LO ≤ HI) as a range; anything else is one line naming `source` and the value."""
    low, sep, high = text.strip().partition("-")
    try:
        ports = range(int(low), int(high) + 1) if sep else None
    except ValueError:
        ports = None
    if ports is None or not ports or ports.start < 1 or ports.stop > 65536:
        raise QuantserveError(f"{source} {text!r} is not a port range: give LO-HI, e.g. 24000-24999 (ports 1–65535)")
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now: the OS's choice, or one in QUANTSERVE_PORT_RANGE when it is set."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` different ports free on `host` right now (the OS's choice, or from QUANTSERVE_PORT_RANGE when it is
    set: ones not handed before first), or one line naming the range and how many of its ports are free."""
    text = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not text:
        return _os_ports(count, host)
    found = _range_ports(count, host, text)
    _handed.update(found)
    return found


def check_free_ports(count: int, host: str = "127.0.0.1") -> None:
    """Refuse, in `free_ports`' line, a range that has fewer than `count` ports free now; hands none."""
    text = os.environ.get(PORT_RANGE_ENV, "").strip()
    if text:
        _range_ports(count, host, text)


def range_source(text: str) -> str:
    """The range as the user gave it: `--port-range LO-HI`, or `QUANTSERVE_PORT_RANGE=LO-HI` set by them."""
    return f"{RANGE_FLAG} {text}" if _from_flag() else f"{PORT_RANGE_ENV}={text}"


def _from_flag() -> bool:
    return os.environ.get(PORT_RANGE_FROM_ENV) == RANGE_FLAG


def _os_ports(count: int, host: str) -> list[int]:
    """`count` ephemeral ports, bound all at once so the OS hands each once."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _range_ports(count: int, host: str, text: str) -> list[int]:
    ports = parse_port_range(text, RANGE_FLAG if _from_flag() else PORT_RANGE_ENV)
    offset = random.randrange(len(ports))
    order = [ports[(offset + i) % len(ports)] for i in range(len(ports))]
    found: list[int] = []
    for port in [p for p in order if p not in _handed] + [p for p in order if p in _handed]:
        found += [port] if _bindable(host, port) else []
        if len(found) == count:
            return found
    size = f"{len(ports)} port{'s' if len(ports) != 1 else ''}"
    if count == 1:
        raise QuantserveError(f"no free port on {host} in {range_source(text)} ({size}, all in use): {WIDEN}")
    raise QuantserveError(
        f"no {count} free ports on {host} in {range_source(text)} ({size}, {len(found)} of them free): {WIDEN}"
    )


def _bindable(host: str, port: int) -> bool:
    """Bindable as the servers bind (tritonserver's gRPC, HTTP and metrics, Locust's ZeroMQ: SO_REUSEADDR): a port a
    stopped server left connections of in TIME_WAIT is theirs to take (tune's re-measure found 2 of its trial
    server's 3 ports "in use" for a minute after it stopped); on Linux a port something listens on still is not."""
    return _bind_error(host, port) is None


def check_port_free(host: str, port: int, role: str, shown: str | None = None) -> None:
    """Raise a QuantserveError naming the port if something already listens on it, or --host (`shown`: how to name
    it, default `host`) where the address is at fault: not one of this machine's, or of a family it lacks. A
    tritonserver left by a `quantserve serve` that is gone (SIGKILLed: its server still shutting down) is waited for,
    up to serving.port_holder.LEFT_EXIT_S, and named with its state where it stays (stopped, hung); never killed."""
    error = _bind_error(host, port)
    if error is not None and error.errno == errno.EADDRINUSE:
        error = _wait_left_server(host, port, role)
    if error is None:
        return
    if error.errno in HOST_ERRORS or isinstance(error, socket.gaierror):
        raise QuantserveError(
            f"--host {shown or host} cannot be bound on this machine ({role} port {port}: {error.strerror}); "
            "give one of its addresses with --host"
        ) from error
    reason = "is already in use" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error.strerror})"
    raise QuantserveError(f"{role} port {port} on {host} {reason}; choose another with --{role}-port") from error


HOST_ERRORS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)  # the address is not this machine's / its family absent


def _wait_left_server(host: str, port: int, role: str) -> OSError | None:
    """The bind's error (None: free) once a left tritonserver holding the port has exited; a refusal naming it
    where it stays; the bind's error at once where the holder is anything else."""
    left = left_tritonserver(port)
    if left is not None and not wait_gone(left, lambda: _bindable(host, port)):
        raise QuantserveError(
            f"{role} port {port} on {host} {left.still_running()}; stop it (kill {left.pid}) or choose another port"
        )
    return _bind_error(host, port)


def _bind_error(host: str, port: int) -> OSError | None:
    """Why `host`:`port` cannot be bound as the servers bind it (SO_REUSEADDR), or None where it can."""
    try:
        sock = socket.socket(family(host), socket.SOCK_STREAM)
    except OSError as exc:  # no IPv6 on this machine
        return exc
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def accepts_connections(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something listens on `host`:`port` now (a TCP connect succeeds)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False

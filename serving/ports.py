"""Ports for the servers and Locust masters the tool starts itself (tune's trials, bench, the demo, a load test's
master): any the OS says is free, or, where a machine's firewall or its neighbours allow only some, one free in
the range `QUANTSERVE_PORT_RANGE` (`LO-HI`, inclusive; the `--port-range` flag sets it for one command).

The OS hands out an ephemeral port (bind to port 0) and does not hand it again soon; a range has no such memory,
so ports this process already handed out are skipped while others in the range are free (three asked for one
server would otherwise be the same port), and are reused once the range has no other (servers stop; their
ports come free). The search starts at a random place in the range so two processes sharing it rarely race.
"""

from __future__ import annotations

import errno
import os
import random
import socket

from quantserve.errors import QuantserveError

PORT_RANGE_ENV = "QUANTSERVE_PORT_RANGE"
_handed: set[int] = set()  # ports free_port returned from a range in this process


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
    text = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not text:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    ports = parse_port_range(text, PORT_RANGE_ENV)
    offset = random.randrange(len(ports))
    order = [ports[(offset + i) % len(ports)] for i in range(len(ports))]
    for port in [p for p in order if p not in _handed] + [p for p in order if p in _handed]:
        if _bindable(host, port):
            _handed.add(port)
            return port
    raise QuantserveError(
        f"no free port on {host} in {PORT_RANGE_ENV}={text} ({len(ports)} ports, all in use): widen the range "
        "(a server takes 3, a load test's Locust master 1)"
    )


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_port_free(host: str, port: int, role: str) -> None:
    """Raise a QuantserveError naming the port if something already listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise QuantserveError(f"{role} port {port} on {host} {reason}; choose another with --{role}-port") from exc

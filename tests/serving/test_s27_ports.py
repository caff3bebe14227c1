"""A server's three ports from a short `--port-range` / QUANTSERVE_PORT_RANGE always differ, and a range that runs
short is named as the user gave it.

Before: ports were asked for one by one, each the first bindable one in the range; once every free port of the range
had been handed (tune's trial server stopped, its re-measure server started), one server got one port three times:
tune searched 50 s, deployed its winner, then failed with "the three ports must differ: --grpc-port 26216,
--http-port 26216, …", flags the user never gave, and the refusal of an exhausted range named QUANTSERVE_PORT_RANGE
where the user had passed --port-range."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantserve.cli.port_flags import port_range_applied
from quantserve.errors import QuantserveError
from serving.ports import PORT_RANGE_ENV, free_port
from serving.server import ServerOptions

WIDEN = "widen the range (a server takes 3 at once, a load test's Locust master 1)"


@contextlib.contextmanager
def held(*ports: int) -> Iterator[None]:
    """Ports in use by another process, as far as a bind can tell."""
    with contextlib.ExitStack() as stack:
        for port in ports:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield


def test_a_server_on_a_spent_range_still_gets_three_different_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PORT_RANGE_ENV, "21310-21312")
    first = ServerOptions.on_free_ports(tmp_path)  # hands every port of the range
    assert sorted(first.ports.values()) == [21310, 21311, 21312]
    for _ in range(10):  # the first server stopped: its ports are free again (each search starts at a random port)
        assert sorted(ServerOptions.on_free_ports(tmp_path).ports.values()) == [21310, 21311, 21312]


def test_without_a_range_the_os_hands_three_different_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.ports import free_ports

    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    assert len(set(free_ports(3))) == 3


def test_a_range_with_too_few_free_ports_for_a_server_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving.ports import PORT_RANGE_FROM_ENV, free_ports

    monkeypatch.setenv(PORT_RANGE_ENV, "21314-21316")
    monkeypatch.delenv(PORT_RANGE_FROM_ENV, raising=False)
    with held(21315), pytest.raises(QuantserveError) as refused:
        free_ports(3)
    assert str(refused.value) == (
        f"no 3 free ports on 127.0.0.1 in QUANTSERVE_PORT_RANGE=21314-21316 (3 ports, 2 of them free): {WIDEN}"
    )


def test_a_range_the_flag_gave_is_named_as_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    flag = argparse.Namespace(port_range="21318-21318")
    with held(21318), port_range_applied(flag), pytest.raises(QuantserveError) as refused:
        free_port()
    assert not [name for name in os.environ if name.startswith(PORT_RANGE_ENV)]  # set for the command only
    assert str(refused.value) == f"no free port on 127.0.0.1 in --port-range 21318-21318 (1 port, all in use): {WIDEN}"


def test_a_port_a_stopped_server_left_in_time_wait_is_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its connections linger a minute after it stops; tritonserver binds with SO_REUSEADDR, so the port is its."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 21340))
        listener.listen()
        with socket.create_connection(("127.0.0.1", 21340)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server's side closes first: 127.0.0.1:21340 is left in TIME_WAIT
            client.recv(1)
    monkeypatch.setenv(PORT_RANGE_ENV, "21340-21342")
    assert sorted(ServerOptions.on_free_ports(tmp_path).ports.values()) == [21340, 21341, 21342]

"""Ports from a range: `--port-range` / QUANTSERVE_PORT_RANGE holds every port the tool opens itself to LO-HI."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from test_server import DOUBLE_MODEL, write_python_model

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.ports import PORT_RANGE_ENV, free_port, parse_port_range
from serving.server import ServerOptions, TritonServer

RANGE = range(21000, 21100)  # away from the OS's ephemeral ports (32768 up), where the suite's other servers sit


@pytest.mark.parametrize("text", ["24000", "24010-24000", "0-10", "60000-70000", "a-b", "-"])
def test_a_range_that_is_not_one_is_named(text: str) -> None:
    with pytest.raises(QuantserveError, match=rf"--port-range '{text}' is not a port range: give LO-HI"):
        parse_port_range(text)


def test_ports_come_from_the_range_each_once_skipping_taken_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_RANGE_ENV, "21200-21203")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 21202))
        taken.listen()
        ports = [free_port() for _ in range(3)]
        assert sorted(ports) == [21200, 21201, 21203]  # three different ports, none the one in use
        assert free_port() in ports  # the range spent: a port handed before and free again is reused
        monkeypatch.setenv(PORT_RANGE_ENV, "21202-21202")
        with pytest.raises(QuantserveError, match=r"no free port on 127.0.0.1 in QUANTSERVE_PORT_RANGE=21202-21202"):
            free_port()


@pytest.mark.e2e
def test_a_server_on_free_ports_listens_inside_the_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_python_model(tmp_path, "double", DOUBLE_MODEL)
    monkeypatch.setenv(PORT_RANGE_ENV, f"{RANGE.start}-{RANGE.stop - 1}")
    with TritonServer(ServerOptions.on_free_ports(tmp_path, log_path=tmp_path / "log.txt")) as server:
        assert all(port in RANGE for port in server.options.ports.values()), server.options.ports
        assert server.loaded_models() == {"double": ["1"]}


def test_the_flag_is_checked_and_holds_for_its_command_only(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.pop(PORT_RANGE_ENV, None)
    code = main(["bench", "--quick", "--port-range", "9-3", "--out", "/nonexistent"])
    assert code == 2 and "--port-range '9-3' is not a port range" in capsys.readouterr().err
    main(["doctor"])
    assert PORT_RANGE_ENV not in os.environ


def test_the_range_is_set_while_the_command_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Seen from inside the command (its func), then gone."""
    import quantserve.cli.commands.bench as bench

    seen: list[str | None] = []
    monkeypatch.setattr(bench, "run", lambda args: seen.append(os.environ.get(PORT_RANGE_ENV)) or 0)
    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    assert main(["bench", "--quick", "--port-range", "21000-21099", "--out", str(tmp_path)]) == 0
    assert seen == ["21000-21099"] and PORT_RANGE_ENV not in os.environ

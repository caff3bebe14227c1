"""A tritonserver left holding serve's ports by a `quantserve serve` that is gone is waited for, or named.

Session 52's probe: `serve` SIGKILLed 6 s into a load test, a new `serve` on the same ports 0.5 s later said
"grpc port … is already in use; choose another with --grpc-port" and exited 2 while the old tritonserver (SIGTERMed
by its parent-death signal) still shut down; it exited ~3 s later. One SIGSTOPped before the kill held all three
ports for good, and the refusal named no one. The holders here are plain processes named `tritonserver` (as
/proc/PID/comm shows it) holding a listening socket, with a record of a serve that is gone; one test uses the real
server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving import port_holder
from serving.endpoints import ServedEndpoints, write_record
from serving.port_holder import STARTER_PID_ENV
from serving.ports import check_port_free

# Binds a port of the OS's choice, prints it, and on SIGTERM takes argv[2] seconds to stop ("never": it ignores it).
HOLDER = """
import ctypes, signal, socket, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: /proc/PID/comm
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
def stop(signum, frame):
    if sys.argv[2] != "never":
        time.sleep(float(sys.argv[2]))
        sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print(sock.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture
def holders() -> Iterator[Callable[..., tuple[subprocess.Popen[str], int]]]:
    """Start a holder: (process, the port it listens on); each is killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(
        name: str = "tritonserver", stop_s: str = "1.5", starter: int | None = None
    ) -> tuple[subprocess.Popen[str], int]:
        env = {**os.environ, **({STARTER_PID_ENV: str(starter)} if starter else {})}
        command = [sys.executable, "-c", HOLDER, name, stop_s]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        started.append(process)
        return process, int(process.stdout.readline())  # type: ignore[union-attr]

    yield start
    for process in started:
        process.kill()
        process.wait()


def gone_pid() -> int:
    """The pid of a process that has ended (stands in for the SIGKILLed serve)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def record(serve_pid: int, grpc_port: int, metrics_port: int = 1) -> Path:
    """The record a SIGKILLed serve leaves (its HTTP port next to the gRPC one)."""
    return write_record(ServedEndpoints(serve_pid, "/srv/repo", "127.0.0.1", grpc_port, grpc_port + 1, metrics_port))


def test_a_tritonserver_still_stopping_after_its_serve_was_killed_is_waited_for(holders: Callable[..., tuple]) -> None:
    """The restart right after a crash must just work: the port is taken once the old server has exited."""
    holder, port = holders(stop_s="1.5")
    record(gone_pid(), port)
    holder.send_signal(signal.SIGTERM)  # what the parent-death signal sends it
    started = time.monotonic()
    check_port_free("127.0.0.1", port, "grpc")
    assert 1.0 < time.monotonic() - started < port_holder.LEFT_EXIT_S
    assert holder.wait(timeout=1) == 0


def test_a_stopped_one_is_refused_at_once_naming_it_and_the_serve_that_left_it(
    holders: Callable[..., tuple], tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable
) -> None:
    """SIGSTOPped before its serve was killed: its SIGTERM waits for SIGCONT, so waiting gains nothing."""
    holder, port = holders()
    serve_pid = gone_pid()
    record(serve_pid, port)
    holder.send_signal(signal.SIGSTOP)
    holder.send_signal(signal.SIGTERM)
    (tmp_path / "repo").mkdir()
    ports = ["--http-port", str(free_port_factory()), "--metrics-port", str(free_port_factory())]
    started = time.monotonic()
    assert main(["serve", "--repo", str(tmp_path / "repo"), "--grpc-port", str(port), *ports]) == 2
    assert time.monotonic() - started < port_holder.LEFT_EXIT_S  # not waited for
    assert capsys.readouterr().err == (
        f"quantserve: error: grpc port {port} on 127.0.0.1 is held by tritonserver pid {holder.pid}, left by "
        f"`quantserve serve` pid {serve_pid} (gone) and still running (state T: stopped); stop it (kill {holder.pid}) "
        "or choose another port\n"
    )
    assert holder.poll() is None  # never killed by serve


def test_a_hung_one_is_refused_once_the_wait_is_over(
    holders: Callable[..., tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(port_holder, "LEFT_EXIT_S", 0.5)
    holder, port = holders(stop_s="never")
    serve_pid = gone_pid()
    record(serve_pid, port - 1)  # the record's HTTP port: records are named by the gRPC port
    holder.send_signal(signal.SIGTERM)
    message = (
        f"http port {port} on 127.0.0.1 is held by tritonserver pid {holder.pid}, left by `quantserve serve` pid "
        f"{serve_pid} (gone) and still running (state S: sleeping); stop it (kill {holder.pid}) or choose another port"
    )
    with pytest.raises(QuantserveError) as refused:
        check_port_free("127.0.0.1", port, "http")
    assert str(refused.value) == message
    assert holder.poll() is None


def test_a_server_whose_starter_is_gone_is_known_by_its_environment_without_a_record(
    holders: Callable[..., tuple],
) -> None:
    """A stale record is removed by whoever reads it first (a load test's metrics lookup); a tune or bench killed
    leaves a server with no record at all."""
    starter = gone_pid()
    holder, port = holders(starter=starter)
    holder.send_signal(signal.SIGSTOP)
    with pytest.raises(QuantserveError) as refused:
        check_port_free("127.0.0.1", port, "grpc")
    assert f"is held by tritonserver pid {holder.pid}, left by process {starter} (gone) and still" in str(refused.value)


@pytest.mark.parametrize("case", ["another program", "a live serve", "no record", "a live starter"])
def test_any_other_holder_is_refused_at_once_as_before(holders: Callable[..., tuple], case: str) -> None:
    """A live starter wins over a stale record: the port is another server's now."""
    name = "python3" if case == "another program" else "tritonserver"
    holder, port = holders(name=name, starter=os.getpid() if case == "a live starter" else None)
    if case != "no record":
        record(os.getpid() if case == "a live serve" else gone_pid(), port)
    holder.send_signal(signal.SIGTERM)
    started = time.monotonic()
    with pytest.raises(QuantserveError) as refused:
        check_port_free("127.0.0.1", port, "grpc")
    assert str(refused.value) == f"grpc port {port} on 127.0.0.1 is already in use; choose another with --grpc-port"
    assert time.monotonic() - started < port_holder.LEFT_EXIT_S  # not waited for


@pytest.mark.e2e
def test_a_serve_started_after_one_was_killed_waits_for_its_tritonserver_or_names_it(
    dense_build: Path, tmp_path: Path, run_dir: Path, free_port_factory: Callable[[], int]
) -> None:
    """The probe's case on the real server: its tritonserver SIGSTOPped, the serve SIGKILLed; a new serve's check is
    refused naming both; once SIGCONT lets the server take its parent-death SIGTERM, the port is waited for."""
    from quantserve.cli.commands.serve import check_ports
    from serving.ports import PORT_RANGE_ENV, free_ports
    from serving.server import ServerOptions

    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "4"]) == 0
    # a machine shared under QUANTSERVE_PORT_RANGE keeps to it
    ports = free_ports(3) if os.environ.get(PORT_RANGE_ENV) else [free_port_factory() for _ in range(3)]
    flags = ["--grpc-port", str(ports[0]), "--http-port", str(ports[1]), "--metrics-port", str(ports[2])]
    command = [sys.executable, "-m", "quantserve", "serve", "--repo", str(repo), "--startup-timeout", "60", *flags]
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    triton: psutil.Process | None = None
    try:
        seen = _read_until_ready(serve)
        assert (run_dir / f"serve-{ports[0]}.json").is_file(), seen
        (triton,) = [p for p in psutil.Process(serve.pid).children() if p.name() == "tritonserver"]
        triton.suspend()
        serve.kill()
        serve.wait()
        options = ServerOptions(repo, grpc_port=ports[0], http_port=ports[1], metrics_port=ports[2])
        with pytest.raises(QuantserveError) as refused:
            check_ports(options)
        assert str(refused.value) == (
            f"grpc port {ports[0]} on 127.0.0.1 is held by tritonserver pid {triton.pid}, left by `quantserve serve` "
            f"pid {serve.pid} (gone) and still running (state T: stopped); stop it (kill {triton.pid}) or choose "
            "another port"
        )
        triton.resume()  # its parent-death SIGTERM, pending while it was stopped, now stops it
        check_ports(options)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if triton is not None and triton.is_running():  # with its model's stub: its own process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(triton.pid, signal.SIGKILL)


def _read_until_ready(serve: subprocess.Popen[str]) -> list[str]:
    seen = []
    for line in serve.stdout:  # type: ignore[union-attr]
        seen.append(line.rstrip("\n"))
        if seen[-1] == "press Ctrl-C to stop":
            return seen
    raise AssertionError(f"serve ended before it was ready: {seen}")

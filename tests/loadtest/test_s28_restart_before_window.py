"""A tritonserver replaced BEFORE the measured window opened is no restart during it (`loadtest.server_pids`).

A prober (pl8) SIGKILLed tritonserver during Locust's start; `quantserve serve` restarted it, ready 0.4 s before the
window opened: 13 700 requests, none failed, yet "tritonserver restarted during the measured window (pid 14041 …
pid 19618)", avg batch and queue time dropped, and the CPU/memory samples followed the dead pid. The pid read before
Locust started was compared with the one at the end; now the one listening when the window opened is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from restarted_server import ServerOf

import loadtest.harness
from loadtest.recording_files import Window
from loadtest.server_pids import Listener, ServerPids, replaced_before_window, started_at, window_pid
from loadtest.step_result import _server_restarted
from loadtest.utilization import UtilizationSampler
from quantserve.cli import main

OPENED = 100.0  # the window opened at this wall time


def test_the_pid_compared_is_the_one_listening_when_the_window_opened() -> None:
    window = Window(OPENED, OPENED + 20, None, None)
    during_warm_up = [Listener(14041, 10.0, 11.0), Listener(19618, OPENED - 3, OPENED - 0.4)]  # pl8's: 0.4 s before
    assert window_pid(during_warm_up, OPENED) == 19618
    assert _server_restarted(window_pid(during_warm_up, OPENED), 19618, window, "m") is None
    assert replaced_before_window(during_warm_up, OPENED) == (
        "tritonserver restarted before the measured window opened, during Locust's start or the users' warm-ups "
        "(pid 14041 → pid 19618); the window measured pid 19618"
    )
    during_window = [Listener(14041, 10.0, 11.0), Listener(19618, OPENED + 0.05, OPENED + 2)]  # still said as before
    assert window_pid(during_window, OPENED) == 14041 and replaced_before_window(during_window, OPENED) is None
    assert _server_restarted(14041, 19618, window, "m") == (
        "pid 14041 listened on its port at the start, pid 19618 at the end"
    )
    both = [
        Listener(14041, 10.0, 11.0),
        Listener(19618, OPENED - 3, OPENED - 1),
        Listener(20001, OPENED + 5, OPENED + 6),
    ]
    assert _server_restarted(window_pid(both, OPENED), 20001, window, "m") == (
        "pid 19618 listened on its port at the start, pid 20001 at the end"
    )
    assert "no process at the end" in (_server_restarted(window_pid(during_warm_up, OPENED), None, window, "m") or "")


def test_a_process_of_unknown_start_counts_as_replacing_the_server_during_the_window() -> None:
    assert window_pid([Listener(7, None, 1.0), Listener(8, None, 2.0)], OPENED) == 7  # the first's: it listened first
    assert window_pid([Listener(7, 1.0, 1.0), Listener(8, 2.0, None)], OPENED) == 7  # first seen listening: unknown
    assert window_pid([], OPENED) is None and replaced_before_window([], OPENED) is None


def test_a_successor_started_before_the_window_but_listening_only_in_it_restarted_during_it() -> None:
    """pl9's fault 6: killed in the warm-up, the successor started 7.2 s before the window opened, its gRPC port open
    2.2 s into it (168 requests failed, outage 0.00-2.40 s), yet "restarted before the measured window opened … the
    window measured pid 16865": its start time was compared, not when it began listening."""
    window = Window(OPENED, OPENED + 20, None, None)
    late = [Listener(9349, 10.0, 11.0), Listener(16865, OPENED - 7.2, OPENED + 2.3)]
    assert window_pid(late, OPENED) == 9349 and replaced_before_window(late, OPENED) is None
    assert _server_restarted(window_pid(late, OPENED), 16865, window, "m") == (
        "pid 9349 listened on its port at the start, pid 16865 at the end"
    )


def test_a_successor_is_first_seen_listening_when_the_port_lookup_finds_it(
    listener: Callable[[], subprocess.Popen[str]],
) -> None:
    first = listener()
    pids = ServerPids.at_start(f"127.0.0.1:{listener.port}")  # type: ignore[attr-defined]
    first.kill()
    first.wait()
    second = listener()
    looked = time.time()
    assert pids.current() == second.pid
    seen = pids.seen[-1]
    assert seen.started is not None and seen.listening is not None and seen.listening >= looked
    assert pids.at_window(looked) == first.pid  # started before, seen listening only after: not the window's
    assert pids.at_window(seen.listening + 1) == second.pid


def test_start_times_are_read_to_the_clock_tick() -> None:
    """psutil's create_time adds the boot time in whole seconds, up to 1 s early: a server restarted just after the
    window opened read as started before it."""
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = started_at(child.pid)
        assert started is not None and before - 0.05 <= started <= time.time() + 0.05
    finally:
        child.kill()
        child.wait()
    assert started_at(child.pid) is None


@pytest.fixture
def listener(free_port_factory: Callable[[], int]) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Start a process listening on one port (the same port each call); every one is killed at the end."""
    port, started = free_port_factory(), list[subprocess.Popen[str]]()
    code = (
        "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True); time.sleep(60)"
    )

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "up\n"
        return process

    start.port = port  # type: ignore[attr-defined]
    yield start
    for process in started:
        process.kill()
        process.wait()


def test_the_samples_follow_the_process_that_listens_in_the_dead_ones_place(
    listener: Callable[[], subprocess.Popen[str]],
) -> None:
    first = listener()
    pids = ServerPids.at_start(f"127.0.0.1:{listener.port}")  # type: ignore[attr-defined]
    assert pids.first == first.pid
    with UtilizationSampler(first.pid, interval_s=0.05, follow=pids) as sampler:
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = listener()
        _wait(lambda: pids.seen[-1][0] == second.pid)
        switched = time.time()
        _wait(lambda: sum(1 for row in sampler._rows if row["t"] > switched and "process_rss_mb" in row) >= 2)
    assert [seen.pid for seen in pids.seen] == [first.pid, second.pid]
    util = sampler.result(switched, time.time())
    assert util.process_rss_mb_max is not None and util.process_rss_mb_max > 1


def test_a_given_parent_pid_is_sampled_whoever_listens(listener: Callable[[], subprocess.Popen[str]]) -> None:
    """--server-pid of `quantserve serve`: its family holds whichever tritonserver it restarted; the listener is
    followed all the same, for the pid the window measured."""
    first = listener()
    pids = ServerPids.at_start(f"127.0.0.1:{listener.port}")  # type: ignore[attr-defined]
    sampler = UtilizationSampler(os.getpid(), follow=pids)  # the listeners' parent; never started: no thread
    assert sampler._server_root() == os.getpid()
    first.kill()
    first.wait()
    second = listener()
    assert sampler._server_root() == os.getpid() and pids.seen[-1][0] == second.pid


def _wait(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "not within the wait's bound"
        time.sleep(0.02)


@pytest.mark.e2e
def test_a_server_restarted_before_the_window_keeps_its_counters(
    serve_mlp: ServerOf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server killed and restarted on its ports after the run read its pid, before Locust started."""
    server, data = serve_mlp(("mlp",))
    killed, run_locust = server.pid, loadtest.harness._run_locust

    def restart_first(*args: Any) -> list[str]:
        server.stop(kill=True)
        server.start()
        return run_locust(*args)

    monkeypatch.setattr(loadtest.harness, "_run_locust", restart_first)
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--users", "2"]
    argv += ["--duration", "2s", "--metrics-url", server.metrics_url, "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    result = json.loads((tmp_path / "out" / "load-mlp.json").read_text())["results"][0]
    assert result["server_restarted"] is None and result["server"]["executions"] > 0, result["server_restarted"]
    assert result["warm_up"]["server_restarted"].endswith(
        f"(pid {killed} → pid {server.pid}); the window measured pid {server.pid}"
    )
    assert result["utilization"]["process_cpu_pct_mean"] is not None  # the new server's, not the dead one's
    printed = capsys.readouterr()
    assert "mlp @ 2 users: tritonserver restarted before the measured window opened" in printed.out + printed.err

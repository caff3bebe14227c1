"""A restarted tritonserver that comes back unready while a model still loads (probe 65A, WRONG 2).

`kill -9` under load, then at once `deploy --url`: the deploy's load began as the restart's own start ended, so
/v2/health/ready was false (Triton 2.51's strict readiness holds it false while any version loads or unloads), and
serve said "tritonserver back … but not ready (/v2/health/ready false)", naming nothing, and never spoke again
though the server was ready seconds later. Now the line names what is loading, and serve says when it is ready.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_slow_model_loads import deployed_repo, python_model

from quantserve.errors import QuantserveError
from serving.control import ControlClient
from serving.model_states import restarted_line
from serving.restart_readiness import RestartReadiness, versions_in_flight
from serving.restarts import RestartPolicy
from serving.server import ServerOptions
from serving.supervisor import Supervisor

SLOW_S = 6  # the new version's initialize: long against the restart's check, short for the suite
LOADING = [
    {"name": "dense", "version": "1", "state": "READY"},
    {"name": "digits_int8", "version": "1", "state": "READY"},
    {"name": "digits_int8", "version": "3", "state": "LOADING"},
]


def test_the_line_names_the_versions_still_loading() -> None:
    line = restarted_line(20428, 5.0, False, {}, versions_in_flight(LOADING))
    assert line == (
        "tritonserver back (pid 20428) 5.0 s after restart but not ready yet (/v2/health/ready false while model "
        "'digits_int8' version 3 is loading); a line follows once it is ready"
    )


def test_several_in_flight_and_none_are_named() -> None:
    index = [*LOADING, {"name": "slow", "version": "1", "state": "UNLOADING"}]
    assert versions_in_flight(index) == [
        "model 'digits_int8' version 3 is loading",
        "model 'slow' version 1 is unloading",
    ]
    assert restarted_line(7, 1.0, False, {}, []) == (
        "tritonserver back (pid 7) 1.0 s after restart but not ready yet (/v2/health/ready false; no model failed to "
        "load and none is loading); a line follows once it is ready"
    )


class FakeControl:
    """Answers /v2/health/ready and the repository index as a test sets them."""

    def __init__(self) -> None:
        self.ready = False
        self.index: list[dict[str, Any]] = LOADING

    def is_ready(self) -> bool:
        return self.ready

    def repository_index(self) -> list[dict[str, Any]]:
        return self.index


def test_ready_later_is_said_once_and_a_long_wait_names_what_still_loads() -> None:
    lines: list[str] = []
    control = FakeControl()
    watch = RestartReadiness(timeout_s=60.0, log=lines.append)
    watch.back(control, 11, started=100.0, now=105.0, not_loaded={})  # type: ignore[arg-type]
    watch.follow_up(control, 11, now=106.0)  # type: ignore[arg-type]
    assert lines == [restarted_line(11, 5.0, False, {}, ["model 'digits_int8' version 3 is loading"])]
    watch.follow_up(control, 11, now=161.0)  # type: ignore[arg-type]
    assert lines[1:] == [
        "warning: tritonserver still not ready (pid 11) 61.0 s after restart: model 'digits_int8' version 3 is "
        "loading (a slow initialize?)"
    ]
    control.ready = True
    watch.follow_up(control, 11, now=170.5)  # type: ignore[arg-type]
    watch.follow_up(control, 11, now=171.0)  # type: ignore[arg-type]
    assert lines[2:] == ["tritonserver ready (pid 11) 70.5 s after restart"]


def test_a_server_back_ready_or_replaced_is_not_followed() -> None:
    lines: list[str] = []
    control = FakeControl()
    watch = RestartReadiness(timeout_s=60.0, log=lines.append)
    watch.back(control, 11, started=0.0, now=2.0, not_loaded={"bad": "boom"})  # type: ignore[arg-type]
    control.ready = True
    watch.follow_up(control, 11, now=3.0)  # type: ignore[arg-type]
    assert len(lines) == 1  # its line named the model not served: no follow-up
    control.ready = False
    watch.back(control, 11, started=0.0, now=2.0, not_loaded={})  # type: ignore[arg-type]
    control.ready = True
    watch.follow_up(control, 12, now=3.0)  # type: ignore[arg-type]  # restarted again: that restart says its own
    assert len(lines) == 2


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Supervisor, list[str]]]:
    repo = deployed_repo(tmp_path)
    python_model(repo, "slow", f"time.sleep(0 if args['model_version'] == '1' else {SLOW_S})")
    options = ServerOptions.on_free_ports(
        repo, model_control="explicit", load_models=("*",), log_path=tmp_path / "triton.log", stop_timeout_s=5
    )
    lines: list[str] = []
    supervisor = Supervisor(options, policy=RestartPolicy(initial_s=0.1), poll_s=0.2, log=lines.append)
    supervisor.start()
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    watcher.start()
    try:
        yield supervisor, lines
    finally:
        supervisor.stop()
        watcher.join(timeout=30)


def load_quietly(control: ControlClient) -> None:
    with contextlib.suppress(QuantserveError):  # a server stopped under it, where the test failed
        control.load("slow")


def said(lines: list[str], start: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [line for line in list(lines) if line.startswith(start)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no line '{start}…' within {timeout_s:.0f} s: {lines}")


@pytest.mark.e2e
def test_a_load_over_the_url_right_after_a_restart_is_named_and_ready_is_said(
    supervised: tuple[Supervisor, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor, lines = supervised
    repo, start = supervisor.options.repo, supervisor.start

    def start_then_deploy_over_the_url(first: bool = True) -> None:
        start(first)
        (repo / "slow" / "2").mkdir()
        (repo / "slow" / "2" / "model.py").write_text((repo / "slow" / "1" / "model.py").read_text())
        control = supervisor.server.control(timeout_s=60)
        threading.Thread(target=load_quietly, args=(control,), daemon=True).start()  # as deploy --url does
        deadline = time.monotonic() + 10
        while control.is_ready() and time.monotonic() < deadline:
            time.sleep(0.05)

    monkeypatch.setattr(supervisor, "start", start_then_deploy_over_the_url)
    killed = supervisor.server.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    back = said(lines, "tritonserver back", 90)
    pid = supervisor.server.pid
    # what is in flight when the line is said: version 2 still loading, or (on a slow machine, session 67's CI at
    # 8.9 s) loaded already and version 1 unloading, which holds readiness false as well
    in_flight = ("model 'slow' version 2 is loading", "model 'slow' version 1 is unloading")
    assert back.startswith(f"tritonserver back (pid {pid}) ") and any(
        back.endswith(
            f"after restart but not ready yet (/v2/health/ready false while {versions}); "
            "a line follows once it is ready"
        )
        for versions in in_flight
    ), back
    ready = said(lines, "tritonserver ready (pid", SLOW_S + 30)
    assert ready.startswith(f"tritonserver ready (pid {pid}) ") and ready.endswith(" s after restart"), ready
    assert supervisor.server.control().is_ready()

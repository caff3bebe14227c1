"""Ctrl-C during a step's Locust run: its processes stopped promptly, workers too, and the interrupt's time kept.

A `--workers 2` run interrupted in its warm-up took 10–12 s to act: only the master was sent SIGTERM, and the workers
still starting (never told to quit) stayed the whole grace before they were killed; the time recorded as the
interrupt's was taken after that wait (16.4 s in, for a Ctrl-C 5.6 s in). The Locust processes here are stand-ins
with Popen's interface, so the order of signals and waits is seen without a real Locust.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from loadtest import harness
from loadtest.interruption import MeasuredSteps, RunInterrupted
from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings, step_paths
from loadtest.locust_processes import LocustStopped, stop_gracefully


class StandIn:
    """A Locust process: `running` until it gets SIGTERM (when `obeys`), then ended at `ended` (wall time)."""

    def __init__(self, name: str, events: list[tuple[str, str]], running: bool = True, obeys: bool = True) -> None:
        self.name, self.events, self.obeys = name, events, obeys
        self.returncode: int | None = None if running else 0
        self.ended: float | None = None if running else 0.0
        self.pid = 0

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.events.append((self.name, signal.Signals(sig).name))
        if self.obeys:
            time.sleep(0.01)  # it writes its records, then exits
            self.returncode, self.ended = -sig, time.time()

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
        self.returncode, self.ended = -signal.SIGKILL, time.time()

    def wait(self, timeout: float | None = None) -> int:
        self.events.append((self.name, "wait"))
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.name, timeout or 0.0)
        return self.returncode


def test_the_master_is_stopped_first_then_every_worker_still_running() -> None:
    events: list[tuple[str, str]] = []
    master, starting, quitting = StandIn("master", events), StandIn("worker0", events), StandIn("worker1", events)
    gone = StandIn("worker2", events, running=False)  # it had joined, heard the master's "quit" and exited
    stop_gracefully([master, starting, quitting, gone])  # type: ignore[list-item]
    assert events[:2] == [("master", "SIGTERM"), ("master", "wait")]  # the window ends at the master's stop
    assert ("worker0", "SIGTERM") in events[2:] and ("worker1", "SIGTERM") in events[2:]
    assert ("worker2", "SIGTERM") not in events
    assert all(process.poll() is not None for process in (master, starting, quitting, gone))


def test_a_single_process_run_is_stopped_as_before() -> None:
    events: list[tuple[str, str]] = []
    local = StandIn("locust", events)
    stop_gracefully([local])  # type: ignore[list-item]
    assert events == [("locust", "SIGTERM"), ("locust", "wait")] and local.poll() == -signal.SIGTERM


def _settings(tmp_path: Path, workers: int) -> LoadSettings:
    return LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(4), 60.0, workers=workers)


def _run_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: list[StandIn], interrupt_at_spawn: int | None = None
) -> pytest.ExceptionInfo[KeyboardInterrupt]:
    """`_run_locust` over stand-ins; Ctrl-C as the master is waited for, or as process N is started."""
    started = iter(processes)

    def spawn(*_: Any) -> StandIn:
        spawned = next(started)
        if processes.index(spawned) == interrupt_at_spawn:
            raise KeyboardInterrupt
        return spawned

    def ctrl_c(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness, "spawn", spawn)
    monkeypatch.setattr(harness, "wait_for", ctrl_c)
    settings = _settings(tmp_path, len(processes) - 1)
    with pytest.raises(KeyboardInterrupt) as stop:
        harness._run_locust(settings, ClosedLoop(4), tmp_path / "raw", tmp_path / "locust" / "m-u4")
    return stop


def test_the_interrupt_is_timed_when_it_came_not_once_the_processes_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    processes = [StandIn("master", events), StandIn("worker0", events), StandIn("worker1", events)]
    stop = _run_interrupted(tmp_path, monkeypatch, processes)
    assert isinstance(stop.value, LocustStopped)
    ends = [process.ended for process in processes]
    assert all(end is not None and stop.value.at < end for end in ends), (stop.value.at, ends)


def test_an_interrupt_while_the_workers_start_stops_those_already_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    processes = [StandIn("master", events), StandIn("worker0", events), StandIn("worker1", events)]
    stop = _run_interrupted(tmp_path, monkeypatch, processes, interrupt_at_spawn=2)
    assert isinstance(stop.value, LocustStopped)
    assert ("master", "SIGTERM") in events and ("worker0", "SIGTERM") in events
    assert not [event for event in events if event[0] == "worker1"]  # never started


def test_a_second_interrupt_while_they_stop_keeps_the_first_ones_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    deaf = StandIn("master", events, obeys=False)  # ignores SIGTERM: the harness waits on it until…

    def second_ctrl_c(timeout: float | None = None) -> int:
        events.append(("master", "wait"))
        if deaf.returncode is None:
            raise KeyboardInterrupt  # …the second Ctrl-C, which ends the wait
        return deaf.returncode

    monkeypatch.setattr(deaf, "wait", second_ctrl_c)
    stop = _run_interrupted(tmp_path, monkeypatch, [deaf])
    assert isinstance(stop.value, LocustStopped) and deaf.ended is not None and stop.value.at < deaf.ended
    assert events[-2:] == [("master", "SIGKILL"), ("master", "wait")]  # killed once the second came


def test_a_step_interrupted_before_its_window_opened_says_the_interrupt_stopped_its_users(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 2)
    step = ClosedLoop(4)
    record_dir, _ = step_paths(settings, step, tmp_path)
    record_dir.mkdir(parents=True)
    (record_dir / "master.log").write_text("")  # what Locust left: its logs, no window (it never opened)
    stopped = harness._interrupted(settings, step, tmp_path, None, None, time.time())  # type: ignore[arg-type]
    assert stopped.result is None
    assert stopped.why == (
        "the interrupt stopped its users as they started or warmed up, before the measured window opened "
        f"(logs: {record_dir})"
    )
    with pytest.raises(RunInterrupted) as run, MeasuredSteps("m", 1, tmp_path) as measured:
        measured.start("u4")
        raise stopped
    saved = LoadRun.load(run.value.path)
    assert saved.interrupted is not None
    assert saved.interrupted.note == f"u4 omitted: {stopped.why}"
    assert "did any user start" not in saved.interrupted.summary()

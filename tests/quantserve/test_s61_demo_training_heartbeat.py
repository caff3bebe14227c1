"""The demo's training says every HEARTBEAT_S that it still runs where no bar is drawn, with optimize's mechanism
(`quantserve.cli.progress.Heartbeat`): `make demo` into a file printed only "› training the digits CNN" and then
nothing for 9 minutes on a busy machine (session 61's probe)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest

import quantserve.cli.demo
from examples import digits
from quantserve.cli import main
from quantserve.cli.demo import DemoSettings, prepare_model
from quantserve.cli.progress import Heartbeat
from quantserve.errors import QuantserveError


def _train_until_beat(beats: io.StringIO, events: list[str]) -> Any:
    """A training stand-in that runs until the heartbeat has said something (at most 10 s), then returns."""

    def train(*args: Any) -> object:
        for _ in range(1000):
            if beats.getvalue():
                break
            threading.Event().wait(0.01)
        events.append("trained")
        return object()

    return train


@pytest.fixture
def trained_stand_in(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, list[str]]:
    beats, events = io.StringIO(), []
    monkeypatch.setattr(digits, "train", _train_until_beat(beats, events))
    monkeypatch.setattr(digits, "accuracy", lambda model, data: 97.85)
    monkeypatch.setattr(digits, "export_program", lambda model, path: path)
    return beats, events


def test_training_longer_than_the_interval_prints_the_line(
    tmp_path: Path, trained_stand_in: tuple[io.StringIO, list[str]]
) -> None:
    beats, events = trained_stand_in
    heartbeat = Heartbeat("demo", interval_s=0.02, stream=beats)
    said: list[str] = []
    prepare_model(DemoSettings(build=tmp_path), said.append, heartbeat)
    assert events == ["trained"]
    first = beats.getvalue().splitlines()[0]
    assert first.startswith("quantserve: demo: still running (")
    assert first.endswith("): training the digits CNN (5 epochs, seed 0)")
    assert not heartbeat.thread.is_alive(), "stopped once trained: the stages after it print their own lines"
    assert said[0] == "training the digits CNN (5 epochs, seed 0)"


def test_the_demo_command_beats_where_stderr_is_not_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[Heartbeat | None] = []

    def stop_here(settings: DemoSettings, say: Any, heartbeat: Heartbeat | None = None) -> dict[str, Any]:
        given.append(heartbeat)
        raise QuantserveError("stopped before any work")

    monkeypatch.setattr(quantserve.cli.demo, "run_demo", stop_here)
    argv = ["demo", "--out", str(tmp_path / "out"), "--build", str(tmp_path / "build"), "--repo", str(tmp_path)]
    assert main(argv) == 2  # capsys: stderr is no terminal, as `make demo > log 2>&1`
    assert main([*argv, "--json"]) == 2  # --json (and --quiet) print no heartbeat, as optimize's
    assert isinstance(given[0], Heartbeat) and given[0].title == "demo"
    assert given[1] is None


def test_a_failed_training_stops_the_heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(digits, "train", interrupted)
    heartbeat = Heartbeat("demo", interval_s=60, stream=io.StringIO())
    with pytest.raises(KeyboardInterrupt):
        prepare_model(DemoSettings(build=tmp_path), lambda line: None, heartbeat)
    assert heartbeat.stopped.is_set() and not heartbeat.thread.is_alive()

"""The demo's training and both its optimize stages say every HEARTBEAT_S that they still run where no bar is drawn,
one heartbeat through all three (`quantserve.cli.demo.train_and_optimize`, optimize's mechanism
`quantserve.cli.progress.Heartbeat`): `make demo` into a file printed only "› training the digits CNN" and then
nothing for 9 minutes on a busy machine, and nothing through each optimize stage after it (session 61's probe)."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest

import quantserve.cli.demo
from examples import digits
from quantserve.cli import main
from quantserve.cli.demo import DemoSettings, train_and_optimize
from quantserve.cli.progress import Heartbeat
from quantserve.errors import QuantserveError


def _until_beat(beats: io.StringIO, words: str) -> None:
    """Wait until the heartbeat has said `words` (at most 10 s)."""
    for _ in range(1000):
        if words in beats.getvalue():
            return
        threading.Event().wait(0.01)


def _train_until_beat(beats: io.StringIO, events: list[str]) -> Any:
    """A training stand-in that runs until the heartbeat has named it, then returns."""

    def train(*args: Any) -> object:
        _until_beat(beats, ": training the digits CNN")
        events.append("trained")
        return object()

    return train


class _Deployed:
    version = 1


@pytest.fixture
def optimized_stand_in(
    monkeypatch: pytest.MonkeyPatch, trained_stand_in: tuple[io.StringIO, list[str]]
) -> tuple[io.StringIO, list[str]]:
    """Each optimize stage runs until the heartbeat has named it; deploying writes nothing."""
    beats, events = trained_stand_in

    def optimize(options: Any, repo: Path) -> None:
        _until_beat(beats, f": optimize {options.name}:")
        events.append(f"optimized {options.name}")

    monkeypatch.setattr(quantserve.cli.demo, "optimize_variant", optimize)
    monkeypatch.setattr("serving.deploy.deploy", lambda *args, **kwargs: _Deployed())
    return beats, events


@pytest.fixture
def trained_stand_in(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, list[str]]:
    beats, events = io.StringIO(), []
    monkeypatch.setattr(digits, "train", _train_until_beat(beats, events))
    monkeypatch.setattr(digits, "accuracy", lambda model, data: 97.85)
    monkeypatch.setattr(digits, "export_program", lambda model, path: path)
    return beats, events


def test_training_and_both_optimize_stages_beat_under_one_heartbeat(
    tmp_path: Path, optimized_stand_in: tuple[io.StringIO, list[str]]
) -> None:
    beats, events = optimized_stand_in
    heartbeat = Heartbeat("demo", interval_s=0.02, stream=beats)
    said: list[str] = []
    files, names = train_and_optimize(DemoSettings(build=tmp_path, repo=tmp_path / "repo"), said.append, heartbeat)
    assert events == ["trained", "optimized digits_fp32", "optimized digits_int8"]
    assert names == ["digits_fp32", "digits_int8"] and set(files) == {"program", "calib", "heldout"}
    lines = beats.getvalue().splitlines()
    assert lines and all(line.startswith("quantserve: demo: still running (") for line in lines)
    assert all("): " in line for line in lines), "every beat names the stage now running"
    assert any(line.endswith("): training the digits CNN (5 epochs, seed 0)") for line in lines)
    for stage in (
        "optimize digits_fp32: export → fuse → build → verify",
        "optimize digits_int8: export → fuse → calibrate → build → verify",
    ):
        assert any(line.endswith(f"): {stage}") for line in lines), f"no beat named {stage!r}"
    assert not heartbeat.thread.is_alive(), "stopped once both variants are deployed: measuring prints its own lines"
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
        train_and_optimize(DemoSettings(build=tmp_path), lambda line: None, heartbeat)
    assert heartbeat.stopped.is_set() and not heartbeat.thread.is_alive()


def test_a_failed_optimize_stage_stops_the_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained_stand_in: tuple[io.StringIO, list[str]]
) -> None:
    beats, _ = trained_stand_in

    def refused(options: Any, repo: Path) -> None:
        raise QuantserveError("INT8 is slower")

    monkeypatch.setattr(quantserve.cli.demo, "optimize_variant", refused)
    heartbeat = Heartbeat("demo", interval_s=0.02, stream=beats)
    with pytest.raises(QuantserveError):
        train_and_optimize(DemoSettings(build=tmp_path), lambda line: None, heartbeat)
    assert heartbeat.stopped.is_set() and not heartbeat.thread.is_alive()
    assert heartbeat.text.startswith("optimize digits_fp32:")

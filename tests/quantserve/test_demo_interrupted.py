"""Ctrl-C during `quantserve demo`'s load steps keeps every step that finished: each variant's run is saved as each
of its steps ends, the variant whose step was cut saves it marked (as `quantserve loadtest` does), the other is marked
interrupted before the step it had not started, and one line says what was saved. Before, `load-*.json` was written
only after the last step: an interrupt lost every step, and `report` marked all of them INCOMPLETE.

tritonserver, the accuracy pass and Locust are stood in for: what is pinned is the saving, not a measurement."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from loadtest import evaluator, harness
from loadtest.interruption import StepInterrupted
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from serving import server

STARTED = "2026-12-01T00:00:00Z"  # the stand-in identity's start (`harness.run_identity` reads the server)


class FakeServer:
    pid, grpc_url, metrics_url = 1, "127.0.0.1:1", "127.0.0.1:2"

    def __init__(self, options: Any) -> None:
        pass

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _step(model: str, users: int, window_s: float = 3.0) -> LoadResult:
    latency = LatencySummary.from_samples([1.0, 2.0, 3.0])
    return LoadResult(model, "u", "closed", users, window_s, 3, 0, 3 / window_s, 3 / window_s, latency)


def test_an_interrupt_in_the_demo_load_steps_saves_every_finished_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantserve.cli.demo import DemoSettings, measure

    calls: list[tuple[str, int]] = []

    def run_step(settings: Any, step: Any, out: Path, pid: int | None = None) -> LoadResult:
        calls.append((settings.model, step.users))
        if len(calls) == 4:  # the second step, the second variant's turn (INT8 first there): cut by Ctrl-C
            partial = _step(settings.model, step.users, window_s=1.5)
            partial.interrupted, partial.planned_window_s = True, 3.0
            raise StepInterrupted(time.time(), partial)
        return _step(settings.model, step.users)

    accuracy = SimpleNamespace(save=lambda out: None, variants=[SimpleNamespace(model="a", precision="fp32")])
    monkeypatch.setattr(server.ServerOptions, "on_free_ports", lambda *a, **k: None)
    monkeypatch.setattr(server, "TritonServer", FakeServer)
    monkeypatch.setattr(evaluator, "evaluate_accuracy", lambda *a, **k: accuracy)
    monkeypatch.setattr(harness, "run_step", run_step)
    monkeypatch.setattr(harness, "run_identity", lambda settings: (RunIdentity(STARTED), None))
    settings = DemoSettings(out=tmp_path / "out", users=16, sweep=(1, 4, 16), duration_s=3.0)
    with pytest.raises(KeyboardInterrupt) as stopped:
        measure(settings, ["a", "b"], tmp_path / "heldout.npz", lambda line: None)
    assert calls == [("a", 1), ("b", 1), ("b", 4), ("a", 4)]

    cut = LoadRun.load(settings.out / "load-a.json")  # its u4 cut: saved partial, after u1
    assert [(r.users, r.interrupted) for r in cut.results] == [(1, False), (4, True)]
    assert cut.interrupted is not None and (cut.interrupted.step, cut.interrupted.completed_steps) == ("u4", 1)
    assert cut.precision == "fp32"
    other = LoadRun.load(settings.out / "load-b.json")  # u1 and u4 finished, u16 not started
    assert [(r.users, r.interrupted) for r in other.results] == [(1, False), (4, False)]
    assert other.interrupted is not None and other.interrupted.step == "u16"
    assert (other.interrupted.completed_steps, other.interrupted.partial_step_saved) == (2, False)
    assert str(stopped.value).startswith(f"interrupted in the load steps; saved in {settings.out}: a: u4 saved partial")
    assert "(after u1 finished); b: u1, u4 finished" in str(stopped.value)


def test_a_demo_cut_in_its_first_step_leaves_no_earlier_run_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted in its first load step, a second demo into the same folder had its report show three rows of the
    first run's load-*.json (another server and port) and kept that run's summary.json (2.23×), unmarked."""
    from quantserve.cli.demo import DemoSettings, measure

    def run_step(settings: Any, step: Any, out: Path, pid: int | None = None) -> LoadResult:
        raise StepInterrupted(time.time(), None)

    out = tmp_path / "out"
    out.mkdir()
    for name in ("load-digits_int8.json", "load-digits_fp32.json", "summary.json", "accuracy.json", "report.md"):
        (out / name).write_text("{}")
    (out / "notes.txt").write_text("the user's own file")
    accuracy = SimpleNamespace(save=lambda out: None, variants=[SimpleNamespace(model="a", precision="fp32")])
    monkeypatch.setattr(server.ServerOptions, "on_free_ports", lambda *a, **k: None)
    monkeypatch.setattr(server, "TritonServer", FakeServer)
    monkeypatch.setattr(evaluator, "evaluate_accuracy", lambda *a, **k: accuracy)
    monkeypatch.setattr(harness, "run_step", run_step)
    monkeypatch.setattr(harness, "run_identity", lambda settings: (RunIdentity(STARTED), None))
    settings = DemoSettings(out=out, users=16, sweep=(1, 4), duration_s=3.0)
    with pytest.raises(KeyboardInterrupt):
        measure(settings, ["a", "b"], tmp_path / "heldout.npz", lambda line: None)
    left = sorted(p.name for p in out.iterdir() if p.suffix in (".json", ".md", ".txt"))
    assert left == ["load-a.json", "notes.txt"]  # this run's, marked interrupted, and the user's own
    assert LoadRun.load(out / "load-a.json").interrupted is not None

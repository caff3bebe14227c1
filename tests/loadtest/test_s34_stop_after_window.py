"""A stop (Ctrl-C, SIGTERM) that comes after the measured window ended cuts nothing of it.

`loadtest --duration 5s` sent SIGTERM as the master wrote `raw/u2/window.json` (Locust shutting down) saved the run
partial: `"interrupted": true`, "u2 saved partial: 4075 requests in 5.0 s of its 5 s measured up to the interrupt",
every figure of the window complete. The step is now the finished one's: after the run's last step the run is saved
complete, unmarked; before it, marked as stopped between steps, no step partial.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest import harness
from loadtest.interruption import MeasuredSteps, RunInterrupted, StepInterrupted
from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings, step_paths
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import WINDOW_FILE, Window
from loadtest.results import LoadResult


def _step(users: int = 2, window_s: float = 5.0) -> LoadResult:
    latency = LatencySummary.from_samples([1.0, 2.0, 3.0])
    return LoadResult("m", f"u{users}", "closed", users, window_s, 3, 0, 3 / window_s, 3 / window_s, latency)


@pytest.mark.parametrize(
    ("end", "planned_end", "whole"), [(105.2, 105.0, True), (105.0, 105.0, True), (103.0, 105.0, False)]
)
def test_a_window_ran_to_plan_when_it_reached_its_planned_end(end: float, planned_end: float, whole: bool) -> None:
    assert Window(100.0, end, None, None, planned_end=planned_end).ran_to_plan is whole


def test_a_window_without_a_planned_end_counts_as_cut_by_its_stop() -> None:
    assert not Window(100.0, 105.0, None, None).ran_to_plan


def _interrupted_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_end: float) -> StepInterrupted:
    """`harness._interrupted` over a window file whose master stopped at `stop_end` of a window planned 100-105."""
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(2), 5.0)
    step = ClosedLoop(2)
    record_dir, _ = step_paths(settings, step, tmp_path)
    record_dir.mkdir(parents=True)
    window = {"start": 100.0, "end": stop_end, "planned_end": 105.0}
    (record_dir / WINDOW_FILE).write_text(json.dumps(window))

    def summarized(*_: Any) -> LoadResult:
        return _step(window_s=min(stop_end, 105.0) - 100.0)

    monkeypatch.setattr(harness, "step_result", summarized)
    return harness._interrupted(settings, step, tmp_path, None, None, stop_end + 1.0)  # type: ignore[arg-type]


def test_a_stop_after_the_window_ended_keeps_the_step_whole_and_unmarked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = _interrupted_at(tmp_path, monkeypatch, stop_end=105.3)
    assert stop.whole and stop.result is not None
    assert not stop.result.interrupted and stop.result.planned_window_s is None


def test_a_stop_inside_the_window_still_saves_it_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = _interrupted_at(tmp_path, monkeypatch, stop_end=103.0)
    assert not stop.whole and stop.result is not None
    assert stop.result.interrupted and stop.result.planned_window_s == 5.0


def test_a_run_whose_last_window_ended_before_the_stop_is_saved_complete(tmp_path: Path) -> None:
    with pytest.raises(RunInterrupted) as stop, MeasuredSteps("m", 1, tmp_path) as measured:
        measured.start("u2")
        raise StepInterrupted(time.time(), _step(), whole=True)
    saved = LoadRun.load(stop.value.path)
    assert saved.interrupted is None and stop.value.run.interrupted is None
    assert [r.interrupted for r in saved.results] == [False] and saved.results[0] == _step()
    assert "complete results" in str(stop.value) and "partial" not in str(stop.value)


def test_a_stop_after_a_sweeps_first_window_keeps_it_whole_and_marks_the_run_between_steps(tmp_path: Path) -> None:
    with pytest.raises(RunInterrupted) as stop, MeasuredSteps("m", 3, tmp_path) as measured:
        measured.start("u1")
        raise StepInterrupted(time.time(), _step(1), whole=True)
    saved = LoadRun.load(stop.value.path)
    assert saved.interrupted is not None and not saved.interrupted.partial_step_saved
    assert saved.interrupted.completed_steps == 1 and saved.interrupted.step_number == 1
    assert "1 step complete; u1 complete: the stop came after its window ended" in saved.interrupted.summary()
    assert [r.interrupted for r in saved.results] == [False]


def test_a_stop_while_the_figures_are_summarized_keeps_the_step_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locust had ended (the window whole) when the interrupt came: the step was left out ("interrupted outside its
    Locust run … while its figures were summarized"); it is summarized again and kept whole."""
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8), np.float32))
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(2), 5.0)
    calls: list[int] = []

    def summarized(*_: Any) -> LoadResult:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return _step()

    class Sampler:
        def __init__(self, *_: Any, **__: Any) -> None: ...
        def __enter__(self) -> Sampler:
            return self

        def __exit__(self, *_: Any) -> None: ...

    monkeypatch.setattr(harness, "check_model_ready", lambda *_: None)
    monkeypatch.setattr(harness.ServerPids, "at_start", classmethod(lambda cls, url: cls(url)))
    monkeypatch.setattr(harness, "UtilizationSampler", Sampler)
    monkeypatch.setattr(harness, "_run_locust", lambda *_: [])
    monkeypatch.setattr(harness, "step_result", summarized)
    with pytest.raises(StepInterrupted) as stop:
        harness.run_step(settings, ClosedLoop(2), tmp_path)
    assert stop.value.whole and stop.value.result is not None and not stop.value.result.interrupted

"""The INT8 search ends near its --max-search-s: a unit of work under way at the deadline is stopped, not run out.

PP-OCRv4's text detector (busy 2-core EPYC, --max-search-s 300) spent 593 s: a unit started in time (the 7-bit
candidate) ran to its end far past the deadline. Time here is a fake clock that only the held-out batches of the
slowed models advance (BATCH_S each), so nothing depends on how fast this machine runs and no work counted as
"started past the deadline" can be the machine's doing; the models are the small ones of test_int8_search.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_int8_search import detector, images, mlp

import optimizer.int8_search as int8_search
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import PAIRED, SearchInt8
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.search_budget import PROBE, STEP, DeadlineReached, SearchBudget
from optimizer.sensitivity import Attempt, MixedPrecisionSearch
from optimizer.speed import time_pair
from quantserve.data import TensorData

BATCH_S = 120.0  # fake seconds one held-out batch of a slowed model takes
VNNI = frozenset({"avx2", "avx512_vnni"})  # no 7-bit candidates (`optimizer.int8_fallbacks`)


class SlowClock:
    """The search's clock: fake seconds, advanced by BATCH_S per batch a model named with `slow` runs; and every
    candidate model run, profile or paired timing begun after the search's deadline, by name."""

    def __init__(self, slow: str) -> None:
        self.slow, self.now, self.late = slow, 0.0, []  # type: tuple[str, float, list[str]]
        self.budget: SearchBudget | None = None

    def __call__(self) -> float:
        return self.now

    def started(self, what: str, path: Path) -> None:
        if self.budget is not None and self.now > self.budget.deadline and path.name != "model.onnx":
            self.late.append(f"{what} {path.name}")


@pytest.fixture
def slow_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], SlowClock]]:
    """`slow_clock(name)`: the search runs on a SlowClock slowing the models whose file name holds `name`."""
    clocks: list[SlowClock] = []

    def make(slow: str) -> SlowClock:
        clock = SlowClock(slow)
        clocks.append(clock)
        run, profile, pair = OnnxRuntimeRunner.infer_impl, int8_search.profile_model, int8_search.time_pair

        def infer(runner: OnnxRuntimeRunner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            clock.started("model run", runner.path)
            clock.now += BATCH_S if slow in runner.path.name else 0.0
            return run(runner, feeds)

        def profiled(path: Path, *args: Any, **kwargs: Any) -> Any:
            clock.started("profile", Path(path))
            return profile(path, *args, **kwargs)

        def timed(fp32: Path, int8: Path, *args: Any, **kwargs: Any) -> Any:
            clock.started("paired timing", Path(int8))
            return pair(fp32, int8, *args, **kwargs)

        def budget(seconds: float) -> SearchBudget:
            clock.budget = SearchBudget(seconds, clock)
            return clock.budget

        monkeypatch.setattr(OnnxRuntimeRunner, "infer_impl", infer)
        monkeypatch.setattr(int8_search, "profile_model", profiled)
        monkeypatch.setattr(int8_search, "time_pair", timed)
        monkeypatch.setattr(int8_search, "SearchBudget", budget)
        return clock

    yield make


def test_a_first_candidate_past_the_deadline_is_stopped_and_the_search_refuses_as_out_of_time(
    tmp_path: Path, slow_clock: Callable[[str], SlowClock]
) -> None:
    """The first candidate has no estimate of its kind, so it starts; its held-out run (4 batches of 120 s) would
    end 180 s past the 300 s budget, then be profiled and timed. It stops before the third batch, which would end past
    it (each takes as long as the first did: `optimizer.search_pieces`)."""
    clock = slow_clock("static_qdq")
    settings = SearchSettings(max_search_s=300.0, max_probes=4, timing_repeats=1)
    search = SearchInt8(images(64, 1), images(128, 2), search=settings, cpu_flags=VNNI)
    with pytest.raises(BudgetExceeded) as refused:
        search(detector(tmp_path / "model.onnx"), tmp_path / "int8.onnx")
    assert str(refused.value) == (
        "the INT8 search ran out of time: 240 s of its 300 s budget spent before any INT8 model was verified within "
        "the drift budget and timed (left undone: the static_qdq candidate, stopped at the deadline during the "
        "held-out drift run); nothing written: the first candidate ran 240 s before it was stopped: raise the budget "
        "with --max-search-s (e.g. --max-search-s 480: the set-up, and twice what the candidate ran) or deploy fp32"
    )
    assert clock.late == []  # no batch, profile or timing of a candidate began past the deadline
    assert refused.value.record["time_budget"]["overran_s"] == 0.0  # no batch under way at the deadline
    assert not (tmp_path / "int8.onnx").exists()


def test_a_candidate_stopped_at_the_deadline_leaves_the_verified_and_timed_one_before_it_to_ship(
    tmp_path: Path, slow_clock: Callable[[str], SlowClock]
) -> None:
    """static_qdq and dynamic hold in no fake time; the smoothed candidate's alpha trials and held-out run are slow:
    stopped at the deadline, recorded as such, and one of the two measured before it ships."""
    clock = slow_clock("smooth")
    lenient = DriftBudget(min_cosine_mean=0.9, min_cosine_worst=0.5, min_channel_correlation=0.5)
    settings = SearchSettings(max_search_s=300.0, max_probes=4, timing_repeats=1)
    data = TensorData({"x": np.random.default_rng(3).standard_normal((128, 16)).astype(np.float32)})
    search = SearchInt8(data, data, budget=lenient, search=settings, cpu_flags=VNNI)
    record = search(mlp(tmp_path / "model.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    assert [c["scheme"] for c in record["candidates"]] == ["static_qdq", "dynamic"]
    assert record["scheme"] in ("static_qdq", "dynamic") and record["within_budget"], record["candidates"]
    spent = record["time_budget"]
    assert spent["left_undone"][0].startswith("the static_qdq_smooth candidate, stopped at the deadline during "), spent
    assert record["skipped"]["static_qdq_smooth"] == "stopped at the end of the search's time budget (300 s)"
    assert spent["spent_s"] <= 300.0 + BATCH_S and clock.late == [], (spent, clock.late)


def test_the_mixed_precision_search_stops_a_step_at_its_deadline_less_the_winners_timing() -> None:
    """A step whose full held-out run would end past the time kept back for timing the winner is stopped there:
    the closest attempt so far stands and the steps left are recorded as undone."""
    now = [0.0]
    budget = SearchBudget(100.0, lambda: now[0])
    drift = _Drift(margin=-1.0)

    def measure_full(path: Path) -> _Drift:
        while True:  # batch after batch, as `_outputs` runs them: the budget checked before each
            budget.check("the held-out drift run")
            now[0] += 10.0

    search = MixedPrecisionSearch(
        lambda kept: Path(f"variant-{len(kept)}.onnx"),
        lambda path: _Drift(margin=0.5),  # every variant holds on the probe rows: each step runs the full set
        measure_full,
        budget,
        max_probes=2,
        accept=lambda d: d.margin() >= 0.05,
        reserve_s=30.0,
    )
    result = search.run(Attempt([], Path("start.onnx"), drift, full=True), ["a", "b"], {"a": 1.0, "b": 1.0})
    assert result.best.path == Path("start.onnx") and result.stopped == "search time budget spent"
    assert now[0] == 70.0  # stopped at 100 - 30 s: the winner's timing still fits
    assert budget.cut == ["mixed precision: 2 of 2 steps, stopped at the deadline during the held-out drift run"]


def test_a_stoppable_unit_is_stopped_only_past_its_deadline_and_recorded_as_undone() -> None:
    now = [0.0]
    budget = SearchBudget(10.0, lambda: now[0])
    budget.check()  # outside any unit: never stops (the reference run, the FP32 profile)

    def work(seconds: float) -> str:
        now[0] += seconds
        budget.check("the profile")
        return "done"

    assert budget.attempt(PROBE, "a probe", lambda: work(4.0)) == "done" and not budget.ran_out
    view = budget.capped(100.0)  # the mixed-precision search's view: its units' stops are seen by the whole
    with pytest.raises(DeadlineReached), view.stoppable(STEP, reserve=3.0):
        now[0] += 3.5  # 10 - 3 = 7 s: past the stop
        budget.check("the held-out drift run")
    assert budget.attempt(PROBE, "a probe", lambda: work(9.0)) is None
    assert budget.cut == ["a probe, stopped at the deadline during the profile"] and budget.stop_left() is None


def test_a_paired_timing_past_its_time_is_killed_with_no_figure(tmp_path: Path) -> None:
    """The speed child cannot load Python, NumPy and ONNX Runtime in 50 ms: it is killed and nothing is timed."""
    art = mlp(tmp_path / "model.onnx")
    batch = {"x": np.zeros((8, 16), np.float32)}
    with pytest.raises(subprocess.TimeoutExpired):
        time_pair(art.path, art.path, batch, 1, PAIRED, timeout_s=0.05)


class _Drift:
    def __init__(self, margin: float) -> None:
        self.value, self.holds = margin, margin >= 0

    def margin(self) -> float:
        return self.value

    def error(self) -> float:
        return 1.0 - self.value

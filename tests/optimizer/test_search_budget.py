"""The INT8 search spends one wall-clock budget as a whole, and says so when it runs out.

A YOLOv8-seg detector's search was killed after 12 min although the mixed-precision search had a 60 s cap: the
cap began after every candidate had been calibrated, verified and profiled, and was checked only between probes.
Time here is a fake clock that each profile advances by PROFILE_S (a slow model's profile), so nothing depends on
how fast this machine runs; the models are the small ones of test_int8_search.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_int8_search import FAST, mlp

import optimizer.int8_search as int8_search
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.drift_checks import Violation
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.search_budget import STEP, SearchBudget
from optimizer.speed import Block, take_blocks
from quantserve.data import TensorData

PROFILE_S = 100.0  # fake seconds each profile takes


@pytest.fixture
def slow_profiles(monkeypatch: pytest.MonkeyPatch) -> Callable[[], float]:
    """Every profile of the search takes PROFILE_S on the budget's clock; returns that clock."""
    import time

    from optimizer.search_budget import SearchBudget

    skew = [0.0]
    real = int8_search.profile_model

    def slow(*args: Any, **kwargs: Any) -> Any:
        skew[0] += PROFILE_S
        return real(*args, **kwargs)

    def clock() -> float:
        return time.monotonic() + skew[0]

    monkeypatch.setattr(int8_search, "profile_model", slow)
    # raising=False: where the search keeps no budget of its own the test runs on and fails on what it checks
    monkeypatch.setattr(int8_search, "SearchBudget", lambda seconds: SearchBudget(seconds, clock), raising=False)
    return clock


def _data(seed: int, scale: float, rows: int) -> TensorData:
    return TensorData({"x": (np.random.default_rng(seed).standard_normal((rows, 16)) * scale).astype(np.float32)})


def test_a_search_out_of_time_before_anything_holds_refuses_in_one_line_naming_the_flag(
    tmp_path: Path, slow_profiles: Callable[[], float], just_above_the_candidates: Callable[..., float]
) -> None:
    """FP32 profile + the first candidate spend 200 of 250 s: no second candidate (100 s each) fits, nor the
    mixed-precision search with the winner's profile kept back; the first (dynamic: it calibrates nothing) misses
    this budget, so nothing shipped."""
    calib, held, art = _data(6, 1.0, 128), _data(7, 1.0, 96), mlp(tmp_path / "mlp.onnx")
    bound = just_above_the_candidates(art, calib, held, tmp_path, search=FAST)  # as this CPU's kernels round
    strict = DriftBudget(min_cosine_mean=bound, min_cosine_worst=0.99, min_channel_correlation=0.99)
    settings = SearchSettings(max_search_s=250.0, max_probes=4, timing_repeats=1)
    search = SearchInt8(calib, held, budget=strict, search=settings)
    started = slow_profiles()
    with pytest.raises(BudgetExceeded) as refused:
        search(art, tmp_path / "int8.onnx")
    spent = slow_profiles() - started
    line = str(refused.value)
    assert line.startswith("the INT8 search ran out of time: "), line
    assert "--max-search-s" in line and "of its 250 s budget" in line and "\n" not in line, line
    assert "closest: dynamic, " in line and "cosine" in line, line  # the closest model and what it misses
    # within the budget plus one unit (the candidate that began in time): two profiles, not one per scheme and step
    assert 2 * PROFILE_S <= spent < 250.0 + PROFILE_S, spent
    assert not (tmp_path / "int8.onnx").exists()


def test_a_verified_and_timed_candidate_ships_when_the_time_runs_out_after_it(
    tmp_path: Path, slow_profiles: Callable[[], float]
) -> None:
    """Static clips the held-out data, dynamic holds: with time for two candidates the others are left undone and
    recorded, and dynamic — verified on the held-out set and timed — ships."""
    budget = DriftBudget(min_cosine_mean=0.99, min_cosine_worst=0.9, min_channel_correlation=0.9)
    settings = SearchSettings(max_search_s=350.0, max_probes=4, timing_repeats=1)
    vnni = frozenset({"avx2", "avx512_vnni"})  # no 7-bit candidate (`optimizer.int8_fallbacks`)
    search = SearchInt8(_data(5, 0.25, 128), _data(8, 2.0, 128), budget=budget, search=settings, cpu_flags=vnni)
    record = search(mlp(tmp_path / "mlp.onnx"), tmp_path / "int8.onnx").manifest.stages[-1]
    assert record["scheme"] == "dynamic" and record["within_budget"], record["candidates"]
    assert [c["scheme"] for c in record["candidates"]] == ["static_qdq", "dynamic"]
    spent = record["time_budget"]
    undone = ["the static_qdq_smooth candidate", "the static_qdq_compute candidate"]
    assert spent["ran_out"] and spent["left_undone"][:2] == undone, spent  # and mixed steps, where static ran faster
    assert "time budget" in record["skipped"]["static_qdq_smooth"]
    assert spent["spent_s"] < 350.0 + PROFILE_S and record["speed"]["int8_run_ms"] > 0


def test_a_budget_lets_a_unit_start_only_where_one_as_long_as_its_longest_fits() -> None:
    from optimizer.search_budget import SearchBudget

    now = [0.0]
    budget = SearchBudget(10.0, lambda: now[0])
    assert budget.affords("probe")  # nothing timed yet: anything fits while time is left
    with budget.spend("probe"):
        now[0] += 3.0
    assert budget.affords("probe") and not budget.affords("probe", reserve=4.5)  # 7 s left; 3 + 4.5 do not fit
    now[0] += 4.5
    assert not budget.affords("probe") and budget.affords("step")
    budget.skip("mixed precision: 2 of 3 steps")
    assert budget.record()["ran_out"] and budget.record()["unit_s"] == {"probe": 3.0}


def test_busy_timing_blocks_are_retaken_only_while_the_gate_has_time() -> None:
    """A YOLOv8-seg's gate blocks took ~60 s each on a loaded machine: six of them (three retaken as busy) took
    6 min of a 10-min optimize. Past RETAKE_SECONDS the three blocks stand, marked busy by compare_speed."""
    now = [0.0]

    def slow_busy_block() -> Block:
        now[0] += 40.0
        return Block(10.0, 5.0, 2.0, 0.8, 5)

    assert len(take_blocks(slow_busy_block, 3, clock=lambda: now[0])) == 3
    now[0] = 0.0

    def quick_busy_block() -> Block:
        now[0] += 1.0
        return Block(10.0, 5.0, 2.0, 0.8, 5)

    assert len(take_blocks(quick_busy_block, 3, clock=lambda: now[0])) == 6  # quick blocks: retaken as before


def test_optimize_hands_its_search_budget_to_the_int8_search_and_refuses_a_bad_one_up_front(tmp_path: Path) -> None:
    from optimizer.pipeline import OptimizeJob, OptimizeOptions, int8_stage, optimize
    from optimizer.targets import get_target
    from quantserve.errors import QuantserveError

    options = OptimizeOptions("m.onnx", tmp_path / "c.npz", "int8", "embedded", tmp_path / "out", max_search_s=12.5)
    data = _data(1, 1.0, 4)
    job = OptimizeJob(options, get_target("embedded"), data, data, "held out")
    assert int8_stage(job).search.max_search_s == 12.5  # type: ignore[attr-defined]
    bad = OptimizeOptions("m.onnx", tmp_path / "c.npz", "int8", "embedded", tmp_path / "out", max_search_s=0)
    with pytest.raises(QuantserveError, match=r"^--max-search-s 0: expected a positive number of seconds$"):
        optimize(bad)  # before the model or data are read: neither exists


def test_a_capped_view_shares_unit_costs_and_hands_back_only_what_the_whole_budgets_end_cut() -> None:
    now = [0.0]
    whole = SearchBudget(300.0, clock=lambda: now[0])
    mixed = whole.capped(60.0)  # the mixed-precision search's own cap, well inside the whole's 300 s
    with mixed.spend(STEP):
        now[0] += 25.0
    assert whole.cost(STEP) == 25.0  # one record of how long a step takes
    now[0] += 20.0
    assert not mixed.affords(STEP)  # 15 s of its 60 left: no room for a 25 s step
    mixed.skip("mixed precision: 3 of 4 steps")
    whole.absorb(mixed)
    assert not whole.ran_out  # the cap stopped that search, not the whole budget: raising it would not help
    now[0] = 280.0
    late = whole.capped(60.0)  # 20 s of the whole left: its end binds
    late.skip("mixed precision: 4 of 4 steps")
    whole.absorb(late)
    assert whole.ran_out and whole.cut == ["mixed precision: 4 of 4 steps"]


def test_the_search_judges_its_candidates_by_the_users_metric_too(tmp_path: Path) -> None:
    """A metric only FP32's exact outputs satisfy: the outputs' drift holds, the metric does not. The search once
    stopped at "budget holds" and shipped into verification's refusal; it must judge candidates as verification
    does, so here nothing in INT8 can ship."""
    from optimizer.transformer import run_model
    from optimizer.user_metric import UserMetric

    art = mlp(tmp_path / "mlp.onnx")
    rows = np.random.default_rng(5).normal(size=(96, 16)).astype(np.float32)
    data = TensorData({"x": rows})
    exact = run_model(art.path, {"x": rows[:64]}, 32)["y"]

    def unchanged(outputs: dict[str, np.ndarray], labels: Any) -> float:
        return float(np.mean(np.all(np.abs(outputs["y"] - exact[: len(outputs["y"])]) < 1e-6, axis=1)))

    shipped = SearchInt8(data, data.take(0, 64), search=FAST)(art, tmp_path / "plain.onnx")
    assert shipped.manifest.precision == "int8"  # by its outputs alone the budget holds
    metric = UserMetric("tests:unchanged", unchanged)
    with pytest.raises(BudgetExceeded, match="metric 'tests:unchanged'"):
        SearchInt8(data, data.take(0, 64), search=FAST, user_metric=metric)(art, tmp_path / "metric.onnx")


def test_a_search_that_kept_every_group_fp32_and_still_missed_says_where_the_drift_is() -> None:
    """MediaPipe's hand landmarks: every compute group kept FP32 in turn, the budget still missed, and the refusal
    was verification's generic line beside a record of "every group kept FP32" and nothing kept."""
    from types import SimpleNamespace

    from optimizer.int8_search import _SearchRun
    from optimizer.sensitivity import EXHAUSTED

    missing = SimpleNamespace(
        holds=False,
        violations=[Violation("Identity", "channel_correlation_worst", 0.7636, 0.98)],
        outputs={},
        advice=[],
    )
    chosen = SimpleNamespace(scheme="static_qdq", drift=missing)
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), _kept_fp32=lambda _: "")  # no mix: the scheme
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._refuse_exhausted(run, chosen, {"stopped": EXHAUSTED}, [chosen])  # type: ignore[arg-type]
    assert str(refused.value) == (
        "no INT8 model holds the drift budget: static_qdq misses it (output 'Identity': worst channel correlation "
        "0.7636 < budget 0.98), and still missed it with every compute node kept FP32 in turn: the drift is in the "
        "quantized data movement between them; nothing written: deploy fp32 (or pass --keep-failing to ship the "
        "closest INT8 model)"
    )
    _SearchRun._refuse_exhausted(run, chosen, {"stopped": "budget holds"}, [chosen])  # type: ignore[arg-type]
    run.stage.keep_failing = True
    _SearchRun._refuse_exhausted(run, chosen, {"stopped": EXHAUSTED}, [chosen])  # type: ignore[arg-type]

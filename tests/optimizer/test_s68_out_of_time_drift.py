"""An out-of-time refusal says what the search measured before its time ran out (session 68).

EfficientPose (human-models, probe 68G, --max-search-s 900) was refused with "… (left undone: the static_qdq
candidate, stopped at the deadline during the paired timing); … raise the budget with --max-search-s (e.g.
--max-search-s 1700 …) or deploy fp32": static Q/DQ's drift had been judged by then (timing comes after it) and
missed far (worst channel correlation about 0.67 against 0.98), and the line never said so. The words are judged on a
budget's fake clock with drift reports shaped as that run's; the search itself on a fake clock that only the held-out
batches advance (`test_search_deadline`), its models run by ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_int8_search import detector, images
from test_search_deadline import VNNI, SlowClock, slow_clock  # noqa: F401 (the fixture)

from optimizer import int8_measure
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.drift_checks import DriftReport, Violation
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.search_budget import CANDIDATE, SearchBudget
from optimizer.time_drift_words import judged_words, missed_far

HEATMAPS = "upscaled_confs/BiasAdd:0"  # EfficientPose's one output, 16 keypoint heatmaps


def _correlation(value: float, output: str = HEATMAPS) -> DriftReport:
    """A drift report as the search judges a dense output's worst channel correlation against 0.98."""
    slack = (value - 0.98) / (1 - 0.98)
    violations = [Violation(output, "channel_correlation_worst", value, 0.98)] if slack < 0 else []
    outputs = {output: {"kind": "dense", "channel_correlation_worst": value}}
    return DriftReport(outputs=outputs, violations=violations, slacks=[slack])


def _stopped_in_timing(judged: list[tuple[str, DriftReport]]) -> str:
    """The out-of-time line of a 900 s search whose first candidate was stopped in its paired timing (109 s set-up,
    the candidate 792 s, its calibration 97 s), with `judged` the drift measured before then."""
    now = [0.0]
    budget = SearchBudget(900.0, lambda: now[0])
    now[0] = 109.0  # the FP32 reference run and profile
    assert budget.affords(CANDIDATE)

    def candidate() -> None:
        now[0] = 206.0
        budget.check("calibration: min/max ranges")
        now[0] = 901.0
        budget.check("the paired timing")

    assert budget.attempt(CANDIDATE, "the static_qdq candidate", candidate) is None
    words = "; ".join(part for part in (judged_words(judged, (64, 64)), missed_far(judged)) if part)
    return str(budget.refusal(judged=words))


def test_a_far_miss_judged_before_the_time_ran_out_is_named_with_how_far() -> None:
    line = _stopped_in_timing([("static_qdq", _correlation(0.6712))])
    assert "stopped at the deadline during the paired timing" in line, line
    assert (
        f"drift judged before then: static_qdq misses the drift budget (output '{HEATMAPS}' (dense): worst channel "
        "correlation 0.6712 < budget 0.98)" in line
    ), line
    assert (
        "; it misses by 15× the drift the budget allows and the mixed-precision search took no step before the time "
        "ran out, so whether more time closes it is unknown; nothing written: its set-up took 109 s"
    ) in line, line
    assert line.endswith(
        "raise the budget with --max-search-s (e.g. --max-search-s 1700: the set-up, and twice what "
        "the candidate ran) or deploy fp32"
    ), line


def test_a_candidate_that_held_keeps_the_advice_to_raise_the_budget_and_each_is_named() -> None:
    judged = [("static_qdq", _correlation(0.6712)), ("dynamic", _correlation(0.991))]
    line = _stopped_in_timing(judged)
    assert "static_qdq misses the drift budget (output" in line and ", dynamic holds it" in line, line
    assert (
        f"candidates tried (output '{HEATMAPS}' worst channel correlation, budget 0.98): static_qdq 0.6712, "
        "dynamic 0.991" in line
    ), line
    assert "raise the budget with --max-search-s (e.g. --max-search-s 1700" in line, line


def test_a_near_miss_or_nothing_judged_keeps_the_advice_to_raise_the_budget() -> None:
    near = _stopped_in_timing([("static_qdq", _correlation(0.95))])
    assert "static_qdq misses the drift budget (output" in near and "--max-search-s 1700" in near, near
    assert "drift judged" not in _stopped_in_timing([]), "nothing judged: nothing to say of it"


def test_the_search_stopped_in_a_candidates_timing_names_its_measured_miss(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slow_clock: Callable[[str], SlowClock],  # noqa: F811
) -> None:
    """static_qdq's held-out run (4 batches of 120 s) ends within the 500 s budget and its drift, measured past it,
    is judged, against a budget it misses by far (0.999999); it is stopped before its profile, and the line says so
    before its advice."""
    clock = slow_clock("static_qdq")
    measure = int8_measure.measure_drift

    def slow_measure(*args: Any, **kwargs: Any) -> Any:  # the drift measured whole, the deadline passed in it
        report = measure(*args, **kwargs)
        clock.now += 60.0
        return report

    monkeypatch.setattr(int8_measure, "measure_drift", slow_measure)
    strict = DriftBudget(min_cosine_mean=0.999999, min_cosine_worst=0.999999, min_channel_correlation=0.999999)
    settings = SearchSettings(max_search_s=500.0, max_probes=4, timing_repeats=1)
    search = SearchInt8(images(64, 1), images(128, 2), budget=strict, search=settings, cpu_flags=VNNI)
    with pytest.raises(BudgetExceeded) as refused:
        search(detector(tmp_path / "model.onnx"), tmp_path / "int8.onnx")
    line = str(refused.value)
    assert "(left undone: the static_qdq candidate, stopped at the deadline during the profile)" in line, line
    assert "; drift judged before then: static_qdq misses the drift budget (output 'detections'" in line, line
    assert "< budget 0.999999" in line, line
    assert "so whether more time closes it is unknown; nothing written: the first candidate ran 540 s" in line, line
    record = refused.value.record
    assert record["judged_before_time"][0]["scheme"] == "static_qdq", record

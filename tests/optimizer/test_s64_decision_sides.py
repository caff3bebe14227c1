"""A one-score-per-sample output's decisions are judged on each side of the threshold as FP32 decides, not only
pooled over every clear row: @vladmandic/human's antispoof had 4 of 400 held-out rows below 0.5, so "decision
agreement 1" rested on 4 negatives, and a build answering "yes" on every row agreed 0.99 and held the 0.99 budget
(probe A, session 64). The minority side is recorded and, where too few rows lie there to show the budget, noted."""

from __future__ import annotations

import numpy as np

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport

ABOVE, BELOW = 396, 4


def _probability() -> np.ndarray:
    """(400, 1) scores spread over 0.55-1 on 396 rows and clearly below 0.5 (0.42-0.46) on 4: a probability."""
    above = np.random.default_rng(0).uniform(0.55, 1.0, ABOVE)
    return np.concatenate([above, [0.42, 0.44, 0.45, 0.46]]).astype(np.float32)[:, None]


def _flag() -> np.ndarray:
    """(400, 1) yes/no scores: 396 near 1, 4 near 0."""
    above = np.random.default_rng(0).uniform(0.92, 1.0, ABOVE)
    return np.concatenate([above, [0.01, 0.02, 0.03, 0.04]]).astype(np.float32)[:, None]


def _faithful(reference: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0.0, 0.002, size=reference.shape)
    return np.clip(reference + noise, 0.0, 1.0).astype(np.float32)


def _judge(reference: np.ndarray, candidate: np.ndarray) -> DriftReport:
    budget = DriftBudget(label_threshold=0.5)
    return measure_drift({"spoof": reference}, {"spoof": candidate}, {"spoof": "dense"}, budget)


def test_a_build_answering_yes_on_every_row_misses_on_the_minority_side() -> None:
    reference = _probability()
    candidate = _faithful(reference)
    candidate[-BELOW:, 0] = 0.53  # "yes" on the 4 rows FP32 puts below 0.5
    report = _judge(reference, candidate)
    record = report.outputs["spoof"]
    assert record["decision_agreement"] == 0.99  # pooled over every clear row, it would hold the 0.99 budget
    assert record["channel_correlation_worst"] >= 0.99  # and correlation would not see it
    assert record["decision_sides"][0] == {"side": "below", "threshold": 0.5, "rows": BELOW, "agreement": 0.0}
    assert not report.holds
    assert [v.metric for v in report.violations] == ["decision_side_agreement"]
    line = report.violations[0].line("dense")
    assert "on the 4 clear rows FP32 puts below 0.5, INT8 agrees 0" in line, line
    assert "< budget 0.99" in line, line


def test_a_flag_flipping_one_of_its_four_minority_rows_misses() -> None:
    reference = _flag()
    candidate = _faithful(reference)
    candidate[-1, 0] = 0.9  # 1 of the 4 rows FP32 puts below 0.5 turned "yes": 399 of 400 agree
    report = _judge(reference, candidate)
    record = report.outputs["spoof"]
    assert record["flag_agreement"] == 399 / 400
    assert record["decision_sides"][0] == {"side": "below", "threshold": 0.5, "rows": BELOW, "agreement": 0.75}
    side = [v for v in report.violations if v.metric == "decision_side_agreement"]
    assert len(side) == 1
    assert "on the 4 rows FP32 puts below 0.5, INT8 agrees 0.75" in side[0].line(), side[0].line()


def test_a_faithful_build_holds_its_minority_side_shown_and_noted() -> None:
    for reference in (_probability(), _flag()):
        report = _judge(reference, _faithful(reference))
        record = report.outputs["spoof"]
        assert report.holds, [v.line() for v in report.violations]
        assert record["decision_sides"][0] == {"side": "below", "threshold": 0.5, "rows": BELOW, "agreement": 1.0}
        assert record["decision_sides"][1]["rows"] == ABOVE
        notes = [note for note in kind_notes(report.outputs) if "puts below 0.5" in note]
        assert len(notes) == 1, kind_notes(report.outputs)
        assert "only 4" in notes[0] and "268" in notes[0], notes[0]  # 268 rows show 0.99 (95 % lower bound)


def test_one_sided_and_regression_scores_record_no_sides() -> None:
    reference = (_probability() * 0.45).astype(np.float32)  # every score below 0.5: not judged by decisions
    assert "decision_sides" not in _judge(reference, _faithful(reference)).outputs["spoof"]
    budget = DriftBudget(label_threshold=0.5)
    reference = _probability()
    report = measure_drift({"q": reference}, {"q": _faithful(reference)}, {"q": "regression"}, budget)
    assert "decision_sides" not in report.outputs["q"]
    assert not kind_notes(report.outputs)

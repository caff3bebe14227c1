"""A dense output of one probability per sample — CapSpot's (N, 1) "same icon?" sigmoid, spread over [0, 1], not a
yes/no flag — is judged by its decisions at --label-threshold on the rows FP32 does not leave to a near-tie: its
INT8 build shipped on correlation 0.9991 with nothing budgeting them, and a build flipping 5 % of the clear ones
keeps correlation 0.999. One-sided scores decide nothing on the data, and regressions outside [0, 1] none at all."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.decision_metrics import DECISION_TIE_MARGIN
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.output_kinds import infer_output_kinds

ROWS = 1000
REGRESSION_HINT = (
    " (read as a score decided at --label-threshold: if it is a regression (a value, not a yes/no), pass "
    "--output-kind same=regression)"
)


def _scores(threshold: float = 0.5, seed: int = 0) -> np.ndarray:
    """(ROWS, 1) sigmoid scores around `threshold`, about half on each side, spread over the range (a quarter or so
    within 0.1 of 0 or 1: no flag)."""
    logits = np.random.default_rng(seed).normal(0.0, 1.5, size=(ROWS, 1)) + np.log(threshold / (1 - threshold))
    return (1 / (1 + np.exp(-logits))).astype(np.float32)


def _int8_like(reference: np.ndarray) -> np.ndarray:
    """The reference with noise of an INT8 model's size (std 0.002, half a uint8 step)."""
    noise = np.random.default_rng(1).normal(0.0, 0.002, size=reference.shape)
    return np.clip(reference + noise, 0.0, 1.0).astype(np.float32)


def _flipped(reference: np.ndarray, rows: np.ndarray, threshold: float) -> np.ndarray:
    """An INT8-like candidate whose `rows` are moved just across `threshold` (each by as little as it takes)."""
    candidate = _int8_like(reference)
    above = reference[rows, 0] >= threshold
    candidate[rows, 0] = np.where(above, threshold - 0.001, threshold + 0.001)
    return candidate


def _judge(reference: np.ndarray, candidate: np.ndarray, threshold: float = 0.5) -> DriftReport:
    budget = DriftBudget(label_threshold=threshold)
    return measure_drift({"same": reference}, {"same": candidate}, {"same": "dense"}, budget)


@pytest.mark.parametrize(
    ("threshold", "line"),
    [
        (
            0.5,
            "output 'same' (dense): share of clear decisions unchanged (at --label-threshold 0.5; 45 rows within 0.02 "
            "of it left out) 0.9508 < budget 0.99" + REGRESSION_HINT,
        ),
        (
            0.3,
            "output 'same' (dense): share of clear decisions unchanged (at --label-threshold 0.3; 53 rows within 0.02 "
            "of it left out) 0.9504 < budget 0.99" + REGRESSION_HINT,
        ),
    ],
)
def test_a_probability_flipping_five_percent_of_its_clear_decisions_is_refused(threshold: float, line: str) -> None:
    reference = _scores(threshold)
    assert infer_output_kinds({"same": reference}) == {"same": "dense"}
    distance = np.abs(reference[:, 0].astype(np.float64) - threshold)
    clear = np.flatnonzero(distance > DECISION_TIE_MARGIN)
    nearest = clear[np.argsort(distance[clear])][: len(clear) // 20]  # 5 % of the clear rows, the nearest ones
    report = _judge(reference, _flipped(reference, nearest, threshold), threshold)
    record = report.outputs["same"]
    assert record["channel_correlation_worst"] >= 0.999  # correlation alone would ship it
    assert "flag_agreement" not in record  # spread over the range: not a yes/no flag
    ties = ROWS - len(clear)
    assert record["decision_ties"] == ties > 0
    assert record["decision_agreement"] == pytest.approx(1 - len(nearest) / len(clear))
    assert [v.metric for v in report.violations] == ["decision_agreement"]
    assert report.violations[0].line("dense") == line


def test_flips_of_near_ties_alone_hold() -> None:
    """CapSpot's INT8 flipped 5 of 384 decisions, all FP32 near-ties: rows that close to the threshold are not
    judged, and the build holds."""
    reference = _scores()
    ties = np.flatnonzero(np.abs(reference[:, 0].astype(np.float64) - 0.5) <= DECISION_TIE_MARGIN)
    report = _judge(reference, _flipped(reference, ties, 0.5))
    record = report.outputs["same"]
    assert len(ties) > 10
    assert record["decision_agreement"] == 1.0
    assert record["decision_ties"] == len(ties)
    assert report.holds, [v.line() for v in report.violations]


def test_scores_on_one_side_of_the_threshold_are_not_judged_by_decisions() -> None:
    reference = (_scores() * 0.45).astype(np.float32)  # every score under 0.5: FP32 decides "no" on every row
    candidate = _int8_like(reference)
    candidate[:20, 0] = 0.51  # INT8 says "yes" on a few: no decision on the data to judge that against
    record = _judge(reference, candidate).outputs["same"]
    assert "decision_agreement" not in record and "flag_agreement" not in record
    assert "channel_correlation_worst" in record  # judged as before, by correlation and spread error


def test_a_regression_outside_zero_one_is_judged_as_before() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(0.5, 3.0, size=(ROWS, 1)).astype(np.float32)  # a (N, 1) regression, signed, past 1
    candidate = reference.copy()
    candidate[:100, 0] = 0.5 - (candidate[:100, 0] - 0.5)  # mirrored about 0.5: decisions there would flip
    report = _judge(reference, candidate)
    record = report.outputs["same"]
    assert not {"decision_agreement", "decision_ties", "flag_agreement"} & set(record)
    named = [v.metric for v in report.violations if v.metric != "channel_gain_worst"]  # mirrored: its slope too
    assert named == ["channel_correlation_worst", "channel_error_worst"]

"""A score in [0, 1] that nobody reads at a threshold — a quality or similarity regression — was judged by decisions
it does not make, with no way to say what it is: `--output-kind NAME=regression` judges its values alone (channel
correlation and error, as any dense output), and a refusal on a score's decisions names that override."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.decision_metrics import DECISION_TIE_MARGIN
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds, parse_output_kinds

ROWS = 1000


def _quality_and_flipped() -> tuple[np.ndarray, np.ndarray]:
    """(ROWS, 1) scores spread over [0, 1], and a candidate with 5 % of its clear rows moved just across 0.5 and
    small noise elsewhere: decisions flipped, values faithful (correlation ≥ 0.999)."""
    rng = np.random.default_rng(3)
    reference = rng.uniform(0.05, 0.95, size=(ROWS, 1)).astype(np.float32)
    candidate = np.clip(reference + rng.normal(0.0, 0.002, size=reference.shape), 0, 1).astype(np.float32)
    distance = np.abs(reference[:, 0] - 0.5)
    clear = np.flatnonzero(distance > DECISION_TIE_MARGIN)
    nearest = clear[np.argsort(distance[clear])][: len(clear) // 20]
    candidate[nearest, 0] = np.where(reference[nearest, 0] >= 0.5, 0.499, 0.501)
    return reference, candidate


def test_a_regression_is_judged_by_its_values_not_by_decisions() -> None:
    reference, candidate = _quality_and_flipped()
    budget = DriftBudget()
    as_score = measure_drift({"quality": reference}, {"quality": candidate}, {"quality": "dense"}, budget)
    assert [v.metric for v in as_score.violations] == ["decision_agreement"]
    assert as_score.violations[0].hint.endswith("pass --output-kind quality=regression")
    kinds = infer_output_kinds({"quality": reference}, parse_output_kinds(["quality=regression"]))
    assert kinds == {"quality": "regression"}
    as_value = measure_drift({"quality": reference}, {"quality": candidate}, kinds, budget)
    record = as_value.outputs["quality"]
    assert record["kind"] == "regression"
    assert not as_value.violations
    assert record["channel_correlation_worst"] >= 0.999
    assert not {"decision_agreement", "flag_agreement", "decision_ties", "label_threshold"} & set(record)


def test_a_regression_whose_values_break_is_still_refused() -> None:
    reference, _ = _quality_and_flipped()
    broken = np.random.default_rng(4).permutation(reference).astype(np.float32)  # values unrelated to FP32's
    report = measure_drift({"quality": reference}, {"quality": broken}, {"quality": "regression"}, DriftBudget())
    assert "channel_correlation_worst" in [v.metric for v in report.violations]
    assert report.violations[0].line("regression").startswith("output 'quality' (regression): ")


@pytest.mark.parametrize("kind", ["classification", "embedding"])
def test_the_decision_hint_is_only_for_a_score_s_decisions(kind: str) -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(200, 10)).astype(np.float32)
    candidate = rng.normal(size=(200, 10)).astype(np.float32)
    report = measure_drift({"y": reference}, {"y": candidate}, {"y": kind}, DriftBudget())
    assert report.violations
    assert not any("regression" in violation.hint for violation in report.violations)


def test_evaluate_can_headline_a_regression_output() -> None:
    """evaluate picks the output its headline table scores by kind: a kind it did not list raised ValueError."""
    from loadtest.variant_scores import HEADLINE_KINDS
    from optimizer.output_kinds import OUTPUT_KINDS

    assert set(OUTPUT_KINDS) <= set(HEADLINE_KINDS)


def test_regression_on_integer_ids_is_refused() -> None:
    from quantserve.errors import QuantserveError

    ids = np.array([0, 3, 1, 2], dtype=np.int64)
    with pytest.raises(QuantserveError) as refused:
        infer_output_kinds({"label": ids}, {"label": "regression"})
    assert str(refused.value) == (
        "--output-kind label=regression: output 'label' holds int64 values; a regression is a float value judged by "
        "its correlation and error, integer labels or ids are ids"
    )

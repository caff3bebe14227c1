"""An SSD-style split head's per-anchor figures are judged where FP32 fires (session 68, probe on MediaPipe's pose
detector): its (N, 2254, 1) score logits were refused at "worst channel correlation 0.4418" at an anchor whose logit
never rises above −51, a value no decoder reads; over the 88 anchors that fire the worst was 0.841, the figure to
cite. Judged here through `measure_drift`, the function verification and evaluate call, on kinds read off the values.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.output_kinds import infer_output_kinds

ROWS, ANCHORS, FIRING = 160, 1200, 40  # over 1024 positions: anchors, not a sequence
DEAD = 300  # an anchor whose logit never rises above about −20: it fires on no row


def _head() -> dict[str, np.ndarray]:
    """FP32's (N, A, 1) score logits (the first FIRING anchors fire on some rows, the rest lie far below 0) and
    (N, A, 12) box regressions of the same anchors."""
    rng = np.random.default_rng(68)
    scores = rng.uniform(-60.0, -25.0, size=(1, ANCHORS, 1)) + rng.normal(0.0, 2.0, size=(ROWS, ANCHORS, 1))
    scores[:, :FIRING, 0] = rng.normal(-1.5, 3.0, size=(ROWS, FIRING))
    # per anchor and coordinate a level and a spread of its own: centre offsets, sizes, keypoint offsets
    level, spread = rng.uniform(-40.0, 120.0, size=(1, ANCHORS, 12)), rng.uniform(5.0, 30.0, size=(1, ANCHORS, 12))
    boxes = level + spread * rng.normal(size=(ROWS, ANCHORS, 12))
    return {"scores": scores.astype(np.float32), "boxes": boxes.astype(np.float32)}


def _faithful(reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {name: values + rng.normal(0.0, 0.02, values.shape).astype(np.float32) for name, values in reference.items()}


def _drift(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> DriftReport:
    return measure_drift(reference, candidate, infer_output_kinds(reference), DriftBudget())


def _scrambled(values: np.ndarray, anchor: int, spread: float) -> np.ndarray:
    """`values` with one anchor's entries moved by noise of `spread` (its correlation over the rows falls)."""
    moved = values.copy()
    moved[:, anchor] += np.random.default_rng(7).normal(0.0, spread, moved[:, anchor].shape).astype(np.float32)
    return moved


def test_an_anchor_that_never_fires_is_not_judged_by_correlation() -> None:
    reference = _head()
    candidate = _faithful(reference)
    candidate["scores"] = _scrambled(candidate["scores"], DEAD, 8.0)  # still under −10: its sigmoid stays 0
    candidate["boxes"] = _scrambled(candidate["boxes"], DEAD, 60.0)  # a box no decoder reads
    report = _drift(reference, candidate)
    assert report.holds, [v.line() for v in report.violations]
    scores = report.outputs["scores"]
    assert scores["anchors_judged"] == FIRING, scores
    assert f"the {FIRING} of {ANCHORS} anchors where FP32's 'scores' reaches" in scores["judged_at"], scores
    assert scores["channel_correlation_worst"] > 0.99, scores  # the firing anchors' worst, not the dead one's
    assert report.outputs["boxes"]["anchors_judged"] == FIRING


def test_a_firing_anchor_that_misses_is_cited_by_its_own_index_with_the_count() -> None:
    reference = _head()
    candidate = _faithful(reference)
    candidate["scores"] = _scrambled(candidate["scores"], DEAD, 8.0)
    candidate["scores"] = _scrambled(candidate["scores"], 17, 2.0)  # a firing anchor: its decisions move
    report = _drift(reference, candidate)
    missed = [v for v in report.violations if v.output == "scores" and v.metric == "channel_correlation_worst"]
    assert missed, [v.line() for v in report.violations]
    assert report.outputs["scores"]["channel_worst"] == 17, report.outputs["scores"]
    line = missed[0].line()
    assert f"the {FIRING} of {ANCHORS} anchors where FP32's 'scores' reaches" in line, line
    assert f"each of the {FIRING} positions FP32 fires at" in line and "the worst at position 17 of" in line, line


def test_a_firing_anchors_box_rows_that_miss_are_cited_at_that_anchor() -> None:
    reference = _head()
    candidate = _faithful(reference)
    candidate["boxes"] = _scrambled(candidate["boxes"], 23, 40.0)
    report = _drift(reference, candidate)
    missed = [v for v in report.violations if v.output == "boxes" and v.metric == "channel_correlation_worst"]
    assert missed, [v.line() for v in report.violations]
    assert "axis 1, entry 23" in missed[0].line(), missed[0].line()


def test_int8_turning_on_an_anchor_fp32_never_fires_is_refused_naming_it() -> None:
    reference = _head()
    candidate = _faithful(reference)
    candidate["scores"][:3, DEAD, 0] = 4.0  # three detections invented at a dead anchor
    report = _drift(reference, candidate)
    fired = [v for v in report.violations if v.output == "scores" and v.metric == "quiet_fired"]
    assert fired and fired[0].value == 3, [v.line() for v in report.violations]
    assert f"entry {DEAD}" in fired[0].line(), fired[0].line()


def test_anchors_firing_somewhere_on_most_rows_few_on_each_are_a_head() -> None:
    """MediaPipe's full-range face detector on 300 photos with faces everywhere fired 1271 of its 2304 anchors on
    some row, a few on each: still an anchor head (the share is read per row, the median row's)."""
    from optimizer.anchor_heads import anchor_heads

    reference = _head()
    rng = np.random.default_rng(5)
    scores = reference["scores"].copy()
    for row in range(ROWS):  # 20 anchors fire on each row, a different 20: most anchors fire somewhere
        scores[row, rng.choice(ANCHORS, 20, replace=False), 0] = rng.uniform(0.5, 6.0, 20)
    reference["scores"] = scores
    assert (scores[..., 0] >= -2.197).any(axis=0).mean() > 0.5
    heads = anchor_heads(reference, infer_output_kinds(reference), 0.5)
    assert set(heads) == {"scores", "boxes"}
    assert heads["scores"].firing.mean() > 0.5

"""A tagger's label sets leave out FP32's near-ties at --label-threshold, as a probability's decisions do (session 63:
musicnn's MTT tagger was refused at label-set agreement 0.9861, 4 of its 5 changed rows FP32 scores of 0.5010 to
0.5118); and a multilabel hint does not point at a lower cut-off where the label sets were measured to agree less."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget


def _tags(rows: int = 200, seed: int = 3) -> np.ndarray:
    """Sigmoid scores over 20 tags, most plainly off, two on per row, none near 0.5."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.0, 0.2, size=(rows, 20))
    for row in range(rows):
        scores[row, rng.choice(20, size=2, replace=False)] = rng.uniform(0.8, 1.0, size=2)
    return scores


def test_near_ties_are_left_out_of_the_label_sets_and_counted() -> None:
    reference = _tags()
    reference[:6, 0] = [0.501, 0.504, 0.512, 0.49, 0.495, 0.519]  # FP32's coin flips at 0.5
    candidate = reference.copy()
    candidate[:6, 0] = [0.499, 0.497, 0.49, 0.51, 0.505, 0.481]  # INT8 turns each of them
    candidate[10, 1] = 0.0 if reference[10, 1] >= 0.5 else 0.7  # a clear decision turned: still a change
    report = measure_drift({"tags": reference}, {"tags": candidate}, {}, DriftBudget(min_top1_agreement=0.999))
    record = report.outputs["tags"]
    assert record["kind"] == "multilabel"
    assert record["label_set_agreement"] == 1 - 1 / 200
    assert record["label_ties"] == 6 and record["label_tie_margin"] == 0.02
    assert record["decision_agreement"] == 1 - 1 / (200 * 20 - 6)
    line = report.violations[0].line("multilabel")
    assert "label-set agreement (at --label-threshold 0.5; 6 decisions within 0.02 of it left out) 0.995 <" in line


def test_logits_leave_out_the_same_margin_in_probability() -> None:
    reference = np.log(_tags() / (1 - _tags()))
    reference[:3, 0] = [0.05, -0.07, 0.2]  # sigmoid 0.5125, 0.4825 (ties), 0.5498 (clear)
    candidate = reference.copy()
    candidate[:3, 0] = [-0.05, 0.07, -0.2]
    report = measure_drift({"t": reference}, {"t": candidate}, {"t": "multilabel"}, DriftBudget())
    record = report.outputs["t"]
    assert record["label_logits"] and record["label_ties"] == 2
    assert record["label_set_agreement"] == 1 - 1 / 200


def test_multitask_tasks_leave_out_near_ties_too() -> None:
    reference = _tags()
    reference[:5, 3] = 0.505
    candidate = reference.copy()
    candidate[:5, 3] = 0.495
    record = measure_drift({"t": reference}, {"t": candidate}, {"t": "multitask"}, DriftBudget()).outputs["t"]
    assert record["task_agreement_worst"] == 1.0 and record["label_ties"] == 5


def test_no_tags_hint_names_metric_where_a_tenth_of_the_cut_agrees_less() -> None:
    rng = np.random.default_rng(5)
    reference = rng.uniform(0.0, 0.3, size=(200, 20))
    reference[:40, 2], reference[40:80, 3], reference[20:60, 4] = 0.9, 0.8, 0.95  # 60 % of the rows: no tag on
    candidate = reference.copy()
    candidate[:4, 2] = 0.3  # four clear tags lost: label sets 0.98 at 0.5
    low = (reference > 0.02) & (reference < 0.045)
    candidate[low] = 0.06  # many rows change at 0.05
    report = measure_drift({"tags": reference}, {"tags": candidate}, {}, DriftBudget())
    record = report.outputs["tags"]
    assert not report.holds and record["label_set_agreement_lower"] < record["label_set_agreement"]
    line = report.violations[0].line("multilabel")
    assert "60 % of the rows have no class on at --label-threshold 0.5" in line
    assert "pass that with --label-threshold" not in line
    assert f"agree less ({record['label_set_agreement_lower']:.4g})" in line and "--metric" in line


def test_the_lower_cut_uses_a_margin_narrowed_to_it() -> None:
    """At a tenth of 0.5 a fixed 0.02 would leave out every score from 0.03 to 0.07 (musicnn: 12 % of its
    decisions, label sets read 1.0 there where 0.60 of the rows kept theirs): the margin narrows as the cut nears 0."""
    reference = _tags()
    reference[:, 5] = 0.035
    candidate = reference.copy()
    candidate[:, 5] = 0.065
    record = measure_drift({"tags": reference}, {"tags": candidate}, {}, DriftBudget()).outputs["tags"]
    assert record["label_set_agreement_lower"] == 0.0

"""A long clause of where a figure was taken — an anchor head's "per anchor over the 40 of 1200 anchors where FP32's
'scores' reaches 0.1 …" — was said beside each of an output's misses: MediaPipe's full-range face detector's refusal
(session 68) said it five times in 2,649 characters. It is said once a line; a short position ("axis 2, entry 1")
stays beside each figure. Each output says its own once (the boxes' and the scores' differ in what the others
are)."""

from __future__ import annotations

import numpy as np
from test_s68_anchor_firing import FIRING, _head

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.int8_refusal_words import drift_line
from optimizer.output_kinds import infer_output_kinds
from optimizer.verify import drift_refusal

PHRASE = f"per anchor over the {FIRING} of 1200 anchors"


def _missed() -> tuple[str, str]:
    reference = _head()
    rng = np.random.default_rng(11)
    candidate = {name: values.copy() for name, values in reference.items()}
    for name in candidate:  # every firing anchor's values moved: correlation, error and gain all missed
        moved = candidate[name][:, :FIRING]
        candidate[name][:, :FIRING] = 0.7 * moved + rng.normal(0.0, 2.0 * moved.std(), moved.shape)
    report = measure_drift(reference, candidate, infer_output_kinds(reference), DriftBudget())
    assert len(report.violations) >= 3
    record = {"outputs": report.outputs, "violations": [v.to_dict() for v in report.violations]}
    return drift_line(report), drift_refusal(record)


def test_an_anchor_heads_where_is_said_once_a_line_for_each_output() -> None:
    for line in _missed():
        assert line.count(PHRASE) == 2, line  # once for the boxes, once for the scores
        assert line.count("(the others' boxes feed no decision)") == 1, line
        assert line.count("(the others by INT8 not turning them on and their error in score, a logit's sigmoid)") == 1
        assert "worst channel error (RMS / FP32 std) (axis 1, entry 22)" in line, line  # a position stays
        assert "and " in line and " more: " in line, line  # the other misses are still named

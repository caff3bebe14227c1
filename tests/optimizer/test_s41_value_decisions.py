"""A --label-threshold given reads a dense output's values as decisions, said (session 41: attacut's per-character
boundary logits, (N, T) read dense, were judged by one correlation, 0.9994, the threshold 0 given judging nothing
while 99 of 16801 boundaries flipped)."""

from __future__ import annotations

import numpy as np

from optimizer.decision_metrics import DECISION_TIE_MARGIN
from optimizer.drift import kind_notes
from optimizer.drift_budget import UnsetThreshold
from optimizer.drift_metrics import output_metrics


def test_values_of_a_dense_output_are_decisions_at_a_threshold_given() -> None:
    rng = np.random.default_rng(0)
    fp32 = rng.standard_normal((200, 64)).astype(np.float32) * 3
    int8 = fp32.copy()
    flips = rng.choice(fp32.size, 300, replace=False)
    int8.reshape(-1)[flips] = -fp32.reshape(-1)[flips]  # 300 of 12800 values cross 0
    record = output_metrics("dense", fp32, int8, label_threshold=0.0)
    clear = np.abs(fp32) > DECISION_TIE_MARGIN
    kept = (fp32 >= 0) == (int8 >= 0)
    assert record["value_decision_agreement"] == float(np.mean(kept[clear])) < 0.99
    assert "decision_agreement" not in record, "information, not judged: the threshold may be another output's"
    [note] = kind_notes({"y": record})
    assert note.startswith("output 'y' (dense): its values read as decisions at --label-threshold 0 agree 0.97")
    unset = output_metrics("dense", fp32, int8, label_threshold=UnsetThreshold(0.5))
    assert "value_decision_agreement" not in unset, "no threshold given: a dense map's values are no decisions"

"""A question-answering model's span start/end logits, (N, T), are a classification over the real positions, read so
by their name where their softmax is not peaked (issue 9). A small BERT QA model's (median top softmax 0.28) were read
as yes/no values per token and an INT8 build moving 5-8 % of its answer positions shipped at label-set agreement
0.9933 (session 30 probe).
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds


def _span_logits(rows: int = 300, tokens: int = 48) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weakly trained start logits: every token plainly off (about -4), a few candidates near 0, pads at -1."""
    rng = np.random.default_rng(5)
    lengths = rng.integers(12, tokens + 1, rows)
    mask = (np.arange(tokens)[None, :] < lengths[:, None]).astype(np.int64)
    logits = rng.normal(-4.0, 0.6, (rows, tokens)).astype(np.float32)
    for row, length in enumerate(lengths):
        logits[row, rng.choice(length, 3, replace=False)] = rng.normal(0.3, 0.4, 3)
    logits[mask == 0] = -1.0
    ids = rng.integers(1, 1000, (rows, tokens)) * mask
    return logits, {"input_ids": ids, "attention_mask": mask}


def test_start_and_end_logits_are_answers_over_positions_and_a_moved_answer_is_refused() -> None:
    logits, inputs = _span_logits()
    kinds = infer_output_kinds({"start_logits": logits, "logits": logits}, inputs=inputs)
    assert kinds == {"start_logits": "classification", "logits": "multilabel"}, kinds  # unnamed: yes/no per token
    moved = logits.copy()
    rows = np.arange(0, len(logits), 10)  # a tenth of the answers moved to a real position FP32 gave less
    answers = np.where(inputs["attention_mask"] == 1, logits, -np.inf).argmax(axis=1)
    moved[rows, answers[rows]] -= 1.5
    report = measure_drift({"start_logits": logits}, {"start_logits": moved}, kinds, DriftBudget(), None, inputs)
    assert not report.holds
    assert "decision_agreement" not in report.outputs["start_logits"]  # no --label-threshold given: top-1 alone
    assert report.violations[0].metric == "top1_agreement" and report.violations[0].value < 0.95
    pads = logits.copy()
    pads[inputs["attention_mask"] == 0] = 3.0  # a pad above every real value: never the answer
    assert measure_drift({"start_logits": logits}, {"start_logits": pads}, kinds, DriftBudget(), None, inputs).holds

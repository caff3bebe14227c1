"""optimize counts the held-out evidence for a one-value-per-token output's label sets in its real tokens, as it
counts a tagger's (session 58): deepcut's sentence model, 200 sentences of 9532 characters, was refused up front,
"needs at least 268 held-out rows, 200 given", for an agreement 0.9974 its characters show (≥ 0.996)."""

from __future__ import annotations

import numpy as np

from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.drift_evidence import evidence_refusal, evidence_shortfall, thin_evidence, token_value_outputs

N, T = 200, 48


def _rows(rows: int = N, length: int = T) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    mask = (np.arange(T)[None, :] < length).repeat(rows, axis=0).astype(np.int64)
    chars = np.where(mask == 1, 7, 0).astype(np.int64)
    inputs = {"chars": chars, "types": chars % 5, "mask": mask}
    outputs = {"boundary": np.full((rows, T), 0.9, np.float32), "doc": np.full((rows, 3), 0.9, np.float32)}
    return inputs, outputs


def test_per_token_label_sets_are_counted_by_tokens() -> None:
    inputs, outputs = _rows()
    per_token = token_value_outputs(outputs, inputs)
    assert per_token == {"boundary"}  # (N, 3) is no per-token output
    kinds = {"boundary": "multilabel", "doc": "multilabel"}
    short = evidence_shortfall(kinds, DriftBudget(), N, inputs, per_token)
    assert [entry["output"] for entry in short] == ["doc"]  # 200 rows cannot show 0.99; 9600 tokens can


def test_a_shortfall_in_tokens_says_tokens() -> None:
    inputs, outputs = _rows(4)  # 192 real tokens
    short = evidence_shortfall(
        {"boundary": "multilabel"}, DriftBudget(), 4, inputs, token_value_outputs(outputs, inputs)
    )
    assert short[0]["rows"] == 4 * T
    assert "needs at least 268 held-out real tokens (95 % lower bound, every token agreeing), 192 given" in str(
        evidence_refusal(short)
    )


def test_thin_evidence_counts_the_judged_tokens() -> None:
    record = {"kind": "multilabel", "label_set_agreement": 0.9974, "tokens_judged": 9532}
    assert thin_evidence(DriftReport({"boundary": record}), DriftBudget(), 200) == []
    over_positions = {"kind": "classification", "top1_agreement": 0.9974, "tokens_judged": 9532}  # a row's answer
    assert thin_evidence(DriftReport({"start": over_positions}), DriftBudget(), 200)[0]["rows"] == 200

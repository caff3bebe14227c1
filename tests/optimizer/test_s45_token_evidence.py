"""A per-token agreement rate is shown by the real tokens judged, as box agreement by boxes (session 45): a NER
tagger's 200 held-out sentences (1600 real tokens, agreement 0.9956, 95 % lower bound 0.992 by tokens) were refused
up front as "268 held-out rows needed, 200 given", a faithful build 1.83× FP32."""

from __future__ import annotations

import numpy as np

from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.drift_evidence import evidence_refusal, evidence_shortfall, thin_evidence

KINDS = {"tags": "token_classification"}


def _inputs(rows: int, tokens_a_row: int, width: int = 16) -> dict[str, np.ndarray]:
    ids = np.zeros((rows, width), np.int64)
    ids[:, :tokens_a_row] = np.random.default_rng(0).integers(5, 3000, (rows, tokens_a_row))
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


def test_enough_real_tokens_show_the_budget_on_fewer_rows() -> None:
    assert evidence_shortfall(KINDS, DriftBudget(), 200, _inputs(200, 8)) == []
    short = evidence_shortfall(KINDS, DriftBudget(), 200)  # no token ids given: counted by rows, as before
    assert short and short[0]["rows"] == 200 and short[0]["rows_needed"] == 268


def test_too_few_real_tokens_are_refused_in_tokens() -> None:
    short = evidence_shortfall(KINDS, DriftBudget(), 40, _inputs(40, 3))
    assert short and short[0]["rows"] == 120
    line = evidence_refusal(short)
    assert "needs at least 268 held-out real tokens (95 % lower bound, every token agreeing), 120 given" in line, line


def test_the_rate_seen_is_judged_over_the_tokens_it_was_measured_on() -> None:
    record = {"kind": "token_classification", "token_agreement": 0.9956, "tokens_judged": 1600}
    assert thin_evidence(DriftReport({"tags": record}), DriftBudget(), 200) == []
    thin = thin_evidence(DriftReport({"tags": {**record, "tokens_judged": 300}}), DriftBudget(), 200)
    assert thin and thin[0]["rows"] == 300

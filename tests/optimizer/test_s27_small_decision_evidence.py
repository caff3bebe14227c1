"""The thin-evidence note covers a dense probability's `decision_agreement` (one score in [0, 1] per sample, read at
--label-threshold): a 0.99 budget "held" on 40 clear rows shows only ≥ 0.937. Counted on the clear rows it was
measured on (the near-ties left out), and only where the output's kind budgets it: a multilabel record carries a
`decision_agreement` as information, not listed.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import thin_evidence, thin_evidence_line

RNG = np.random.default_rng(27)


def _probability(clear: int, ties: int) -> np.ndarray:
    """(N, 1) scores spread over [0.15, 0.85], `ties` of them within 0.02 of 0.5: a probability, not a flag."""
    spread = np.concatenate([RNG.uniform(0.15, 0.45, clear // 2), RNG.uniform(0.55, 0.85, clear - clear // 2)])
    near = RNG.uniform(0.485, 0.515, ties)
    return RNG.permutation(np.concatenate([spread, near])).reshape(-1, 1).astype(np.float32)


def test_a_probability_s_decisions_on_few_clear_rows_are_noted() -> None:
    scores = _probability(clear=40, ties=12)
    report = measure_drift({"match": scores}, {"match": scores.copy()}, {"match": "dense"}, DriftBudget())
    assert report.outputs["match"]["decision_ties"] == 12 and report.holds
    (entry,) = thin_evidence(report, DriftBudget(), rows=len(scores))
    assert (entry["metric"], entry["value"], entry["rows"], entry["rows_needed"]) == (
        "decision_agreement",
        1.0,
        40,
        268,
    )
    assert thin_evidence_line(entry) == (
        "output 'match': share of clear decisions unchanged 1 over 40 held-out clear rows shows only ≥ 0.937 (95 % "
        "lower bound), not the budget's 0.99; about 268 clear rows would (--eval)"
    )
    many = _probability(clear=300, ties=12)
    report = measure_drift({"match": many}, {"match": many.copy()}, {"match": "dense"}, DriftBudget())
    assert thin_evidence(report, DriftBudget(), rows=len(many)) == []  # 300 clear rows show ≥ 0.99


def test_a_multilabel_s_unbudgeted_decision_agreement_is_not_listed() -> None:
    tags = RNG.uniform(0.0, 1.0, (40, 5)).astype(np.float32)
    report = measure_drift({"tags": tags}, {"tags": tags.copy()}, {"tags": "multilabel"}, DriftBudget())
    assert report.outputs["tags"]["decision_agreement"] is not None
    assert [e["metric"] for e in thin_evidence(report, DriftBudget(), rows=len(tags))] == ["label_set_agreement"]

"""A tagger's answer classes are each judged too, not only its per-token agreement pooled over a background class
(optimizer.class_agreement.lost_class; session 53).

SpliceAI's (N, L, 3) splice-site softmax typed `token_classification` (session 52): every acceptor and donor call
moved 7 nucleotides agreed on 0.9925 of positions, inside the 0.99 budget, because nearly every position is
"neither". A class whose calls INT8 answers otherwise beyond chance is refused as a classifier's is.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_metrics import token_ids_metrics

N, T, CALLS = 8, 2000, 4  # rows, positions, calls of each site class per row (0.4 % of positions called)


def _splice_calls(shift: int, moved_rows: int = N) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 3) logits, "neither" everywhere but CALLS acceptor (1) and donor (2) sites per row; the candidate's
    sites of the first `moved_rows` rows moved by `shift` positions."""
    rng = np.random.default_rng(0)
    reference = np.zeros((N, T, 3), np.float32)
    reference[..., 0] = 5.0
    candidate = reference.copy()
    for row in range(N):
        sites = rng.choice(np.arange(50, T - 50, 100), 2 * CALLS, replace=False)
        for k, site in enumerate(sites):
            label = 1 + k % 2
            reference[row, site] = (0.0, 0.0, 0.0)
            reference[row, site, label] = 9.0
            moved = site + (shift if row < moved_rows else 0)
            candidate[row, moved] = (0.0, 0.0, 0.0)
            candidate[row, moved, label] = 9.0
    return reference, candidate


def test_calls_moved_off_their_sites_are_refused_though_positions_mostly_agree() -> None:
    reference, candidate = _splice_calls(shift=7)
    report = measure_drift({"y": reference}, {"y": candidate}, {"y": "token_classification"}, DriftBudget())
    record = report.outputs["y"]
    assert record["token_agreement"] == 1 - 2 * 2 * CALLS * N / (N * T)  # 0.992: inside the 0.99 budget
    assert not report.holds
    (violation,) = report.violations
    assert violation.metric == "class_agreement" and violation.value == 0.0
    line = violation.line("token_classification")
    assert f"the {CALLS * N} tokens FP32 answers class 1" in line, line


def test_one_call_moved_among_many_is_chance_and_holds() -> None:
    reference, candidate = _splice_calls(shift=0)
    candidate[0, :, :] = reference[0]
    site = int(np.flatnonzero(reference[0].argmax(axis=1) == 1)[0])
    candidate[0, site], candidate[0, site + 1] = reference[0, site + 1], reference[0, site]  # one call one place on
    report = measure_drift({"y": reference}, {"y": candidate}, {"y": "token_classification"}, DriftBudget())
    background = N * T - 2 * CALLS * N
    assert report.outputs["y"]["class_flips"] == [[1, CALLS * N, CALLS * N - 1], [0, background, background - 1]]
    assert report.holds, report.violations


def test_a_tagger_whose_argmax_is_in_its_graph_is_judged_by_class_too() -> None:
    reference, candidate = _splice_calls(shift=7)
    fp32, int8 = reference.argmax(axis=2), candidate.argmax(axis=2)
    record = token_ids_metrics(fp32, int8, np.ones(fp32.shape, bool))
    assert record["classes_answered"] == 3 and [1, CALLS * N, 0] in record["class_flips"]
    mask = {"attention_mask": np.ones(fp32.shape, np.int64)}
    report = measure_drift({"ids": fp32}, {"ids": int8}, {"ids": "ids"}, DriftBudget(), inputs=mask)
    assert report.outputs["ids"]["token_agreement"] == 0.992
    (violation,) = report.violations
    assert violation.metric == "class_agreement" and "32 tokens FP32 answers class 1" in violation.line("ids")


def test_ids_of_a_vocabulary_are_not_read_as_classes() -> None:
    from optimizer.class_agreement import id_flips

    tokens = np.array([[5, 70000, 3]])
    assert id_flips(tokens, tokens + 1) == {}
    assert id_flips(np.array([0, -1]), np.array([0, 0])) == {}
    assert id_flips(np.array([4097]), np.array([1]), classes=5000)["classes_answered"] == 1

"""A TopK's indices beside its sorted values are judged by the first id's agreement (optimizer.ranked_ids; session 50).

Judged as ids, every rank in order, a classifier with TopK(5) in its graph was refused at id agreement 0.65 while its
top-1 class held on every row: near-tied classes at ranks 2–5 had swapped.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.ranked_ids import ranked_outputs

N, CLASSES, K = 512, 1000, 5


def _top_k(logits: np.ndarray) -> dict[str, np.ndarray]:
    indices = np.argsort(-logits, axis=1)[:, :K]
    return {"values": np.take_along_axis(logits, indices, axis=1), "indices": indices.astype(np.int64)}


def _classifier(first_moved: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Logits with a clear winner per row, then the same with small noise (ranks 2–5 swap) and the winner of the
    first `first_moved` rows pushed to the bottom."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((N, CLASSES)) * 2).astype(np.float32)
    winners = rng.integers(0, CLASSES, N)
    logits[np.arange(N), winners] += 12
    noisy = logits + rng.standard_normal(logits.shape).astype(np.float32) * 0.05
    noisy[np.arange(first_moved), winners[:first_moved]] -= 30
    return _top_k(logits), _top_k(noisy)


def test_ranks_2_to_5_swapping_under_a_kept_first_id_hold() -> None:
    reference, candidate = _classifier(first_moved=0)
    kinds = infer_output_kinds(reference)
    assert kinds["indices"] == "ids"
    report = measure_drift(reference, candidate, kinds, DriftBudget())
    record = report.outputs["indices"]
    assert record["first_id_agreement"] == 1.0 and record["ranked"]
    assert record["ranks_unchanged"] < 0.9 and record["id_set_unchanged"] < 1.0, record  # what moved, recorded
    assert "id_agreement" not in record
    assert report.holds, report.violations


def test_a_changed_first_id_is_refused() -> None:
    reference, candidate = _classifier(first_moved=16)
    report = measure_drift(reference, candidate, infer_output_kinds(reference), DriftBudget())
    (violation,) = [violation for violation in report.violations if violation.output == "indices"]
    assert violation.value == 1 - 16 / N
    assert violation.line("ids").startswith("output 'indices' (ids): first-ranked id agreement 0.9688 < budget 0.99")


def test_ids_without_sorted_values_beside_them_are_judged_whole() -> None:
    """The indices alone (no values output), or beside unsorted floats, say nothing of ranks: every id counts."""
    reference, candidate = _classifier(first_moved=0)
    alone = measure_drift(
        {"indices": reference["indices"]}, {"indices": candidate["indices"]}, {"indices": "ids"}, DriftBudget()
    )
    assert alone.outputs["indices"]["id_agreement"] < 0.9 and not alone.holds
    shuffled = dict(reference)
    shuffled["values"] = np.random.default_rng(1).permuted(reference["values"], axis=1)
    assert ranked_outputs(shuffled) == set()


def test_ascending_values_and_repeated_ids() -> None:
    values = np.sort(np.random.default_rng(2).standard_normal((8, 4)), axis=1).astype(np.float32)
    ids = np.tile(np.arange(4, dtype=np.int64), (8, 1))
    assert ranked_outputs({"v": values, "i": ids}) == {"i"}  # TopK's largest=0
    assert ranked_outputs({"v": np.zeros((8, 4), np.float32), "i": ids}) == set()  # constant rows rank nothing
    ids[3, 1] = ids[3, 0]
    assert ranked_outputs({"v": values, "i": ids}) == set()  # a row repeating an id is no ranking

"""A CTC recogniser's best path as its output ((N, T) class ids, an ArgMax per frame in its graph) is judged by the
text it decodes to when typed `--output-kind NAME=sequence`, and a refusal of it as ids says so (session 51).

Judged as ids, every frame counted, frames flipping between a character and the blank at its edges (the text the
same) refused a faithful build, and nothing said how to judge the text.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import OUTPUT_KINDS, infer_output_kinds
from optimizer.typed_kinds import check_overrides
from quantserve.errors import QuantserveError

N, T = 200, 40


def _paths(text_changed: int) -> tuple[np.ndarray, np.ndarray]:
    """Best paths of N lines (characters 1..9 of 3 frames each between blanks); INT8's with a character's first
    frame turned blank on every line (its text the same), and `text_changed` lines' second character changed."""
    rng = np.random.default_rng(0)
    fp32 = np.zeros((N, T), np.int64)
    for row in range(N):
        for start in range(1, T - 4, 5):
            fp32[row, start : start + 3] = rng.integers(1, 10)
    int8 = fp32.copy()
    int8[:, 1] = 0  # the first character's first frame: blank now, the text unchanged
    int8[:text_changed, 6:9] = fp32[:text_changed, 6:9] % 9 + 1
    return fp32, int8


def test_a_best_path_read_as_ids_is_refused_with_the_way_to_judge_its_text() -> None:
    fp32, int8 = _paths(text_changed=0)
    kinds = infer_output_kinds({"path": fp32})
    assert kinds == {"path": "ids"}
    report = measure_drift({"path": fp32}, {"path": int8}, kinds, DriftBudget())
    (violation,) = report.violations
    assert violation.metric == "id_agreement" and "--output-kind path=sequence" in violation.line(), violation.line()


@pytest.mark.parametrize(("changed", "holds"), [(0, True), (2, True), (8, False)])
def test_a_best_path_typed_sequence_is_judged_by_its_decoded_text(changed: int, holds: bool) -> None:
    fp32, int8 = _paths(text_changed=changed)
    kinds = infer_output_kinds({"path": fp32}, {"path": "sequence"})
    report = measure_drift({"path": fp32}, {"path": int8}, kinds, DriftBudget())
    record = report.outputs["path"]
    assert record["sequence_agreement"] == 1 - changed / N and record["position_agreement"] < 0.98, record
    assert report.holds == holds, report.violations
    if not holds:
        line = report.violations[0].line()
        assert line == (
            "output 'path': decoded-sequence agreement 0.96 < budget 0.98 (decoded from the best path: repeats "
            "merged, then the blank (0) dropped (per-position agreement 0.9720))"
        )


def test_sequence_typed_on_integers_needs_samples_by_frames() -> None:
    check_overrides({"path": "sequence"}, {"path": np.zeros((4, 10), np.int64)}, OUTPUT_KINDS)
    with pytest.raises(QuantserveError, match=r"--output-kind path=sequence: .*\(samples, frames\)"):
        check_overrides({"path": "sequence"}, {"path": np.zeros((4, 10, 2), np.int64)}, OUTPUT_KINDS)

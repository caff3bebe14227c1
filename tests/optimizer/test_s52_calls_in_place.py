"""A per-position softmax read as a sequence is judged with its calls in place (session 52).

SpliceAI's (N, 500, 3) splice-site softmax ("neither" first, a call every few hundred positions) was read as CTC:
its decoded sequence is the order of its calls, so a build moving every call 7 nucleotides kept 0.979 of its
sequences and 0.993 of its positions, inside both budgets. Read off the values, a sequence now also needs each
decoded symbol's run to overlap FP32's (`metrics.located_path_agreement`); typed `sequence` (a CTC recogniser,
its text all that matters) is judged by its text alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.typed_kinds import TypedKind
from quantserve import metrics

RNG = np.random.default_rng(52)


def _calls(samples: int = 300, positions: int = 200) -> np.ndarray:
    """Softmax over (neither, acceptor, donor) per position, a call every ~40 positions."""
    logits = RNG.normal(0.0, 0.3, size=(samples, positions, 3))
    logits[..., 0] += 4.0
    for row in logits:
        for at in RNG.choice(np.arange(10, positions - 10), size=4, replace=False):
            row[at, RNG.integers(1, 3)] += 8.0
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_calls_moved_along_the_sequence_miss_the_budget_with_the_override_named() -> None:
    reference = _calls()
    moved = np.roll(reference, 7, axis=1)  # every call 7 positions on: the same calls in the same order
    report = measure_drift({"splice": reference}, {"splice": moved}, {}, DriftBudget())
    record = report.outputs["splice"]
    assert record["kind"] == "sequence"
    assert record["sequence_agreement"] == 1.0 and record["position_agreement"] > 0.95  # what passed before
    assert record["located_agreement"] == 0.0
    (violation,) = report.violations
    assert violation.metric == "located_agreement"
    line = violation.line()
    assert line.startswith("output 'splice': decoded-sequence agreement, each symbol in place 0 < budget 0.98")
    assert "pass --output-kind splice=sequence" in line


def test_a_typed_sequence_is_judged_by_its_text_alone() -> None:
    reference = _calls()
    moved = np.roll(reference, 7, axis=1)
    report = measure_drift({"ctc": reference}, {"ctc": moved}, {"ctc": TypedKind("sequence")}, DriftBudget())
    assert report.holds, [v.line() for v in report.violations]
    assert "located_agreement" not in report.outputs["ctc"]


def test_a_recognisers_runs_moving_at_their_edges_stay_in_place() -> None:
    """PP-OCR-style runs of a character over frames: a boundary frame turning blank or the next character, or a
    character one frame over, keeps it in place (PP-OCRv5's INT8 build read 1.0 in place, as its text; PP-OCRv4's
    0.9044, as its text)."""
    reference = np.zeros((1, 12), dtype=np.int64)
    reference[0, 2:5], reference[0, 7:10] = 3, 5
    candidate = reference.copy()
    candidate[0, 4], candidate[0, 6] = 0, 5  # one run shorter, the next one longer
    assert metrics.located_path_agreement(reference, candidate) == 1.0
    candidate[0, 6:10], candidate[0, 10] = 0, 5  # the second character one frame past its FP32 run: in place
    assert metrics.located_path_agreement(reference, candidate) == 1.0
    candidate[0, 10], candidate[0, 11] = 0, 5  # two frames past: moved
    assert metrics.located_path_agreement(reference, candidate) == 0.0
    assert metrics.path_sequence_agreement(reference, candidate) == pytest.approx(1.0)

"""What optimize's per-request verification of a value-length decoder claims (session 66 review): with no request of
FP32's length left, its cosine read 1.0 (none compared); a share of FP32's length held on 12 requests (95 % lower
bound 0.74) carried no thin-evidence word; a refusal on 12 requests did not say it rests on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimizer import verify_per_request as per_request
from optimizer.drift_budget import DriftBudget


def _answers(lengths: list[int]) -> list[dict[str, np.ndarray]]:
    return [{"y": np.ones((1, t, 8), np.float32)} for t in lengths]


def test_no_request_of_fp32s_length_has_no_cosine() -> None:
    record = per_request._output_record("y", _answers([2, 3]), _answers([4, 5]), [1])
    assert record["cosine_mean"] is None and record["cosine_worst"] is None
    assert not [v for v in per_request._violations("y", record, DriftBudget(min_sequence_agreement=0), None, "")]


def test_a_share_held_on_too_few_requests_is_thin_evidence() -> None:
    record = per_request._output_record("y", _answers([2] * 12), _answers([2] * 12), [1])
    entry = per_request._thin("y", record, DriftBudget())
    assert entry is not None and entry["rows"] == 12 and entry["units"] == "requests"
    assert entry["lower_bound"] < 0.98 and entry["rows_needed"] >= 100
    many = per_request._output_record("y", _answers([2] * 400), _answers([2] * 400), [1])
    assert per_request._thin("y", many, DriftBudget()) is None


def test_a_refusal_on_few_requests_says_it_rests_on_them() -> None:
    record = per_request._output_record("y", _answers([2] * 12), _answers([2] * 11 + [3]), [1])
    (violation,) = per_request._violations("y", record, DriftBudget(), Path("x"), "1 of 12")
    assert "judged on only 12 held-out requests" in violation.line()


def test_a_clear_miss_does_not_ask_for_more_requests() -> None:
    """3 of 72 requests kept FP32's length (SLANet-plus INT8, probe 66I): no count of requests could show 0.98, and
    the refusal had read "judged on only 72 held-out requests: about 133 could show the budget"."""
    record = per_request._output_record("y", _answers([2] * 72), _answers([2] * 3 + [3] * 69), [1])
    (violation,) = per_request._violations("y", record, DriftBudget(), Path("x"), "69 of 72")
    assert "judged on only" not in violation.line()

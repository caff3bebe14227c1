"""Served answers compared request by request (`loadtest.request_answers`, `evaluate_accuracy`), no server."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.served_answers import ServedModel
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData
from quantserve.runner import RequestLog

# Two requests of one image each; the variant keeps one box more in request 1 and one fewer in request 2: the same
# 5 rows stacked, so the stacked comparison matched request 1's third box with request 2's first.
COUNTS = {"fp32": (2, 3), "int8": (3, 2)}


def _served(monkeypatch: pytest.MonkeyPatch) -> None:
    def served_outputs(url, model, data, batch_size, source, served=None, request_timeout_s=30.0, state=None):  # type: ignore[no-untyped-def]
        log = RequestLog(rows=[1, 1], shapes={"det": [(k, 6) for k in COUNTS[model]]})
        served[model] = ServedModel("1", requests=log)
        rng = np.random.default_rng(0)
        return {"det": rng.random((5, 6))}  # the same values: only the split differs

    monkeypatch.setattr(evaluator, "served_outputs", served_outputs)


@pytest.mark.parametrize("budget", [DriftBudget(), None])
def test_detections_whose_count_changed_per_request_are_over_budget_not_compared_row_by_row(
    monkeypatch: pytest.MonkeyPatch, budget: DriftBudget | None
) -> None:
    _served(monkeypatch)
    data = TensorData({"x": np.zeros((2, 20, 6), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=budget)
    int8 = next(v for v in report.variants if v.model == "int8")
    assert report.over_budget == ["int8"]
    assert int8.violations[0] == (
        "output 'det': its shape differs from the reference's in 2 of 2 requests (request 1: [3, 6] vs [2, 6]): the "
        "answer changed, so its values are not compared"
    )
    assert int8.cosine_min is None and np.isnan(int8.max_abs_diff) and (int8.drift is None or "det" not in int8.drift)


def test_outputs_of_the_same_shape_in_every_request_are_compared_stacked(monkeypatch: pytest.MonkeyPatch) -> None:
    COUNTS["int8"] = COUNTS["fp32"]
    try:
        _served(monkeypatch)
        data = TensorData({"x": np.zeros((2, 20, 6), np.float32)})
        report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    finally:
        COUNTS["int8"] = (3, 2)
    int8 = next(v for v in report.variants if v.model == "int8")
    assert not int8.violations and int8.cosine_min == pytest.approx(1.0) and report.over_budget == []


def test_a_varying_output_sent_in_other_requests_cannot_be_matched() -> None:
    from loadtest.request_answers import shape_changes

    reference = RequestLog(rows=[1, 1], shapes={"det": [(2, 6), (3, 6)]})
    candidate = RequestLog(rows=[2], shapes={"det": [(5, 6)]})
    assert (
        "cannot be matched to the reference's; evaluate with --batch-size 1"
        in shape_changes(reference, candidate)["det"]
    )

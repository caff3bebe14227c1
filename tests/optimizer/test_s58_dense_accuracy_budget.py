"""A one-score sigmoid head's accuracy at --label-threshold on 0/1 labels is budgeted by optimize as evaluate's
headline judges it (session 58): the accuracy was recorded for a dense output but judged only as information, so a
build optimize shipped (its decisions on the clear rows all kept) was failed by evaluate for the same drop. The
INT8 search ranks by it too (the report's margin), and optimize's table shows FP32's accuracy beside INT8's."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.verify import drift_refusal
from quantserve.cli.optimize_tables import print_verification

N = 2000


def head(near_share: float, seed: int = 58) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FP32's and INT8's sigmoid scores (N, 1) spread over [0, 1], and 0/1 labels: INT8 moves the rows just over 0.5
    (within 0.02 of it, where no clear decision is judged) under it, each a positive it now misses."""
    rng = np.random.default_rng(seed)
    logits = rng.uniform(0.1, 2.0, N) * rng.choice([-1.0, 1.0], N)
    near = rng.random(N) < near_share
    logits[near] = rng.uniform(0.001, 0.04, int(near.sum()))
    labels = (logits > 0).astype(np.int64)
    noisy = ~near & (rng.random(N) < 0.05)  # FP32 is wrong on some clear rows too
    labels[noisy] = 1 - labels[noisy]
    fp32 = (1 / (1 + np.exp(-logits))).astype(np.float32)[:, None]
    int8 = (1 / (1 + np.exp(-(logits - 0.05)))).astype(np.float32)[:, None]
    return fp32, int8, labels


def test_an_accuracy_drop_beyond_the_budget_is_refused_though_decisions_hold() -> None:
    fp32, int8, labels = head(0.03)
    report = measure_drift({"boundary": fp32}, {"boundary": int8}, {}, DriftBudget(), labels)
    record = report.outputs["boundary"]
    assert record["kind"] == "dense"
    assert record.get("decision_agreement", record.get("flag_agreement")) >= 0.99  # its clear decisions hold
    assert record["accuracy_drop_points"] > 1.0
    assert [v.metric for v in report.violations] == ["accuracy_drop_points"]
    assert report.margin() < 0  # the INT8 search ranks it as missing
    line = drift_refusal({"outputs": report.outputs, "violations": [v.to_dict() for v in report.violations]})
    assert "accuracy drop (points)" in line and "> budget 1" in line, line


def test_within_the_budget_it_holds() -> None:
    fp32, int8, labels = head(0.004)
    report = measure_drift({"boundary": fp32}, {"boundary": int8}, {}, DriftBudget(), labels)
    assert 0 < report.outputs["boundary"]["accuracy_drop_points"] <= 1.0
    assert report.holds and report.margin() >= 0


def test_the_table_shows_the_accuracy_and_its_budgeted_drop() -> None:
    fp32, int8, labels = head(0.03)
    report = measure_drift({"boundary": fp32}, {"boundary": int8}, {}, DriftBudget(), labels)
    out = io.StringIO()
    verification = {**report.to_dict(), "budget": DriftBudget().to_dict(), "samples": N}
    print_verification(verification, Console(file=out, width=200))
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.getvalue().splitlines()]
    rows = {row[0]: row[1:] for row in cells if row}
    record = report.outputs["boundary"]
    assert rows["accuracy"] == [f"{record['fp32_accuracy']:.4f} → {record['accuracy']:.4f} (FP32 → INT8)", ""]
    assert rows["accuracy_drop_points"] == [f"{record['accuracy_drop_points']:.4g}", "1"]  # its budget beside it


def test_a_regression_or_an_angle_with_0_1_labels_is_judged_by_its_values_alone() -> None:
    """`--output-kind NAME=regression` says the output is values, not a score read at a threshold: 0/1 labels give it
    no accuracy to record or budget (a dense score's would be)."""
    from optimizer.drift_metrics import output_metrics

    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 1, (300, 1)).astype(np.float32)
    candidate = reference + rng.normal(0, 0.05, reference.shape).astype(np.float32)
    labels = (rng.uniform(0, 1, 300) > 0.5).astype(np.int64)
    assert "accuracy_drop_points" in output_metrics("dense", reference, candidate, labels)
    for kind in ("regression", "angle"):
        assert "accuracy_drop_points" not in output_metrics(kind, reference, candidate, labels)

"""The report's budget line names what each variant over budget missed (session 37, a probe's finding).

Before: a denoiser evaluated without labels (so no accuracy was measured) whose INT8 missed its PSNR to FP32 got
"Budget: at most 1 points of accuracy drop vs `ffdnet_fp32` — OVER BUDGET: ffdnet_int8.", the one budget named the
one that was not measured; and a variant over the drift budget alone sat under "No accuracy-drop budget set."."""

from __future__ import annotations

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.report import ReportInputs, render_markdown
from optimizer.drift_budget import DriftBudget

PSNR = "output 'denoised' (image): mean PSNR to FP32 (in dB over [0, 1], 64 samples) 33.4 < budget 45"


def _budget_line(report: AccuracyReport) -> str:
    (line,) = [line for line in render_markdown(ReportInputs([], report)).splitlines() if "udget" in line]
    return line


def _report(int8: VariantAccuracy, labels: bool, drop: float | None = 1.0, drift: bool = True) -> AccuracyReport:
    budget = vars(DriftBudget()) if drift else None
    ref = VariantAccuracy("fp32", 64, accuracy=0.9 if labels else None)
    return AccuracyReport("fp32", "d.npz", "denoised", labels, drop, [ref, int8], drift_budget=budget)


def test_a_miss_without_labels_names_the_metric_that_missed() -> None:
    line = _budget_line(_report(VariantAccuracy("int8", 64, violations=[PSNR]), labels=False))
    assert line == (
        "Budget vs `fp32`: at most 1 points of accuracy drop (not measured: no labels that score this output)"
        f" and every output's drift budget — OVER BUDGET: int8 ({PSNR})."
    )


def test_an_accuracy_drop_is_named_with_its_points() -> None:
    int8 = VariantAccuracy("int8", 64, accuracy=0.85, accuracy_drop_points=5.0)
    line = _budget_line(_report(int8, labels=True, drift=False))
    assert (
        line
        == "Budget vs `fp32`: at most 1 points of accuracy drop — OVER BUDGET: int8 (accuracy fell 5.00 points > 1)."
    )


def test_a_drift_miss_without_an_accuracy_budget_is_no_unset_budget() -> None:
    line = _budget_line(_report(VariantAccuracy("int8", 64, violations=[PSNR]), labels=False, drop=None))
    assert line == f"Budget vs `fp32`: every output's drift budget — OVER BUDGET: int8 ({PSNR})."


def test_within_budget_says_so() -> None:
    line = _budget_line(_report(VariantAccuracy("int8", 64, accuracy=0.9, accuracy_drop_points=0.0), labels=True))
    assert line.endswith("— all variants within budget.")

"""evaluate's report (report.md, report.html) shows each value output's |INT8 − FP32| in its own units.

Session 63's probe (face-api's age/gender net): report.md's accuracy section scored output `gender` alone and showed
the age head (years) only as its three normalized drift rows; "1.15 years on average, 3.08 at p95, 7.14 at worst"
was nowhere. A table under the budget line now gives every value output's mean, p95 and max.
"""

from __future__ import annotations

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.report import ReportInputs, render_html, render_markdown
from optimizer.drift_budget import DriftBudget

AGE = {"kind": "regression", "channel_error_worst": 0.1096, "max_abs_diff": 7.1434, "mean_abs_diff": 1.1549}
GENDER = {"kind": "classification", "top1_agreement": 0.9933, "max_abs_diff": 0.2906, "mean_abs_diff": 0.0239}


def _report(age: dict[str, object]) -> AccuracyReport:
    int8 = VariantAccuracy("ag_int8", 300, None, 0.0239, 0.2906, drift={"age": age, "gender": GENDER})
    fp32 = VariantAccuracy("ag_fp32", 300, None, 0.0, 0.0)
    return AccuracyReport("ag_fp32", "heldout.npz", "gender", False, 1.0, [fp32, int8], DriftBudget().to_dict())


def test_report_md_shows_a_regressions_mean_p95_and_max_in_its_own_units() -> None:
    markdown = render_markdown(ReportInputs([], _report({**AGE, "p95_abs_diff": 3.0801})))
    assert "in its own units" in markdown, markdown
    assert "| model | output | kind | mean abs diff | p95 abs diff | max abs diff |" in markdown, markdown
    assert "| ag_int8 | age | regression | 1.155 | 3.08 | 7.143 |" in markdown, markdown
    assert "| ag_int8 | gender |" not in markdown  # a score's difference is the headline's columns
    assert "7.143" in render_html(ReportInputs([], _report({**AGE, "p95_abs_diff": 3.0801})))


def test_a_record_saved_without_the_p95_reads_a_dash_there() -> None:
    markdown = render_markdown(ReportInputs([], _report(AGE)))
    assert "| ag_int8 | age | regression | 1.155 | – | 7.143 |" in markdown, markdown

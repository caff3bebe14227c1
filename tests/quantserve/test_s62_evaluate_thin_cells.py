"""`evaluate`'s terminal drift row and report.md's budget line say when a rate held on rows too few to show it.

Session 62's probe: a variant whose top-1 agreement held on rows too few to show the 0.99 budget read "ok" in
evaluate's terminal drift table (exit 0) and "all variants within budget" in report.md's budget line, while the same
report's verdict said NOT SHOWN. Both now say it as the verdict's drift table does (NOT SHOWN / "ok, thin evidence");
the exit status stays 0: nothing missed its budget.
"""

from __future__ import annotations

import io

from rich.console import Console

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.report_accuracy import budget_line
from loadtest.verdict import NOT_SHOWN, THIN_CELL
from optimizer.drift_budget import DriftBudget
from quantserve.cli.evaluate_tables import print_drift_rows


def _report(rows: int, top1: float) -> AccuracyReport:
    """accuracy.json as evaluate writes it: slow8 (INT8) against slow on `rows` labelled rows."""
    drift = {"probs": {"kind": "classification", "top1_agreement": top1, "accuracy_drop_points": 0.0}}
    int8 = VariantAccuracy("slow8", rows, top1, accuracy=1.0, accuracy_drop_points=0.0, drift=drift, precision="int8")
    reference = VariantAccuracy("slow", rows, 1.0, accuracy=1.0, accuracy_drop_points=0.0, precision="fp32")
    return AccuracyReport("slow", "dat/slow.npz", "probs", True, 1.0, [reference, int8], DriftBudget().to_dict())


def _drift_table(report: AccuracyReport) -> str:
    out = io.StringIO()
    print_drift_rows(report, Console(file=out, width=200))
    return out.getvalue()


def _top1_row(table: str) -> str:
    return next(line for line in table.splitlines() if "top1_agreement" in line)


def test_a_rate_on_rows_too_few_to_show_it_reads_not_shown_not_ok() -> None:
    report = _report(rows=1, top1=1.0)
    row = _top1_row(_drift_table(report))
    assert NOT_SHOWN in row and " ok" not in row, row
    line = budget_line(report)
    assert line.endswith("all variants within budget on the rows given; not shown (rows too few) for slow8."), line
    assert not report.over_budget  # exit status 0: nothing missed


def test_a_rate_whose_bound_misses_the_budget_reads_thin_evidence() -> None:
    report = _report(rows=300, top1=298 / 300)
    row = _top1_row(_drift_table(report))
    assert THIN_CELL in row, row
    line = budget_line(report)
    assert line.endswith("all variants within budget on the rows given; thin evidence for slow8."), line


def test_rows_enough_read_ok_and_within_budget() -> None:
    report = _report(rows=640, top1=1.0)
    row = _top1_row(_drift_table(report))
    assert row.rstrip().endswith("ok") or "│ ok" in row, row
    assert budget_line(report).endswith("all variants within budget.")

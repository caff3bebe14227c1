"""evaluate's console table heads its agreement column "top-1 agree" for every output kind; for a multitask output
(`--output-kind NAME=multitask`) that figure is the worst task's decision agreement, and the table said nothing of it
(session 61). The title says so, as it says a tagger's accuracy is by token; other kinds' titles are unchanged. The
report's table has columns of its own for it ("worst task agree"), checked beside."""

from __future__ import annotations

from rich.console import Console

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.report_accuracy import accuracy_rows
from quantserve.cli.evaluate_tables import print_table

WORST = "(top-1 agree: the worst task's decision agreement)"


def _report(tasks: bool) -> AccuracyReport:
    """A reference and a build scored on output 'probs': as a multitask output's (`tasks`), else a class score's."""
    reference = VariantAccuracy("fp32", 1000, top1_agreement=1.0)
    build = VariantAccuracy("int8", 1000, top1_agreement=0.997)
    if tasks:  # as `loadtest.evaluator_tasks.score_tasks` sets them
        reference.task_agreements, reference.task_agreement_worst, reference.task_worst = [1.0, 1.0], 1.0, 0
        build.task_agreements, build.task_agreement_worst, build.task_worst = [1.0, 0.997], 0.997, 1
    return AccuracyReport("fp32", "held.npz", "probs", False, None, [reference, build], None)


def _printed(report: AccuracyReport) -> str:
    console = Console(width=200, record=True, force_terminal=False)
    print_table(report, console)
    return console.export_text()


def test_the_console_table_says_its_top1_column_is_the_worst_task() -> None:
    text = _printed(_report(tasks=True))
    assert f"accuracy drift vs fp32, output 'probs' {WORST}" in text
    assert "top-1 agree" in text and "0.9970" in text  # the column and its figure as before


def test_other_kinds_tables_are_unchanged() -> None:
    text = _printed(_report(tasks=False))
    assert "accuracy drift vs fp32, output 'probs'\n" in text.replace(" \n", "\n") and "worst task" not in text


def test_the_report_table_heads_it_worst_task() -> None:
    header, rows = accuracy_rows(_report(tasks=True))
    assert "top-1 agree" not in header and header[1:3] == ["worst task agree", "worst task"]
    assert rows[1][1:3] == ["0.9970", "1"]

"""evaluate's per-model table names the output it scored (session 43: a five-head captcha reader's table read
digit_0's figures, unnamed, while digit_4's drift was the one that moved)."""

from __future__ import annotations

from rich.console import Console

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from quantserve.cli.evaluate_tables import print_table


def test_the_accuracy_table_names_the_scored_output() -> None:
    variants = [VariantAccuracy("vcb32", 150, version="1", precision="fp32"), VariantAccuracy("vcb", 150, version="1")]
    report = AccuracyReport("vcb32", "eval.npz", "digit_0", False, None, variants, None)
    console = Console(width=200, record=True, force_terminal=False)
    print_table(report, console)
    assert "accuracy drift vs vcb32, output 'digit_0'" in console.export_text()

"""A drift budget held on held-out rows too few to show it is no plain PASS in the saved report (pl10 #2).

`evaluate --data` of 1 labelled row wrote report.md "PASS … drift: 2 of 2 budgeted metrics within budget", exit 0;
only stderr said top-1 agreement 1 over 1 row shows only ≥ 0.27, and on 40 rows the same build failed. optimize
refuses such rows without --allow-thin-evidence (NOT SHOWN here) and ships, with a note, a rate seen whose 95 %
lower bound misses the budget on rows enough for full agreement ("PASS on thin evidence"). Neither is a failure:
no metric missed its budget, so evaluate's and report's exit status stay 0.
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from optimizer.drift_budget import DriftBudget
from quantserve.cli.commands import report as report_command

ONE_ROW_LINE = (
    "slow8: output 'probs': top-1 agreement 1 over 1 held-out rows shows only ≥ 0.27 (95 % lower bound), not the "
    "budget's 0.99; about 268 rows would (--data)"
)
NOT_SHOWN_KIND = "Not shown (optimize refuses rows this few without --allow-thin-evidence)"


def _evaluated(folder: Path, rows: int, top1: float) -> Path:
    """accuracy.json as evaluate writes it: slow8 (INT8) against slow on `rows` labelled rows."""
    folder.mkdir(parents=True, exist_ok=True)
    drift = {"probs": {"kind": "classification", "top1_agreement": top1, "accuracy_drop_points": 0.0}}
    int8 = VariantAccuracy("slow8", rows, top1, accuracy=1.0, accuracy_drop_points=0.0, drift=drift, precision="int8")
    reference = VariantAccuracy("slow", rows, 1.0, accuracy=1.0, accuracy_drop_points=0.0, precision="fp32")
    budget = DriftBudget().to_dict()
    AccuracyReport("slow", "dat/slow.npz", "probs", True, 1.0, [reference, int8], budget).save(folder)
    return folder


def test_one_row_reads_not_shown_beside_the_verdict_in_both_reports(tmp_path: Path) -> None:
    md_path, html_path = render(_evaluated(tmp_path / "r", rows=1, top1=1.0))
    md, html = md_path.read_text(), html_path.read_text()
    assert (
        "**NOT SHOWN · served INT8 vs FP32 not measured (load-test both variants into this folder) · drift: 2 of 2 "
        "budgeted metrics within budget on the rows given, 1 on too few rows to show it**"
    ) in md
    assert f"- {NOT_SHOWN_KIND}: {ONE_ROW_LINE}" in md
    assert "| slow8 | probs | classification | top1_agreement | 1 | ≥ 0.99 | NOT SHOWN |" in md
    assert "| slow8 | probs | classification | accuracy_drop_points | 0 | ≤ 1 | ok |" in md
    assert "PASS" not in md.split("## Accuracy")[0]
    assert '<section id="verdict" class="verdict thin">' in html
    assert '<p class="headline"><span class="thin">NOT SHOWN</span> · served INT8 vs FP32' in html
    assert f'<p class="thin">{NOT_SHOWN_KIND}: {escape(ONE_ROW_LINE)}</p>' in html


def test_the_exit_status_stays_that_of_a_verdict_nothing_missed(tmp_path: Path) -> None:
    """evaluate exits 0 here (no metric missed its budget; its exit 1 means one did), and `quantserve report` too."""
    folder = _evaluated(tmp_path / "r", rows=1, top1=1.0)
    verdict = load_results(folder).verdict
    assert verdict.passed and verdict.word == "NOT SHOWN" and not verdict.failures
    assert report_command.run(argparse.Namespace(results=str(folder), build=[])) == 0


def test_a_rate_whose_bound_misses_the_budget_on_rows_enough_passes_on_thin_evidence(tmp_path: Path) -> None:
    """298 of 300 rows agree (0.9933 ≥ 0.99, bound 0.980): 300 rows could show 0.99 had all agreed, so optimize
    would ship it with a note; the report says so."""
    md_path, html_path = render(_evaluated(tmp_path / "r", rows=300, top1=298 / 300))
    md, html = md_path.read_text(), html_path.read_text()
    assert "**PASS on thin evidence · served INT8 vs FP32 not measured" in md
    assert (
        "- Thin evidence: slow8: output 'probs': top-1 agreement 0.9933 over 300 held-out rows shows only ≥ 0.98 "
        "(95 % lower bound), not the budget's 0.99; about 2412 rows would (--data)"
    ) in md
    assert "| top1_agreement | 0.9933 | ≥ 0.99 | ok, thin evidence |" in md
    assert '<span class="thin">PASS on thin evidence</span>' in html


def test_rows_enough_still_pass_plainly(tmp_path: Path) -> None:
    verdict = load_results(_evaluated(tmp_path / "r", rows=1000, top1=1.0)).verdict
    assert verdict_headline(verdict).startswith("PASS · ") and not verdict.thin and not verdict.not_shown
    assert "within budget ·" not in verdict_headline(verdict) and verdict_headline(verdict).endswith("within budget")
    assert all(r.cells()[-1] == "ok" for r in verdict.drift)


def test_a_miss_fails_whatever_else_is_thin(tmp_path: Path) -> None:
    folder = _evaluated(tmp_path / "r", rows=1, top1=1.0)
    data = json.loads((folder / "accuracy.json").read_text())
    data["variants"][1]["violations"] = ["output 'probs' (classification): mean abs diff 1 > budget 0"]
    (folder / "accuracy.json").write_text(json.dumps(data))
    md = render(folder)[0].read_text()
    assert "**FAIL · " in md and f"- {NOT_SHOWN_KIND}: {ONE_ROW_LINE}" in md


def test_a_builds_manifest_on_thin_held_out_rows_is_not_shown_either(tmp_path: Path) -> None:
    """`report --build`: an INT8 build optimize shipped with --allow-thin-evidence on 32 --eval rows."""
    entry = {"output": "p", "metric": "top1_agreement", "value": 1.0, "rows": 32, "lower_bound": 0.8911,
             "budget": 0.99, "rows_needed": 268}  # fmt: skip
    outputs = {"p": {"kind": "classification", "top1_agreement": 1.0}}
    verification = {"outputs": outputs, "budget": DriftBudget().to_dict(), "thin_evidence": [entry]}
    build = tmp_path / "b"
    build.mkdir()
    (build / "manifest.json").write_text(
        json.dumps({"name": "m_int8", "precision": "int8", "verification": verification})
    )
    verdict = load_results(_with_a_load(tmp_path / "r"), [build]).verdict
    assert verdict.word == "NOT SHOWN"
    assert verdict.not_shown == [
        "m_int8: output 'p': top-1 agreement 1 over 32 held-out rows shows only ≥ 0.891 (95 % lower bound), not the "
        "budget's 0.99; about 268 rows would (--eval)"
    ]


def _with_a_load(folder: Path) -> Path:
    """One closed-loop run in `folder`: a results folder the report reads, with no accuracy.json."""
    folder.mkdir()
    latency = LatencySummary.from_samples([1.0, 2.0])
    step = LoadResult("m_int8", "127.0.0.1:8001", "closed", 1, 5.0, 100, 0, 20.0, 20.0, latency, 1)
    LoadRun("m_int8", [step]).save(folder)
    return folder

"""`report --build` of a build whose verification holds a NaN figure: the manifest writes it as null (strict JSON,
session 58) and the report read None back, crashing on its format ("unsupported format string passed to
NoneType.__format__") where the figure was the in-process speedup or a thin-evidence rate. It now reads "n/a", and a
speedup that is not a number never passes the speed budget."""

from __future__ import annotations

import math
from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.run_identity import RunIdentity
from quantserve.artifact import Manifest
from tests.loadtest.verdict_records import dense_build, fp32_int8_results, load_step, thin_evidence_build

UNTIMED = {"speedup": math.nan, "holds": False, "min_speedup": 1.1, "threads": 2, "batch_size": 8, "cpu": "EPYC"}
THIN = {
    "output": "probs", "metric": "top1_agreement", "value": math.nan, "lower_bound": math.nan, "budget": 0.99,
    "rows": 268, "rows_needed": 682,
}  # fmt: skip


def test_a_null_in_process_speedup_reads_n_a_and_fails(tmp_path: Path) -> None:
    build = dense_build(tmp_path / "b", {"holds": True, "violations": [], "speed": UNTIMED})
    assert Manifest.load(build).verification["speed"]["speedup"] is None  # type: ignore[index]
    results = fp32_int8_results(tmp_path / "r", None)
    md, _ = render(results, [build])
    verdict = load_results(results, [build]).verdict
    assert "in-process speedup n/a (dense, 2 threads)" in verdict_headline(verdict)
    assert "dense: INT8 in-process speedup n/a: not measured, not shown faster than FP32" in verdict.failures
    assert not verdict.passed and "None" not in md.read_text()


def test_a_holding_record_with_a_null_speedup_still_fails(tmp_path: Path) -> None:
    build = dense_build(tmp_path / "b", {"holds": True, "violations": [], "speed": {**UNTIMED, "holds": True}})
    verdict = load_results(fp32_int8_results(tmp_path / "r", None), [build]).verdict
    assert not verdict.passed


def test_a_null_thin_evidence_rate_reads_n_a(tmp_path: Path) -> None:
    build, results = thin_evidence_build(tmp_path / "b", THIN), fp32_int8_results(tmp_path / "r", None)
    md, _ = render(results, [build])
    text = md.read_text()
    assert "top-1 agreement n/a over 268 held-out rows shows only ≥ n/a (95 % lower bound)" in text
    assert "None" not in text


def test_a_served_config_s_null_speedup_fails_the_report_without_the_build(tmp_path: Path) -> None:
    results = tmp_path / "r"
    results.mkdir()
    LoadRun("pxl_fp32", [load_step("pxl_fp32", 3.5)], precision="fp32").save(results)
    identity = RunIdentity("2026-12-06T10:00:00Z", ["1"])
    identity.in_process = {**UNTIMED, "speedup": None}  # as deploy recorded it from the manifest's null
    LoadRun("pxl_int8", [load_step("pxl_int8", 6.9)], precision="int8", identity=identity).save(results)
    verdict = load_results(results).verdict
    assert "pxl_int8: INT8 in-process speedup n/a: not measured, not shown faster than FP32" in verdict.failures
    assert not verdict.passed

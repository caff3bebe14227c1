"""A load test of a build shipped past its drift budget (`optimize --keep-failing`) does not read PASS (session 56).

The probe: an INT8 build whose manifest records `verification.holds = false` was deployed (deploy warned) and
load-tested beside FP32; loadtest's report headlined "PASS · INT8 1.97× FP32 served …" with no word of drift, and
`report --build` of the same results FAIL. `deploy` now records the misses in the served config; the load test keeps
them with each run, and the verdict fails naming them, its speed figures kept.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.verdict import gather
from serving.deploy import deploy
from serving.drift_parameter import DRIFT_MISSED_PARAMETER, recorded_drift_misses
from serving.model_config import CONFIG_NAME, parse_config
from tests.loadtest.verdict_records import KEPT_FAILING, RECORDED, dense_build, fp32_int8_results


def test_deploy_records_a_kept_failing_build_s_drift_misses_and_a_build_that_held_none(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build(tmp_path / "kept", KEPT_FAILING), repo, "pxl_int8", max_batch=8)
    assert recorded_drift_misses(parse_config(repo / "pxl_int8" / CONFIG_NAME)) == [RECORDED]
    held = {**KEPT_FAILING, "holds": True, "violations": []}
    deploy(dense_build(tmp_path / "held", held), repo, "ok_int8", max_batch=8)
    config = parse_config(repo / "ok_int8" / CONFIG_NAME)
    assert recorded_drift_misses(config) == [] and DRIFT_MISSED_PARAMETER not in (config.get("parameters") or {})


def test_a_load_test_of_a_kept_failing_build_fails_naming_the_miss_its_speed_kept(tmp_path: Path) -> None:
    verdict = load_results(fp32_int8_results(tmp_path / "kept", [RECORDED])).verdict
    headline = verdict_headline(verdict)
    assert not verdict.passed and headline.startswith("FAIL · INT8 1.97× FP32 served (pxl_int8 vs pxl_fp32"), headline
    [line] = verdict.failures
    assert line.startswith(f"pxl_int8: its build {RECORDED} (its deployment's record; "), line
    assert "0.9795 < budget 0.98" in line and "evaluate it through the server" in line


def test_a_load_test_of_a_build_that_held_still_passes(tmp_path: Path) -> None:
    verdict = load_results(fp32_int8_results(tmp_path / "held", None)).verdict
    assert verdict.passed and not verdict.failures, verdict.failures
    assert verdict_headline(verdict).startswith("PASS · INT8 1.97× FP32 served (pxl_int8 vs pxl_fp32")


def test_where_evaluate_measured_the_served_drift_the_record_is_a_note_not_a_failure(tmp_path: Path) -> None:
    runs = load_results(fp32_int8_results(tmp_path / "evaluated", [RECORDED])).runs
    accuracy = AccuracyReport(
        "pxl_fp32", "eval.npz", "probs", False, None,
        [VariantAccuracy("pxl_fp32", 64), VariantAccuracy("pxl_int8", 64, precision="int8")],
    )  # fmt: skip
    verdict = gather(tmp_path / "evaluated", runs, accuracy, [])
    assert verdict.passed and not verdict.failures, verdict.failures
    assert any(note.startswith(f"pxl_int8: its build {RECORDED}") for note in verdict.notes), verdict.notes

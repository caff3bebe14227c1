"""A load test of a build shipped past its drift budget (`optimize --keep-failing`) does not read PASS (session 56).

The probe: an INT8 build whose manifest records `verification.holds = false` was deployed (deploy warned) and
load-tested beside FP32; loadtest's report headlined "PASS · INT8 1.97× FP32 served …" with no word of drift, and
`report --build` of the same results FAIL. `deploy` now records the misses in the served config; the load test keeps
them with each run, and the verdict fails naming them, its speed figures kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from loadtest.verdict import gather
from quantserve.artifact import Manifest
from serving.deploy import deploy
from serving.drift_parameter import DRIFT_MISSED_PARAMETER, recorded_drift_misses
from serving.model_config import CONFIG_NAME, parse_config
from tests.serving.serving_models import DENSE_IO, write_dense_onnx

MISS = "output 'probs': worst channel correlation (axis 1, entry 1) 0.9795 < budget 0.98"
KEPT_FAILING = {
    "holds": False,
    "violations": [
        {"line": MISS, "metric": "channel_correlation_worst", "value": 0.9795, "budget": 0.98},
        {"line": "output 'probs': share of clear positives agreed 0.8696 < budget 0.95"},
    ],
    "speed": {"speedup": 1.94, "holds": True, "min_speedup": 1.1, "threads": 2, "batch_size": 8, "cpu": "EPYC"},
}
RECORDED = f"missed its drift budget row by row: {MISS} (and 1 more); shipped with --keep-failing"


def _build(directory: Path, verification: dict | None) -> Path:
    directory.mkdir(parents=True)
    write_dense_onnx(directory / "model.onnx")
    inputs, outputs = DENSE_IO
    manifest = Manifest("dense", inputs, outputs, precision="int8", target="embedded", files={"model": "model.onnx"})
    manifest.verification = verification
    manifest.save(directory)
    return directory


def test_deploy_records_a_kept_failing_build_s_drift_misses_and_a_build_that_held_none(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(_build(tmp_path / "kept", KEPT_FAILING), repo, "pxl_int8", max_batch=8)
    assert recorded_drift_misses(parse_config(repo / "pxl_int8" / CONFIG_NAME)) == [RECORDED]
    held = {**KEPT_FAILING, "holds": True, "violations": []}
    deploy(_build(tmp_path / "held", held), repo, "ok_int8", max_batch=8)
    config = parse_config(repo / "ok_int8" / CONFIG_NAME)
    assert recorded_drift_misses(config) == [] and DRIFT_MISSED_PARAMETER not in (config.get("parameters") or {})


def _step(model: str, rps: float) -> LoadResult:
    requests = int(rps * 20)
    return LoadResult(
        model, "127.0.0.1:1", "closed", 4, 20.0, requests, 0, rps, 8 * rps,
        LatencySummary.from_samples(np.full(requests, 20.0)), 8,
    )  # fmt: skip


def _results(folder: Path, drift_missed: list[str] | None) -> Path:
    folder.mkdir()
    LoadRun("pxl_fp32", [_step("pxl_fp32", 3.5)], precision="fp32").save(folder)
    identity = RunIdentity("2026-12-06T10:00:00Z", ["1"])
    if drift_missed is not None:
        identity.drift_missed = drift_missed
    LoadRun("pxl_int8", [_step("pxl_int8", 6.9)], precision="int8", identity=identity).save(folder)
    return folder


def test_a_load_test_of_a_kept_failing_build_fails_naming_the_miss_its_speed_kept(tmp_path: Path) -> None:
    verdict = load_results(_results(tmp_path / "kept", [RECORDED])).verdict
    headline = verdict_headline(verdict)
    assert not verdict.passed and headline.startswith("FAIL · INT8 1.97× FP32 served (pxl_int8 vs pxl_fp32"), headline
    [line] = verdict.failures
    assert line.startswith(f"pxl_int8: its build {RECORDED} (its deployment's record; "), line
    assert "0.9795 < budget 0.98" in line and "evaluate it through the server" in line


def test_a_load_test_of_a_build_that_held_still_passes(tmp_path: Path) -> None:
    verdict = load_results(_results(tmp_path / "held", None)).verdict
    assert verdict.passed and not verdict.failures, verdict.failures
    assert verdict_headline(verdict).startswith("PASS · INT8 1.97× FP32 served (pxl_int8 vs pxl_fp32")


def test_where_evaluate_measured_the_served_drift_the_record_is_a_note_not_a_failure(tmp_path: Path) -> None:
    runs = load_results(_results(tmp_path / "evaluated", [RECORDED])).runs
    accuracy = AccuracyReport(
        "pxl_fp32", "eval.npz", "probs", False, None,
        [VariantAccuracy("pxl_fp32", 64), VariantAccuracy("pxl_int8", 64, precision="int8")],
    )  # fmt: skip
    verdict = gather(tmp_path / "evaluated", runs, accuracy, [])
    assert verdict.passed and not verdict.failures, verdict.failures
    assert any(note.startswith(f"pxl_int8: its build {RECORDED}") for note in verdict.notes), verdict.notes

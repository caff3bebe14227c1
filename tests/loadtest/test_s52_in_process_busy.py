"""A report's in-process figure keeps optimize's word that it was timed on a busy machine (session 52).

A probe on a machine where other jobs took ~50 % of the cores: optimize said "INT8 was timed at 3.07× FP32 while
other processes took 50% of the cores: that figure is uncertain" and recorded `busy: true, others_share: 0.502`, yet
`quantserve report` read "PASS · … · 3.07× in-process (digits_int8, 2 threads)" with no word of it, from the build
given with --build or from the speed `deploy` recorded in the served config. The caveat is said as the served ratio's
is; the verdict's word does not change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_s51_recorded_speed import _step

from loadtest.in_process_speed import in_process_caveats
from loadtest.load_run import LoadRun
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.run_identity import RunIdentity
from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.build_parameters import recorded_speed
from serving.deploy import deploy
from serving.model_config import CONFIG_NAME, parse_config
from tests.serving.serving_models import DENSE_IO, write_dense_onnx

BUSY = {
    "speedup": 3.07,
    "holds": True,
    "min_speedup": 1.1,
    "threads": 2,
    "batch_size": 8,
    "cpu": "Xeon",
    "busy": True,
    "others_share": 0.502,
    "verdict": "faster",
}
CAVEAT = "others took 50% of the cores while optimize timed it"


def _build(directory: Path, speed: dict) -> Path:
    directory.mkdir(parents=True)
    write_dense_onnx(directory / "model.onnx")
    inputs, outputs = DENSE_IO
    files = {"model": "model.onnx"}
    manifest = Manifest("busy_int8", inputs, outputs, precision="int8", target="embedded", files=files)
    manifest.verification = {"speed": speed}
    manifest.save(directory)
    return directory


def _runs(results: Path, in_process: dict | None) -> None:
    """FP32 and INT8 load runs, INT8 3.67× served on an idle machine; INT8's deployment recorded `in_process`."""
    LoadRun("ref_fp32", [_step("ref_fp32", 100.0)], precision="fp32").save(results)
    identity = RunIdentity("2026-12-05T21:30:00+00:00", ["1"], in_process=in_process)
    LoadRun("busy_int8", [_step("busy_int8", 367.0)], precision="int8", identity=identity).save(results)


def test_report_with_build_says_the_in_process_figure_was_timed_on_a_busy_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    _runs(results, None)
    build = _build(tmp_path / "build", BUSY)
    assert main(["report", str(results), "--build", str(build)]) == 0  # still PASS: only its words change
    headline = capsys.readouterr().out.splitlines()[-1]
    assert headline.startswith("PASS · INT8 3.67× FP32 served"), headline
    assert headline.endswith(f"· 3.07× in-process (busy_int8, 2 threads), caveat: {CAVEAT}"), headline
    assert f"3.07× in-process (busy_int8, 2 threads), caveat: {CAVEAT}" in (results / "report.md").read_text()


def test_report_without_build_says_it_from_the_deployments_record(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(_build(tmp_path / "build", BUSY), repo, "busy_int8", max_batch=8)
    recorded = recorded_speed(parse_config(repo / "busy_int8" / CONFIG_NAME))
    assert recorded is not None and (recorded["busy"], recorded["others_share"]) == (True, 0.502)
    _runs(tmp_path / "results", recorded)
    verdict = load_results(tmp_path / "results").verdict
    headline = verdict_headline(verdict)
    assert verdict.passed and headline.startswith("PASS"), headline
    assert headline.endswith(f"· 3.07× in-process (busy_int8, 2 threads), caveat: {CAVEAT}"), headline


def test_an_idle_machine_s_figure_has_no_caveat_and_an_older_record_the_flag_s_own() -> None:
    assert in_process_caveats({**BUSY, "busy": False, "others_share": 0.1}) == []
    assert in_process_caveats({"speedup": 1.5}) == []  # no load recorded: nothing to say
    # a deployment recorded before the share was kept had the flag alone
    assert in_process_caveats({"speedup": 3.07, "busy": True}) == [
        "others took over 25% of the cores while optimize timed it"
    ]

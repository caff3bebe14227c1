"""An in-process speed whose median cleared the bar on rounds too spread to show INT8 faster ("uncertain",
`optimizer.speed_verdict`) reads so in the report, from the build or from the deploy record (session 52): it read
"INT8 1.15× FP32 in-process, below its speed budget" against a bar of 1.1, and the deploy record lacked the
verdict that tells the two apart."""

from __future__ import annotations

from pathlib import Path

from test_s51_recorded_speed import _build, _step

from loadtest.load_run import LoadRun
from loadtest.report import load_results
from loadtest.run_identity import RunIdentity
from serving.build_parameters import recorded_speed
from serving.deploy import deploy
from serving.model_config import CONFIG_NAME, parse_config

UNSURE = {
    "speedup": 1.15,
    "holds": False,
    "min_speedup": 1.1,
    "threads": 2,
    "batch_size": 8,
    "cpu": "Xeon",
    "verdict": "uncertain",
    "speedup_low": 0.91,
}
FAILURE = "INT8 1.15× FP32 in-process, not shown faster: its timing rounds' lower bound is 0.91× (rounds too spread)"


def test_an_uncertain_speed_says_so_from_the_build(tmp_path: Path) -> None:
    LoadRun("unsure_int8", [_step("unsure_int8", 106.0)], precision="int8").save(tmp_path)
    build = _build(tmp_path / "build", "int8", dict(UNSURE))
    verdict = load_results(tmp_path, [build]).verdict
    assert not verdict.passed
    assert f"dense: {FAILURE}" in verdict.failures  # the build's manifest names the model


def test_the_deploy_record_keeps_the_verdict_and_the_report_reads_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(_build(tmp_path / "int8", "int8", dict(UNSURE)), repo, "unsure_int8", max_batch=8)
    speed = recorded_speed(parse_config(repo / "unsure_int8" / CONFIG_NAME))
    assert speed is not None and (speed["verdict"], speed["speedup_low"]) == ("uncertain", 0.91)
    results = tmp_path / "results"
    identity = RunIdentity("2026-12-05T22:00:00+00:00", ["1"], in_process=speed)
    LoadRun("unsure_int8", [_step("unsure_int8", 106.0)], precision="int8", identity=identity).save(results)
    verdict = load_results(results).verdict
    assert f"unsure_int8: {FAILURE}" in verdict.failures

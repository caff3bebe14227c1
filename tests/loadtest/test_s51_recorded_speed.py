"""A report judges the served INT8 model's in-process speed by what its deployment recorded (session 51).

A build refused for speed and deployed with --allow-slower (0.97× FP32 in-process, recorded in its manifest) was
load-tested and reported "verdict: PASS · INT8 1.06× FP32 served": only a report given `--build` read the build's
speed. `deploy` now records the build's speed verdict in the served config; the load test keeps it with the run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from quantserve.artifact import Manifest
from serving.build_parameters import SPEED_PARAMETER, recorded_speed
from serving.deploy import deploy
from serving.model_config import CONFIG_NAME, parse_config
from tests.serving.serving_models import DENSE_IO, write_dense_onnx

SLOW = {
    "speedup": 0.97,
    "holds": False,
    "min_speedup": 1.1,
    "threads": 2,
    "batch_size": 8,
    "cpu": "Xeon",
    "fp32_ms": 3.1,
}


def _build(directory: Path, precision: str, speed: dict | None) -> Path:
    directory.mkdir(parents=True)
    write_dense_onnx(directory / "model.onnx")
    inputs, outputs = DENSE_IO
    manifest = Manifest("dense", inputs, outputs, precision=precision, target="embedded", files={"model": "model.onnx"})
    manifest.verification = {"speed": speed} if speed else None
    manifest.save(directory)
    return directory


def test_deploy_records_the_build_s_speed_verdict_and_an_fp32_build_none(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(_build(tmp_path / "int8", "int8", SLOW), repo, "slow_int8", max_batch=8)
    speed = recorded_speed(parse_config(repo / "slow_int8" / CONFIG_NAME))
    assert speed == {key: SLOW[key] for key in ("speedup", "holds", "min_speedup", "threads", "batch_size", "cpu")}
    deploy(_build(tmp_path / "fp32", "fp32", None), repo, "ref_fp32", max_batch=8)
    config = parse_config(repo / "ref_fp32" / CONFIG_NAME)
    assert recorded_speed(config) is None and SPEED_PARAMETER not in (config.get("parameters") or {})


def _step(model: str, rps: float) -> LoadResult:
    requests = int(rps * 10)
    return LoadResult(
        model, "127.0.0.1:1", "closed", 4, 10.0, requests, 0, rps, 16 * rps,
        LatencySummary.from_samples(np.full(requests, 20.0)), 16,
    )  # fmt: skip


def test_a_run_of_a_build_refused_for_speed_fails_the_verdict_without_its_build(tmp_path: Path) -> None:
    LoadRun("ref_fp32", [_step("ref_fp32", 100.0)], precision="fp32").save(tmp_path)
    identity = RunIdentity("2026-12-05T19:30:00+00:00", ["1"], in_process=dict(SLOW))
    LoadRun("slow_int8", [_step("slow_int8", 106.0)], precision="int8", identity=identity).save(tmp_path)
    verdict = load_results(tmp_path).verdict
    headline = verdict_headline(verdict)
    assert not verdict.passed and headline.startswith("FAIL"), headline
    assert "0.97× in-process (slow_int8, 2 threads)" in headline, headline
    assert "slow_int8: INT8 0.97× FP32 in-process, below its speed budget" in verdict.failures
    # a build folder given is what the verdict reads: the deployment's record is not counted twice
    build = _build(tmp_path / "build", "int8", {**SLOW, "speedup": 1.5, "holds": True})
    given = load_results(tmp_path, [build]).verdict
    assert [s["speedup"] for s in given.in_process] == [1.5] and given.passed, given.failures

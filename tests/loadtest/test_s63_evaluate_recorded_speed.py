"""`evaluate` alone judges a served INT8 model by the in-process speed its deployment recorded, as a load test does
(session 63).

Probe 63E: an INT8 build refused for speed (1.04× FP32 in-process, below --min-speedup 1.1) and deployed with
--allow-slower, its served config recording the verdict "slower", was evaluated into a fresh folder: the report
headlined "PASS". Only after a load test into the same folder did it read FAIL ("INT8 1.04× FP32 in-process, below its
speed budget"): the verdict took the deployment's record from the load runs alone. evaluate now records it per
variant in accuracy.json (read by the reader a load run's identity uses), and the verdict judges it the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loadtest_models as models
import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.run_identity import RunIdentity, deployed_build
from loadtest.served_answers import ServedModel
from quantserve.artifact import Manifest
from quantserve.data import TensorData
from serving.build_parameters import SPEED_PARAMETER
from serving.drift_parameter import VERSION_BUILDS_PARAMETER
from tests.loadtest.verdict_records import load_step

SLOW = {
    "speedup": 1.04,
    "speedup_low": 1.03,
    "holds": False,
    "min_speedup": 1.1,
    "threads": 2,
    "batch_size": 8,
    "cpu": "AMD EPYC",
    "verdict": "slower",
}
FAILURE = "lm_int8: INT8 1.04× FP32 in-process, below its speed budget"


def _accuracy(folder: Path, speed: dict[str, Any] | None) -> Path:
    """`folder` holding evaluate's accuracy.json alone: lm_int8 scored against lm_fp32, its drift within budget, its
    deployment recording `speed`."""
    variants = [
        VariantAccuracy("lm_fp32", 300, version="1", precision="fp32"),
        VariantAccuracy("lm_int8", 300, version="1", precision="int8", in_process=speed),
    ]
    AccuracyReport("lm_fp32", "heldout.npz", "landmarks", False, None, variants).save(folder)
    return folder


def test_evaluate_s_results_alone_fail_a_variant_whose_deployment_recorded_it_slower(tmp_path: Path) -> None:
    verdict = load_results(_accuracy(tmp_path / "slow", SLOW)).verdict
    headline = verdict_headline(verdict)
    assert not verdict.passed and headline.startswith("FAIL"), headline
    assert "1.04× in-process (lm_int8, 2 threads)" in headline, headline
    assert verdict.failures == [FAILURE], verdict.failures
    held = load_results(_accuracy(tmp_path / "held", {**SLOW, "speedup": 1.5, "holds": True, "verdict": "faster"}))
    assert held.verdict.passed and held.verdict.word == "PASS", held.verdict.failures
    none = load_results(_accuracy(tmp_path / "none", None)).verdict  # an older deploy, or an older accuracy.json
    assert none.in_process == [] and not none.failures


def test_the_same_failure_as_the_load_test_s_and_once_where_both_recorded_it(tmp_path: Path) -> None:
    folder = tmp_path / "both"
    folder.mkdir()
    LoadRun("lm_fp32", [load_step("lm_fp32", 47.7)], precision="fp32").save(folder)
    identity = RunIdentity("2026-12-07T08:25:00Z", ["1"], in_process=dict(SLOW))
    LoadRun("lm_int8", [load_step("lm_int8", 52.7)], precision="int8", identity=identity).save(folder)
    loaded = load_results(folder).verdict
    assert loaded.failures == [FAILURE], loaded.failures  # the load test's line, before any evaluate
    both = load_results(_accuracy(folder, SLOW)).verdict
    assert both.failures == [FAILURE] and len(both.in_process) == 1, (both.failures, both.in_process)


def _config(speed: dict[str, Any], table: dict[str, Any] | None) -> dict[str, Any]:
    """A served config (Triton's JSON) recording `speed` as its own, and `table` per version (None: not recorded)."""
    parameters = {SPEED_PARAMETER: {"string_value": json.dumps(speed)}}
    if table is not None:
        parameters[VERSION_BUILDS_PARAMETER] = {"string_value": json.dumps(table)}
    return {"name": "lm_int8", "parameters": parameters}


def _speed(config: dict[str, Any], version: str, ready: list[str]) -> dict[str, Any] | None:
    build = deployed_build(config, version, ready)
    return build.in_process if build is not None else None


def test_the_deployment_s_record_is_read_for_the_version_that_answered() -> None:
    config = _config(SLOW, {"1": {}})  # version 2's deploy recorded it slower; version 1's nothing
    assert _speed(config, "2", ["1", "2"]) == SLOW and _speed(config, "", ["1", "2"]) == SLOW  # "": the newest
    assert _speed(config, "1", ["1", "2"]) is None
    older = _config(SLOW, None)  # deployed before versions' builds were recorded: the config's own, where it alone
    assert _speed(older, "1", ["1"]) == SLOW and _speed(older, "1", ["1", "2"]) is None


def test_the_evaluator_keeps_each_variant_s_recorded_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    import loadtest.evaluator as evaluator

    rows = np.random.default_rng(0).normal(0.0, 1.0, (64, 10)).astype(np.float32)

    def served_outputs(url: str, model: str, data: Any, batch: int, source: Any, served: Any, *args: Any) -> Any:
        if served is not None:
            served[model] = ServedModel("1", "int8" if model == "lm_int8" else "fp32", in_process=speeds[model])
        return {"landmarks": rows}

    speeds = {"lm_fp32": None, "lm_int8": dict(SLOW)}
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: {})
    monkeypatch.setattr(evaluator, "served_outputs", served_outputs)
    monkeypatch.setattr(evaluator, "served_file_notes", lambda *args: [])
    monkeypatch.setattr(evaluator, "neighbour_dependence", lambda *args: [])
    data = TensorData({"x": np.zeros((64, 4), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["lm_int8"], "lm_fp32", data)
    assert {v.model: v.in_process for v in report.variants} == speeds


@pytest.mark.e2e
def test_evaluate_alone_through_the_server_reads_fail(
    tmp_path: Path, triton_server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed as the probe's were (an INT8 build recording 1.04× "slower", its FP32 beside it), evaluated by the
    CLI into a fresh folder, no load test: the report reads FAIL, naming the speed."""
    from quantserve.cli import main
    from serving.deploy import deploy

    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "runtime"))
    weights = models.mlp_weights()
    data = models.labeled_data(64, weights, seed=3).save(tmp_path / "heldout.npz")
    fp32 = models.make_build_dir(tmp_path / "build" / "fp32", weights=weights)
    int8 = models.make_build_dir(tmp_path / "build" / "int8", weights=weights, precision="int8")
    manifest = Manifest.load(int8)
    manifest.verification = {"speed": SLOW}
    manifest.save(int8)
    deploy(fp32, tmp_path / "repo", "lm_fp32", max_batch=16, instances=1)
    deploy(int8, tmp_path / "repo", "lm_int8", max_batch=16, instances=1)  # deploy warns of it
    server = triton_server_factory(tmp_path / "repo")
    out = tmp_path / "reports"
    args = ["--url", server.grpc_url, "--models", "lm_int8", "--reference", "lm_fp32", "--data", str(data)]
    assert main(["evaluate", *args, "--out", str(out)]) == 0  # its accuracy held: evaluate's exit is accuracy's
    [variant] = [v for v in AccuracyReport.load(out / "accuracy.json").variants if v.model == "lm_int8"]
    assert variant.in_process is not None and variant.in_process["verdict"] == "slower", variant.in_process
    report = (out / "report.md").read_text()
    assert "**FAIL · " in report and f"- {FAILURE}" in report, report[:1500]

"""A build's verification figure that was NaN is written to manifest.json as null (strict JSON, session 58); `deploy`
read it back as None and crashed formatting it ("unsupported format string passed to NoneType.__format__"). Its
warning now says the figure was not measured (n/a), and a missed check stays missed."""

from __future__ import annotations

import math
from pathlib import Path

from quantserve.artifact import Manifest
from serving.build_parameters import recorded_speed
from serving.build_verdict import missed_checks
from serving.deploy import deploy
from serving.drift_parameter import recorded_drift_misses
from serving.model_config import CONFIG_NAME, parse_config
from tests.serving.serving_models import DENSE_IO, write_dense_onnx

SLOWER = {"speedup": math.nan, "holds": False, "min_speedup": 1.1, "threads": 2, "batch_size": 8, "cpu": "EPYC"}
ROLLOUT = {"holds": False, "output": "token", "sequence_agreement": math.nan, "budget": 0.98, "starts": 12, "steps": 8}


def _read_back(directory: Path, verification: dict) -> Manifest:
    """The manifest as a build saved it (NaN as null) and deploy reads it."""
    directory.mkdir(parents=True)
    write_dense_onnx(directory / "model.onnx")
    inputs, outputs = DENSE_IO
    manifest = Manifest("dense", inputs, outputs, precision="int8", files={"model": "model.onnx"})
    manifest.verification = verification
    manifest.save(directory)
    return Manifest.load(directory)


def test_a_null_speedup_is_said_not_measured_and_still_missed(tmp_path: Path) -> None:
    manifest = _read_back(tmp_path / "b", {"holds": True, "violations": [], "speed": SLOWER})
    assert manifest.verification is not None and manifest.verification["speed"]["speedup"] is None
    assert missed_checks(manifest.verification) == [
        "was not shown faster than FP32 at optimize (speedup n/a: not measured); shipped with --allow-slower"
    ]


def test_a_null_rollout_agreement_is_said_not_measured_and_deploy_records_the_miss(tmp_path: Path) -> None:
    build = tmp_path / "b"
    manifest = _read_back(build, {"holds": False, "violations": [], "rollout": ROLLOUT})
    missed = (
        "missed its drift budget decoding on its own: output 'token' free-running rollout agreement n/a (not "
        "measured), budget 0.98 (share of 12 starts whose 8 generated tokens match FP32); shipped with --keep-failing"
    )
    assert missed_checks(manifest.verification) == [missed]
    repo = tmp_path / "repo"
    deploy(build, repo, "tok_int8", max_batch=8)
    assert recorded_drift_misses(parse_config(repo / "tok_int8" / CONFIG_NAME)) == [missed]


def test_deploy_records_a_null_speedup_as_a_speed_verdict_not_as_untimed(tmp_path: Path) -> None:
    build = tmp_path / "b"
    _read_back(build, {"holds": True, "violations": [], "speed": SLOWER})
    deploy(build, tmp_path / "repo", "slow_int8", max_batch=8)
    recorded = recorded_speed(parse_config(tmp_path / "repo" / "slow_int8" / CONFIG_NAME))
    assert recorded is not None and recorded["speedup"] is None and recorded["holds"] is False

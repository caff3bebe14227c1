"""A load run is judged by the drift misses and speed its own version's build recorded, not the model's last deploy's.

Session 57: version 1 (a faithful build) and version 2 (one shipped past its drift budget, `--keep-failing`) live
side by side; `config.pbtxt` is one per model, so its drift record was version 2's, and a load test pinned to version 1
was failed for version 2's misses (and the reverse). Deploy now records every version's build record in the config;
the load run reads the record of the version it loads. The server is a stand-in serving the config file as Triton's
JSON (`parse_config` reads it as Triton's `get_model_config` gives it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.harness import run_identity
from loadtest.load_settings import LoadSettings
from loadtest.report import load_results
from loadtest.run_identity import RunIdentity
from loadtest.verdict import gather
from serving.deploy import deploy
from serving.deploy_config import ServingPolicy
from serving.model_config import CONFIG_NAME, parse_config
from serving.versions import rollback
from tests.loadtest.verdict_records import KEPT_FAILING, RECORDED, dense_build, fp32_int8_results

FAITHFUL = {**KEPT_FAILING, "holds": True, "violations": [], "speed": {**KEPT_FAILING["speed"], "speedup": 1.5}}


class ServedRepo:
    """A stand-in `TritonGrpcClient` serving `repo`'s configs, every version folder READY."""

    repo: Path

    def __init__(self, *_: Any) -> None:
        pass

    def __enter__(self) -> ServedRepo:
        return self

    def __exit__(self, *_: Any) -> None:
        pass

    def model_config(self, model: str) -> dict[str, Any]:
        return parse_config(self.repo / model / CONFIG_NAME)

    def ready_versions(self, model: str) -> list[str]:
        return sorted((p.name for p in (self.repo / model).iterdir() if p.name.isdigit()), key=int)

    def version_precision(self, model: str, version: str = "") -> str | None:
        return "int8"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository served by the stand-in; a test deploys into it."""
    import serving.client

    ServedRepo.repo = tmp_path / "repo"
    monkeypatch.setattr(serving.client, "TritonGrpcClient", ServedRepo)
    return ServedRepo.repo


def _deploy_two(tmp_path: Path, repo: Path, first: dict[str, Any], second: dict[str, Any]) -> None:
    live = ServingPolicy(live_versions=2)
    deploy(dense_build(tmp_path / "v1", first), repo, "pxl_int8", max_batch=8, policy=live)
    deploy(dense_build(tmp_path / "v2", second), repo, "pxl_int8", max_batch=8, policy=live)


def _identity(tmp_path: Path, version: str = "") -> RunIdentity:
    data = tmp_path / "inputs.npz"
    np.savez(data, x=np.zeros((2, 16), np.float32))
    return run_identity(LoadSettings("127.0.0.1:1", "pxl_int8", data, model_version=version))[0]


def test_a_run_pinned_to_the_faithful_version_records_no_miss_of_the_kept_failing_one(
    tmp_path: Path, served: Path
) -> None:
    _deploy_two(tmp_path, served, FAITHFUL, KEPT_FAILING)
    pinned = _identity(tmp_path, "1")
    assert pinned.drift_missed is None and pinned.in_process and pinned.in_process["speedup"] == 1.5
    newest = _identity(tmp_path)  # unversioned: Triton answers from the newest, version 2
    assert newest.drift_missed == [RECORDED] and newest.in_process and newest.in_process["speedup"] == 1.94
    assert _identity(tmp_path, "2").drift_missed == [RECORDED]
    rollback(served, "pxl_int8", to=1)  # version 1's own config back, version 1 served alone
    (served / "pxl_int8" / "2").rename(served / "pxl_int8" / ".2")
    assert _identity(tmp_path).drift_missed is None and _identity(tmp_path, "1").drift_missed is None


def test_a_run_pinned_to_the_kept_failing_version_records_its_miss_though_a_faithful_one_came_after(
    tmp_path: Path, served: Path
) -> None:
    _deploy_two(tmp_path, served, KEPT_FAILING, FAITHFUL)
    assert _identity(tmp_path, "1").drift_missed == [RECORDED]
    newest = _identity(tmp_path)
    assert newest.drift_missed is None and newest.in_process and newest.in_process["speedup"] == 1.5


def test_evaluate_s_score_of_another_version_does_not_excuse_the_loaded_version_s_miss(tmp_path: Path) -> None:
    """Evaluate scored version 1 through the server; the load test loaded version 2, kept failing: its record is a
    failure (nothing here measured version 2's drift), not a note."""
    folder = fp32_int8_results(tmp_path / "results", [RECORDED])
    for run in (runs := load_results(folder).runs):
        if run.identity is not None:
            run.identity.versions = ["1", "2"]
    accuracy = AccuracyReport(
        "pxl_fp32", "eval.npz", "probs", False, None,
        [VariantAccuracy("pxl_fp32", 64), VariantAccuracy("pxl_int8@1", 64, precision="int8", version="1")],
    )  # fmt: skip
    verdict = gather(folder, runs, accuracy, [])
    assert any(line.startswith(f"pxl_int8: its build {RECORDED}") for line in verdict.failures), verdict.failures
    same = AccuracyReport(
        "pxl_fp32", "eval.npz", "probs", False, None,
        [VariantAccuracy("pxl_fp32", 64), VariantAccuracy("pxl_int8", 64, precision="int8", version="2")],
    )  # fmt: skip
    assert not gather(folder, runs, same, []).failures

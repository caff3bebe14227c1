"""`report --build` names each build's rows so that two builds of one factory module can be told apart (session 55):
an embedder's and its tagger's builds were both "aisfx_factory", the module's name, in-process and in the drift rows."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results
from loadtest.results import LoadResult
from optimizer.drift_budget import DriftBudget

SPEED = {
    "fp32_ms": 3.0,
    "int8_ms": 1.2,
    "speedup": 2.5,
    "min_speedup": 1.0,
    "batch_size": 8,
    "threads": 2,
    "cpu": "Test CPU",
}


def _build(folder: Path, name: str) -> Path:
    outputs = {"embedding": {"kind": "embedding", "cosine_mean": 0.9996, "cosine_worst": 0.9991}}
    verification = {"speed": {**SPEED, "holds": True}, "outputs": outputs, "budget": DriftBudget().to_dict()}
    folder.mkdir(parents=True)
    manifest = {"name": name, "precision": "int8", "verification": verification}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _with_a_load(folder: Path) -> Path:
    folder.mkdir()
    latency = LatencySummary.from_samples([1.0, 2.0])
    step = LoadResult("sfx_int8", "127.0.0.1:8001", "closed", 1, 5.0, 100, 0, 20.0, 20.0, latency, 1)
    LoadRun("sfx_int8", [step]).save(folder)
    return folder


def test_builds_sharing_a_name_are_told_apart_by_their_folders(tmp_path: Path) -> None:
    builds = [_build(tmp_path / "aisfx_int8", "aisfx_factory"), _build(tmp_path / "tagger_keep", "aisfx_factory")]
    verdict = load_results(_with_a_load(tmp_path / "r"), builds).verdict
    assert [entry["model"] for entry in verdict.in_process] == [
        "aisfx_factory (aisfx_int8)",
        "aisfx_factory (tagger_keep)",
    ]
    assert {row.variant for row in verdict.drift} == {"aisfx_factory (aisfx_int8)", "aisfx_factory (tagger_keep)"}


def test_a_build_of_its_own_name_keeps_it(tmp_path: Path) -> None:
    builds = [_build(tmp_path / "b1", "sfx_int8"), _build(tmp_path / "b2", "tagger_int8")]
    verdict = load_results(_with_a_load(tmp_path / "r"), builds).verdict
    assert [entry["model"] for entry in verdict.in_process] == ["sfx_int8", "tagger_int8"]

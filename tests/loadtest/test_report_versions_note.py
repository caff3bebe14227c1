"""`report` over a load test of one version and an accuracy run of another says so: the verdict would judge one
version's speed with another's accuracy (a deploy between `loadtest` and `evaluate`)."""

from __future__ import annotations

from pathlib import Path

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results, render
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from optimizer.drift_budget import DriftBudget

NOTE = (
    "digits_int8's load test measured version 1, its accuracy (digits_int8) was scored on version 2: the verdict "
    "judges one version's speed with another's accuracy"
)


def _run(model: str, rps: float, versions: list[str]) -> LoadRun:
    latency = LatencySummary(int(rps * 10), 10.0, 10.0, 13.0, 15.0, 20.0, 5.0, 30.0)
    step = LoadResult(model, "127.0.0.1:8001", "closed", 4, 10.0, int(rps * 10), 0, rps, rps * 4, latency, 4)
    identity = RunIdentity("2026-12-01T08:00:00Z", versions=versions)
    return LoadRun(model, [step], precision="int8" if "int8" in model else "fp32", identity=identity)


def _folder(folder: Path, int8_versions: list[str], scored_version: str) -> Path:
    folder.mkdir()
    _run("digits_fp32", 400.0, ["1"]).save(folder)
    _run("digits_int8", 800.0, int8_versions).save(folder)
    drift = {"logits": {"kind": "classification", "top1_agreement": 0.998}}
    reference = VariantAccuracy("digits_fp32", 512, 1.0, version="1", precision="fp32")
    int8 = VariantAccuracy("digits_int8", 512, 0.998, drift=drift, version=scored_version, precision="int8")
    budget = DriftBudget().to_dict()
    AccuracyReport("digits_fp32", "held.npz", "logits", False, 1.0, [reference, int8], budget).save(folder)
    return folder


def test_a_load_test_of_another_version_than_the_accuracy_run_is_said(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "results", ["1"], "2")
    assert NOTE in load_results(folder).verdict.notes
    md_path, _ = render(folder)
    assert NOTE in md_path.read_text()


def test_the_same_version_or_an_unrecorded_one_says_nothing(tmp_path: Path) -> None:
    same = _folder(tmp_path / "same", ["1", "2"], "2")  # unaddressed: Triton answered with its newest, 2
    unrecorded = _folder(tmp_path / "unrecorded", [], "2")  # a file from before versions were recorded
    for folder in (same, unrecorded):
        assert not [n for n in load_results(folder).verdict.notes if "version" in n and "accuracy" in n]

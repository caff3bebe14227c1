"""A load test of a build shipped on thin evidence (`optimize --allow-thin-evidence`) does not read a plain PASS.

Session 62's probe: nsfwjs's MobileNetV2 INT8 built on 128 --eval rows held top-1 agreement 1.0 whose 95 % lower
bound (0.979) misses the 0.99 budget (268 rows would show it); deployed and load-tested beside FP32 (no evaluate, no
--build), report.md headlined "PASS · INT8 1.21× FP32 served", no word of it. `deploy` now records the build's
thin-evidence lines per version, as it records its drift misses (session 56); the load run keeps them, and the verdict
reads NOT SHOWN / PASS on thin evidence where nothing here measured drift, a note where evaluate scored the version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.harness import run_identity
from loadtest.load_settings import LoadSettings
from loadtest.report import load_results, render
from loadtest.report_verdict import verdict_headline
from loadtest.run_identity import RunIdentity
from loadtest.verdict import NOT_SHOWN, THIN, gather
from optimizer.drift_evidence import thin_evidence_line
from serving.deploy import deploy
from serving.deploy_config import ServingPolicy
from serving.drift_parameter import THIN_EVIDENCE_PARAMETER, recorded_thin_evidence
from serving.model_config import CONFIG_NAME, parse_config
from tests.loadtest.test_s57_version_drift import ServedRepo
from tests.loadtest.verdict_records import KEPT_FAILING, dense_build, fp32_int8_results, thin_evidence_build

# the probe's record: 128 rows, all agreeing; full agreement shows 0.99 only from 268 rows, so NOT SHOWN
UNSHOWN = {"output": "probs", "metric": "top1_agreement", "value": 1.0, "rows": 128, "lower_bound": 0.979,
           "budget": 0.99, "rows_needed": 268}  # fmt: skip
# 300 rows, 298 agreeing: rows enough for full agreement to show 0.99, the rate seen's bound misses it: THIN
THIN_ENTRY = {"output": "probs", "metric": "top1_agreement", "value": 298 / 300, "rows": 300, "lower_bound": 0.976,
              "budget": 0.99, "rows_needed": 1200}  # fmt: skip
UNSHOWN_LINE = thin_evidence_line(UNSHOWN, "--eval")
THIN_LINE = thin_evidence_line(THIN_ENTRY, "--eval")
HELD = {**KEPT_FAILING, "holds": True, "violations": []}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import serving.client

    ServedRepo.repo = tmp_path / "repo"
    monkeypatch.setattr(serving.client, "TritonGrpcClient", ServedRepo)
    return ServedRepo.repo


def _identity(tmp_path: Path, version: str = "") -> RunIdentity:
    data = tmp_path / "inputs.npz"
    np.savez(data, x=np.zeros((2, 16), np.float32))
    return run_identity(LoadSettings("127.0.0.1:1", "pxl_int8", data, model_version=version))[0]


def _results(folder: Path, thin: list[dict[str, Any]] | None) -> Path:
    fp32_int8_results(folder, None)
    run = next(r for r in load_results(folder).runs if r.model == "pxl_int8")
    assert run.identity is not None
    run.identity.thin_evidence = thin
    run.save(folder)
    return folder


def test_deploy_records_the_thin_evidence_lines_per_version_and_the_load_run_reads_its_own(
    tmp_path: Path, served: Path
) -> None:
    live = ServingPolicy(live_versions=2)
    deploy(thin_evidence_build(tmp_path / "v1", UNSHOWN), served, "pxl_int8", max_batch=8, policy=live)
    config = parse_config(served / "pxl_int8" / CONFIG_NAME)
    assert recorded_thin_evidence(config) == [{"line": UNSHOWN_LINE, "not_shown": True}]
    deploy(dense_build(tmp_path / "v2", HELD), served, "pxl_int8", max_batch=8, policy=live)
    config = parse_config(served / "pxl_int8" / CONFIG_NAME)
    assert THIN_EVIDENCE_PARAMETER not in (config.get("parameters") or {})
    assert _identity(tmp_path, "1").thin_evidence == [{"line": UNSHOWN_LINE, "not_shown": True}]
    assert _identity(tmp_path).thin_evidence is None  # version 2 held on rows enough


def test_a_load_test_of_a_build_shipped_on_rows_too_few_reads_not_shown(tmp_path: Path) -> None:
    folder = _results(tmp_path / "lt", [{"line": UNSHOWN_LINE, "not_shown": True}])
    verdict = load_results(folder).verdict
    assert verdict.passed and verdict.word == NOT_SHOWN, (verdict.word, verdict.failures)
    assert verdict_headline(verdict).startswith("NOT SHOWN · INT8 1.97× FP32 served (pxl_int8 vs pxl_fp32")
    [line] = verdict.not_shown
    assert line.startswith(f"pxl_int8: its build's {UNSHOWN_LINE} (its deployment's record;"), line
    md = render(folder)[0].read_text()
    assert "**NOT SHOWN · INT8 1.97× FP32 served" in md and "**PASS" not in md
    assert UNSHOWN_LINE in md


def test_a_rate_whose_rows_could_show_it_reads_pass_on_thin_evidence(tmp_path: Path) -> None:
    verdict = load_results(_results(tmp_path / "lt", [{"line": THIN_LINE, "not_shown": False}])).verdict
    assert verdict.word == THIN and not verdict.not_shown and verdict.passed
    assert verdict.thin[0].startswith(f"pxl_int8: its build's {THIN_LINE}")


def test_where_evaluate_scored_the_version_the_record_is_a_note(tmp_path: Path) -> None:
    folder = _results(tmp_path / "lt", [{"line": UNSHOWN_LINE, "not_shown": True}])
    accuracy = AccuracyReport(
        "pxl_fp32", "eval.npz", "probs", False, None,
        [VariantAccuracy("pxl_fp32", 640), VariantAccuracy("pxl_int8", 640, precision="int8")],
    )  # fmt: skip
    verdict = gather(folder, load_results(folder).runs, accuracy, [])
    assert verdict.word == "PASS" and not verdict.not_shown and not verdict.thin
    assert any(note.startswith(f"pxl_int8: its build's {UNSHOWN_LINE}") for note in verdict.notes), verdict.notes


def test_a_run_from_before_the_record_reads_as_before(tmp_path: Path) -> None:
    verdict = load_results(_results(tmp_path / "lt", None)).verdict
    assert verdict.word == "PASS" and not verdict.not_shown and not verdict.thin

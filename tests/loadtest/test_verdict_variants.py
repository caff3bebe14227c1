"""The report judges every INT8 variant that pairs with an FP32 run, and says when another model loaded the server.

A prober's folder held mlp_fp32 (627.5 req/s), mlp_int8 (650.7) and mlp_int8t (the same build at max batch 64 with
2 instances, 384.6) at 4 users: `quantserve report` said "PASS · INT8 1.04×", exit 0, mlp_int8t never named; without
load-mlp_int8.json the same data said "FAIL · INT8 0.61×", exit 1 (a `report && deploy` gate went by file names).
An idle INT8 run paired with an FP32 run recorded beside that INT8 model's trace load on the same server read
"PASS · INT8 2.31× FP32" with only "others took 29% of the cores" (side by side: 1.04×). Results are written and
read by the code's own `LoadRun.save`/`load`, with the probe's figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report import load_results
from loadtest.report_verdict import verdict_headline
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from quantserve.cli import main

MACHINE = {"client_host": "loadbox", "client_cpu": "AMD EPYC 9B14", "client_cores": 2}


def _step(model: str, rps: float, users: int = 4, requests: int | None = None) -> LoadResult:
    count = requests if requests is not None else int(rps * 10)
    latency = LatencySummary(count, 2.0, 3.0, 3.5, 4.0, 2.2, 1.0, 5.0)
    return LoadResult(model, "127.0.0.1:8001", "closed", users, 10.0, count, 0, rps, rps, latency, 1)


def _save(folder: Path, model: str, step: LoadResult, workers: int = 0) -> None:
    identity = RunIdentity("2026-12-01T08:20:05Z", ["1"], "sha256:src", "load.npz", "sha256:data")
    for name, value in MACHINE.items():
        setattr(identity, name, value)
    step.workers = workers
    precision = "int8" if "int8" in model else "fp32"
    LoadRun(model, [step], precision=precision, identity=identity).save(folder)


def _probe_folder(folder: Path) -> Path:
    _save(folder, "mlp_fp32", _step("mlp_fp32", 627.5))
    _save(folder, "mlp_int8", _step("mlp_int8", 650.7))
    _save(folder, "mlp_int8t", _step("mlp_int8t", 384.6))
    return folder


def test_a_slower_second_int8_variant_fails_the_verdict_whatever_the_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _probe_folder(tmp_path)
    verdict = load_results(folder).verdict
    assert verdict_headline(verdict) == (
        "FAIL · INT8 0.61× FP32 served (mlp_int8t vs mlp_fp32, 384.6 vs 627.5 req/s at 4 users)"
    )
    assert verdict.failures == ["served INT8 mlp_int8t is slower than FP32 mlp_fp32 (0.61× at 4 users)"]
    assert verdict.notes == [
        "2 INT8-vs-FP32 pairs were compared, each judged; the headline gives the lowest (mlp_int8t vs mlp_fp32)",
        "served: INT8 mlp_int8 1.04× FP32 mlp_fp32 (650.7 vs 627.5 req/s at 4 users)",
        "served: INT8 mlp_int8t 0.61× FP32 mlp_fp32 (384.6 vs 627.5 req/s at 4 users)",
    ]
    assert main(["report", str(folder)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL · INT8 0.61× FP32 served (mlp_int8t vs")


def test_variants_that_all_beat_fp32_pass_and_each_is_named(tmp_path: Path) -> None:
    _save(tmp_path, "mlp_fp32", _step("mlp_fp32", 300.0))
    _save(tmp_path, "mlp_int8", _step("mlp_int8", 650.7))
    _save(tmp_path, "mlp_int8t", _step("mlp_int8t", 384.6))
    verdict = load_results(tmp_path).verdict
    assert verdict.passed and [s.int8_model for s in verdict.served_pairs] == ["mlp_int8", "mlp_int8t"]
    assert verdict_headline(verdict).startswith("PASS · INT8 1.28× FP32 served (mlp_int8t vs mlp_fp32, ")


def test_each_fp32_run_is_a_reference_for_each_int8_variant(tmp_path: Path) -> None:
    _save(tmp_path, "mlp_fp32", _step("mlp_fp32", 300.0))
    _save(tmp_path, "mlp_fp32b", _step("mlp_fp32b", 700.0))
    _save(tmp_path, "mlp_int8", _step("mlp_int8", 650.7))
    verdict = load_results(tmp_path).verdict
    assert not verdict.passed
    assert verdict.failures == ["served INT8 mlp_int8 is slower than FP32 mlp_fp32b (0.93× at 4 users)"]
    assert "served: INT8 mlp_int8 2.17× FP32 mlp_fp32 (650.7 vs 300.0 req/s at 4 users)" in verdict.notes


def test_an_int8_variant_that_pairs_with_no_fp32_run_is_said_why(tmp_path: Path) -> None:
    _save(tmp_path, "mlp_fp32", _step("mlp_fp32", 627.5))
    _save(tmp_path, "mlp_int8", _step("mlp_int8", 650.7))
    _save(tmp_path, "mlp_int8w", _step("mlp_int8w", 384.6), workers=2)
    verdict = load_results(tmp_path).verdict
    assert verdict.passed and len(verdict.served_pairs) == 1
    assert verdict.notes == [
        "mlp_int8w and mlp_fp32 were load-tested from different numbers of Locust worker processes (--workers 2 vs "
        "0, load-mlp_int8w.json vs load-mlp_fp32.json): their req/s do not compare, no INT8-vs-FP32 verdict; "
        "load-test both with one --workers"
    ]


def test_an_fp32_window_shared_with_another_models_load_is_a_caveat(tmp_path: Path) -> None:
    """The probe's r_old2: FP32 recorded beside mlp_int8's trace (3516 of its requests in the window)."""
    fp32 = _step("mlp_fp32", 282.0, requests=5660)
    fp32.other_models = {"mlp_int8": 3516, "ensemble": 4}
    _save(tmp_path, "mlp_fp32", fp32)
    int8 = _step("mlp_int8", 650.7)
    int8.other_models = {"mlp_fp32": 9}  # below the floor: a health check, not load
    _save(tmp_path, "mlp_int8", int8)
    assert verdict_headline(load_results(tmp_path).verdict) == (
        "PASS · INT8 2.31× FP32 served (mlp_int8 vs mlp_fp32, 650.7 vs 282.0 req/s at 4 users), caveat: FP32 "
        "mlp_fp32 @ 4 users shared the server with other models' load ('mlp_int8' 3516, 'ensemble' 4 requests "
        "against its 5660)"
    )

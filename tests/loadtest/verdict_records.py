"""Made-up records a load test's verdict is read from, without a server: a dense build whose manifest holds a given
verification (as `optimize` records it), and a results folder of an FP32 and an INT8 model's load runs. Shared by
the verdict tests of sessions 56, 57 and 59 (imported as `tests.loadtest.verdict_records`, not from a test module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from quantserve.artifact import Manifest
from tests.serving.serving_models import DENSE_IO, write_dense_onnx

MISS = "output 'probs': worst channel correlation (axis 1, entry 1) 0.9795 < budget 0.98"
KEPT_FAILING = {
    "holds": False,
    "violations": [
        {"line": MISS, "metric": "channel_correlation_worst", "value": 0.9795, "budget": 0.98},
        {"line": "output 'probs': share of clear positives agreed 0.8696 < budget 0.95"},
    ],
    "speed": {"speedup": 1.94, "holds": True, "min_speedup": 1.1, "threads": 2, "batch_size": 8, "cpu": "EPYC"},
}  # a build shipped past its drift budget (`optimize --keep-failing`), its speed held
RECORDED = f"missed its drift budget row by row: {MISS} (and 1 more); shipped with --keep-failing"  # deploy's record


def dense_build(directory: Path, verification: dict[str, Any] | None) -> Path:
    """An INT8 build of the dense test model (`dense`) in `directory`, its manifest recording `verification`."""
    directory.mkdir(parents=True)
    write_dense_onnx(directory / "model.onnx")
    inputs, outputs = DENSE_IO
    manifest = Manifest("dense", inputs, outputs, precision="int8", target="embedded", files={"model": "model.onnx"})
    manifest.verification = verification
    manifest.save(directory)
    return directory


def load_step(model: str, rps: float) -> LoadResult:
    """A 20 s closed-loop step of 4 users at `rps`, every request answered in 20 ms."""
    requests = int(rps * 20)
    return LoadResult(
        model, "127.0.0.1:1", "closed", 4, 20.0, requests, 0, rps, 8 * rps,
        LatencySummary.from_samples(np.full(requests, 20.0)), 8,
    )  # fmt: skip


def fp32_int8_results(folder: Path, drift_missed: list[str] | None) -> Path:
    """`folder` holding the load runs of `pxl_fp32` (3.5 req/s) and `pxl_int8` (6.9 req/s, 1.97× FP32), the INT8 one's
    deployment recording `drift_missed` (None: nothing recorded)."""
    folder.mkdir()
    LoadRun("pxl_fp32", [load_step("pxl_fp32", 3.5)], precision="fp32").save(folder)
    identity = RunIdentity("2026-12-06T10:00:00Z", ["1"])
    if drift_missed is not None:
        identity.drift_missed = drift_missed
    LoadRun("pxl_int8", [load_step("pxl_int8", 6.9)], precision="int8", identity=identity).save(folder)
    return folder


def thin_evidence_build(directory: Path, thin: dict[str, Any]) -> Path:
    """`dense_build` whose verification held, its one thin-evidence record `thin`."""
    return dense_build(directory, {"holds": True, "violations": [], "thin_evidence": [thin]})

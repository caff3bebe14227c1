"""`bench` reads its INT8 build's held-out evidence back from the manifest (`bench_build.with_evidence`); a rate that
was NaN is written there as null (strict JSON, session 58) and the line had crashed on its format. It reads "n/a"."""

from __future__ import annotations

import math
from pathlib import Path

from quantserve.artifact import Manifest
from quantserve.cli.bench_build import with_evidence

THIN = {
    "output": "probs", "metric": "top1_agreement", "value": math.nan, "lower_bound": 0.9834, "budget": 0.99,
    "rows": 268, "rows_needed": 682,
}  # fmt: skip


def test_a_null_thin_evidence_rate_reads_n_a(tmp_path: Path) -> None:
    Manifest("dense", [], [], precision="int8", verification={"holds": True, "thin_evidence": [THIN]}).save(tmp_path)
    record = with_evidence({"path": str(tmp_path), "drift_holds": True}, "--data")
    assert record["evidence_note"].startswith(
        "output 'probs': top-1 agreement n/a over 268 held-out rows shows only ≥ 0.983 (95 % lower bound), not the "
        "budget's 0.99"
    )

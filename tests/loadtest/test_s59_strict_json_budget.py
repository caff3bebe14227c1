"""A budget a manifest holds as null (hand-edited, or a NaN written as strict JSON): never from a flag, it had
crashed `report --build` with a TypeError (float(None)). A null --min-speedup reads as absent (it only picks the
digits the speedup is shown with; the verdict is the record's `holds`); a null thin-evidence budget, which decides
whether the rate is shown at all, is one line naming the file and the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loadtest.report import load_results, render
from quantserve.artifact import Manifest
from quantserve.errors import QuantserveError
from tests.loadtest.verdict_records import dense_build, fp32_int8_results, thin_evidence_build

SLOWER = {"speedup": 1.05, "holds": False, "min_speedup": math.nan, "threads": 2, "batch_size": 8, "cpu": "EPYC"}
THIN = {
    "output": "probs", "metric": "top1_agreement", "value": 1.0, "lower_bound": 0.989, "budget": math.nan,
    "rows": 268, "rows_needed": 682,
}  # fmt: skip


def test_a_null_min_speedup_reads_as_absent_and_the_slower_build_fails(tmp_path: Path) -> None:
    build = dense_build(tmp_path / "b", {"holds": True, "violations": [], "speed": SLOWER})
    assert Manifest.load(build).verification["speed"]["min_speedup"] is None  # type: ignore[index]
    results = fp32_int8_results(tmp_path / "r", None)
    render(results, [build])
    verdict = load_results(results, [build]).verdict
    assert "dense: INT8 1.05× FP32 in-process, below its speed budget" in verdict.failures
    assert not verdict.passed


def test_a_null_thin_evidence_budget_is_one_line_naming_the_file_and_the_key(tmp_path: Path) -> None:
    build, results = thin_evidence_build(tmp_path / "b", THIN), fp32_int8_results(tmp_path / "r", None)
    with pytest.raises(QuantserveError) as caught:
        render(results, [build])
    assert str(caught.value) == (
        f"{build / 'manifest.json'}: verification.thin_evidence[0].budget is null; rebuild or fix it"
    )

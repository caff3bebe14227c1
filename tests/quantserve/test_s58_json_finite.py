"""The JSON files the tool writes its results to are strict JSON (session 58): evaluate's accuracy.json held bare
`NaN` tokens (mean_abs_diff, a drift record's relative_error), which Node's JSON.parse refuses. Non-finite figures
are written as null and a float figure is read back as NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from quantserve.artifact import Manifest
from quantserve.json_files import strict_json


def _strict(path: Path) -> Any:
    """The file parsed as a strict reader parses it: no NaN, Infinity or -Infinity tokens."""

    def refuse(token: str) -> None:
        raise ValueError(f"{path.name}: bare {token} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_accuracy_json_writes_nan_and_inf_as_null_and_reads_them_back(tmp_path: Path) -> None:
    variant = VariantAccuracy(
        "fcpe_int8",
        256,
        mean_abs_diff=math.nan,
        max_abs_diff=math.inf,
        cosine_mean=0.66,
        drift={"cents": {"relative_error": math.nan, "max_abs_diff": math.inf, "cosine_mean": 0.66}},
    )
    report = AccuracyReport(
        "fcpe_fp32", "heldout.npz", "cents", False, 1.0, [VariantAccuracy("fcpe_fp32", 256), variant]
    )
    written = _strict(report.save(tmp_path))
    assert written["variants"][1]["mean_abs_diff"] is None and written["variants"][1]["max_abs_diff"] is None
    assert written["variants"][1]["drift"]["cents"]["relative_error"] is None
    back = AccuracyReport.load(tmp_path / "accuracy.json").variants[1]
    assert math.isnan(back.mean_abs_diff) and math.isnan(back.max_abs_diff) and back.cosine_mean == 0.66


def test_the_manifest_writes_a_drift_records_nan_as_null(tmp_path: Path) -> None:
    manifest = Manifest("fcpe", [], [], verification={"outputs": {"cents": {"relative_error": math.nan}}})
    _strict(manifest.save(tmp_path))
    assert Manifest.load(tmp_path).verification == {"outputs": {"cents": {"relative_error": None}}}


def test_non_finite_numbers_are_null_at_any_depth() -> None:
    assert strict_json({"a": [math.inf, -math.inf, (math.nan, 1.5)]}) == '{"a": [null, null, [null, 1.5]]}'

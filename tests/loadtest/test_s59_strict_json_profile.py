"""profile.json written strict (a NaN timing as null, which `jq` and JavaScript's JSON.parse take; a bare NaN
they refuse), and read back by the report as not measured, never a TypeError formatting None."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from loadtest.profile_report import render, summary_lines
from optimizer.profile import ModelProfile, NodeTime
from optimizer.profile_compare import BuildProfile, NodeRow, OpTypeRow


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _with_nan() -> BuildProfile:
    nodes = [NodeTime("mm", "MatMul", "mm", "MatMul", math.nan)]
    reference = ModelProfile("fp32.onnx", 1, 3, 2.0, [NodeTime("mm", "MatMul", "mm", "MatMul", 1.0)])
    model = ModelProfile("model.onnx", 1, 3, math.nan, nodes, others_share=math.nan)
    return BuildProfile(
        "build/x", "int8", "Some CPU", "random", 8, 1, 3, reference, model,
        [OpTypeRow("MatMul", 1.0, math.nan, math.nan, 1.0, math.nan)],
        [NodeRow("mm", "MatMul", 1.0, math.nan, math.nan, False)], math.nan,
    )  # fmt: skip


def test_a_nan_timing_is_written_as_null_in_strict_json(tmp_path: Path) -> None:
    path = _with_nan().save(tmp_path / "profile.json")
    data = _strict(path.read_text())
    assert isinstance(data, dict)
    assert data["model"]["run_ms"] is None and data["run_speedup"] is None
    assert data["op_types"][0]["model_ms"] is None and data["nodes"][0]["model_ms"] is None


def test_a_null_timing_reads_back_as_nan_and_the_report_says_n_a(tmp_path: Path) -> None:
    _with_nan().save(tmp_path / "profile.json")
    loaded = BuildProfile.load(tmp_path / "profile.json")
    assert math.isnan(loaded.model.run_ms) and math.isnan(loaded.model.nodes[0].ms)
    assert loaded.run_speedup is None and loaded.reference.others_share is None  # None: no ratio / unknown
    assert "INT8 n/a ms (INT8 speedup –)" in summary_lines(loaded)[0]
    md_path, html_path = render(tmp_path)
    markdown = md_path.read_text()
    assert "| 1.000 | n/a | – | 100.0 | n/a | MatMul |" in markdown
    assert not re.search(r"\bnan\b", markdown, re.IGNORECASE)
    assert "n/a" in html_path.read_text()

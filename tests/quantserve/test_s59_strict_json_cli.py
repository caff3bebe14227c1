"""The application's JSON and words for a figure not measured: `quantserve profile --json` prints strict JSON
(a NaN timing as null), its tables say n/a; the demo's caveats say the in-process speedup is n/a."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from optimizer.profile import ModelProfile, NodeTime
from optimizer.profile_compare import BuildProfile, NodeRow, OpTypeRow
from quantserve.cli import main


def _strict(text: str) -> Any:
    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _with_nan(*_: object) -> BuildProfile:
    node = NodeTime("mm", "MatMul", "mm", "MatMul", math.nan)
    profile = ModelProfile("model.onnx", 1, 3, math.nan, [node])
    return BuildProfile(
        "build/x", "int8", "Some CPU", "random", 8, 1, 3, profile, profile,
        [OpTypeRow("MatMul", math.nan, math.nan, math.nan, math.nan, math.nan)],
        [NodeRow("mm", "MatMul", math.nan, math.nan, math.nan, False)], math.nan,
    )  # fmt: skip


@pytest.mark.parametrize("extra", [["--json"], []])
def test_profile_with_a_nan_timing_prints_strict_json_or_n_a(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    monkeypatch.setattr("quantserve.cli.commands.profile.profile_build", _with_nan)
    monkeypatch.setenv("COLUMNS", "120")
    (tmp_path / "build").mkdir()
    assert main(["profile", str(tmp_path / "build"), "--out", str(tmp_path / "out"), *extra]) == 0
    printed = capsys.readouterr().out
    assert _strict((tmp_path / "out" / "profile.json").read_text())["model"]["run_ms"] is None
    if extra:
        assert _strict(printed)["run_speedup"] is None
    else:
        assert not re.search(r"\bnan\b", printed, re.IGNORECASE) and "n/a" in printed


def test_overhead_bench_writes_a_step_with_no_answer_as_strict_json(tmp_path: Path) -> None:
    from quantserve.cli.overhead_bench import write_summary

    summary = {"model": "tiny", "served": [{"users": 1, "p50_ms": math.nan, "throughput_rps": 0.0}]}
    printed = write_summary(tmp_path, summary)
    assert _strict(printed) == _strict((tmp_path / "overhead.json").read_text())
    assert _strict(printed)["served"][0]["p50_ms"] is None


@pytest.mark.parametrize("speedup", [None, math.nan])
def test_the_demo_says_an_in_process_speedup_not_measured_as_the_report_does(speedup: float | None) -> None:
    from quantserve.cli.commands.demo import verdict_line
    from quantserve.cli.demo_caveats import in_process_words

    speed = {"speedup": speedup, "holds": False, "verdict": None, "threads": 2, "caveats": []}
    assert in_process_words({"int8_in_process": speed}) == "in-process speedup n/a (not measured), "
    summary = {"int8_in_process": speed, "int8_speedup": 1.5, "int8_accuracy_drop_points": 0.0}
    assert verdict_line(summary).startswith("INT8 vs FP32: in-process speedup n/a (not measured), 1.50× served")
    assert in_process_words({"int8_in_process": None}) == ""  # no timing recorded: nothing said, as before

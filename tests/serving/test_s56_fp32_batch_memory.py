"""deploy of an FP32 build weighs --max-batch against the footprint that build measured (session 56): before, only
INT8 builds kept one, and `deploy --max-batch 2000000` of an FP32 build said nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.batch_memory import MeasuredFootprint, batch_memory_line, measured_footprint

GB = 10**9


def _fp32_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.speed import SpeedSettings

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "assets"))
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "calib-cache"))
    import make_tiny_models

    source = make_tiny_models.write_tiny_onnx(tmp_path / "tiny.onnx")
    calib = make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=64)
    build = tmp_path / "build"
    optimize(OptimizeOptions(source, calib, "fp32", "embedded", build, speed=SpeedSettings(enabled=False)))
    return build


def test_an_fp32_build_s_footprint_is_read_and_worded_as_fp32_alone() -> None:
    stages = [
        {"stage": "export"},
        {"stage": "fuse", "footprint": {"session_bytes": 7, "row_bytes": 5, "fixed_bytes": 3}},
    ]
    assert measured_footprint(stages) == MeasuredFootprint(7, 5, 3, int8_counted=False)
    stages[1]["footprint"] = {"session_bytes": 10**8, "row_bytes": 20_000, "fixed_bytes": 0}
    line = batch_memory_line(stages, 2_000_000, 1, total=24 * GB)
    assert line.startswith("--max-batch 2000000 would need ~40 GB of memory at a full batch (1 instance; optimize ")
    assert "measured ~20 KB a row in FP32): this machine has 24 GB" in line, line


def test_deploy_of_an_fp32_build_warns_at_a_max_batch_past_the_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = _fp32_build(tmp_path, monkeypatch)
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))  # no serve of this repository runs
    os.makedirs(tmp_path / "run")
    capsys.readouterr()
    repo = tmp_path / "repo"
    # 2e9 rows (near the most Triton holds): past half of any machine's memory at the row cost measured
    huge = ["deploy", str(build), "--repo", str(repo), "--name", "tiny", "--max-batch", str(2 * 10**9)]
    assert main(huge) == 0  # warned, still deployed
    err = capsys.readouterr().err
    assert f"warning: --max-batch {2 * 10**9} would need ~" in err and "a row in FP32)" in err, err
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "small", "--max-batch", "8"]) == 0
    assert "memory" not in capsys.readouterr().err

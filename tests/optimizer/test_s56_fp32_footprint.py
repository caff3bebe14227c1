"""An FP32 build measures its session's footprint too (session 56), for deploy to weigh --max-batch against
(serving.batch_memory): only INT8 builds were timed, so `optimize --precision fp32` kept no figures and deploying it
with `--max-batch 2000000` said nothing, though the FP32 model is the one session 54 saw grow to 20 GB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optimizer.timing_rows as timing_rows
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.timing_rows import start_fp32_footprint
from quantserve.artifact import Manifest
from quantserve.data import TensorData
from quantserve.errors import InternalError


def _fuse_record(build: Path) -> dict:
    return next(s for s in Manifest.load(build).stages if s["stage"] == "fuse")


def test_an_fp32_build_keeps_its_session_s_footprint(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    optimize(OptimizeOptions(tiny_onnx, calib_npz, "fp32", "embedded", tmp_path / "fp32"))
    footprint = _fuse_record(tmp_path / "fp32")["footprint"]
    assert set(footprint) == {"session_bytes", "row_bytes", "fixed_bytes"}, footprint
    # an ONNX Runtime session in a Python child: tens of MB at least, far below a few GB for a tiny CNN
    assert 10 * 10**6 < footprint["session_bytes"] < 4 * 10**9, footprint
    assert 0 <= footprint["row_bytes"] < 10**9 and footprint["fixed_bytes"] >= 0, footprint


def test_a_failed_measurement_is_noted_and_the_build_goes_on(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: object, **kwargs: object) -> None:
        raise InternalError("measuring the memory of fp32.onnx failed in its child process (exit -9): Killed")

    monkeypatch.setattr(timing_rows, "measure_footprint", fails)
    speed = SpeedSettings(enabled=False)
    optimize(OptimizeOptions(tiny_onnx, calib_npz, "fp32", "embedded", tmp_path / "fp32", speed=speed))
    record = _fuse_record(tmp_path / "fp32")
    assert "footprint" not in record
    assert record["footprint_note"] == (
        "the FP32 session's memory was not measured (measuring the memory of fp32.onnx failed in its child process "
        "(exit -9): Killed); deploy cannot weigh a batch"
    )


def test_no_batch_to_weigh_is_not_measured(tmp_path: Path) -> None:
    rows = TensorData({"x": np.zeros((4, 3), np.float32)})
    rows.unbatched = True  # served one request at a time: deploy has no --max-batch to weigh
    assert start_fp32_footprint(tmp_path / "m.onnx", rows, threads=1) is None
    assert start_fp32_footprint(tmp_path / "m.onnx", TensorData({"x": np.zeros((0, 3), np.float32)}), 1) is None

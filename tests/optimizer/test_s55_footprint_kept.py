"""The FP32 footprint optimize measures for its timing batch is kept in the manifest (session 55), for deploy to weigh
--max-batch against (serving.batch_memory): session 54's demo model, deployed with --max-batch 2000000, was killed at
20 GB by a request of 1 024 000 rows, while only the derived timing batch had reached the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optimizer.timing_rows as timing_rows
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.timing_rows import Footprint, fit_timing_rows, searched_rows
from quantserve.artifact import Manifest
from quantserve.data import TensorData

MEASURED = Footprint(session_bytes=100 << 20, row_bytes=20_000, fixed_bytes=300 << 20)


def test_the_timing_rows_record_keeps_the_measured_footprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing_rows, "measure_footprint", lambda *args, **kwargs: MEASURED)
    chosen = fit_timing_rows(tmp_path / "m.onnx", TensorData({"x": np.zeros((16, 4), np.float32)}), 8, threads=1)
    record = chosen.to_dict()
    assert record["footprint"] == {"session_bytes": 100 << 20, "row_bytes": 20_000, "fixed_bytes": 300 << 20}
    stages = [{"stage": "calibrate", "speed": {"timing_rows": record}}]
    assert searched_rows(stages) == chosen  # the gate reads it back whole


def test_an_older_record_without_the_footprint_still_reads() -> None:
    old = {"rows": 8, "asked": 8, "need_bytes": 1, "allowed_bytes": 2, "given": False, "note": ""}
    stages = [{"stage": "calibrate", "speed": {"timing_rows": old}}]
    rows = searched_rows(stages)
    assert rows is not None and rows.footprint is None and rows.rows == 8


def test_an_int8_build_s_manifest_carries_the_footprint(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    speed = SpeedSettings(seconds_per_model=0.05, repeats=2, rounds=1, allow_slower=True)
    out = tmp_path / "tiny"
    optimize(OptimizeOptions(tiny_onnx, calib_npz, "int8", "embedded", out, speed=speed))
    calibrate = next(s for s in Manifest.load(out).stages if s["stage"] == "calibrate")
    footprint = calibrate["speed"]["timing_rows"]["footprint"]
    assert footprint["session_bytes"] > 10 * 10**6 and footprint["row_bytes"] >= 0, footprint

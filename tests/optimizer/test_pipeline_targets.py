"""The pipeline refuses what a target cannot do before any expensive stage, and writes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from optimizer.pipeline import OptimizeOptions, optimize
from quantserve.errors import QuantserveError


def test_fp16_on_the_cpu_target_is_refused(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="fp16 needs a GPU target"):
        optimize(OptimizeOptions(tiny_onnx, calib_npz, "fp16", "embedded", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_target_without_tensorrt_fails_before_export(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages: list[str] = []
    with pytest.raises(QuantserveError, match="needs TensorRT"):
        optimize(OptimizeOptions(tiny_onnx, calib_npz, "int8", "tensorrt", tmp_path / "out", on_stage=stages.append))
    assert stages == []  # preflight ran before the export stage
    assert not (tmp_path / "out").exists()

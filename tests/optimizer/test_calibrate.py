from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from optimizer.calibrate import CalibrateInt8, CalibrationSettings, calibrate_int8, unshare_weights
from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.source import load_source
from quantserve.artifact import Artifact
from quantserve.data import TensorData, load_npz
from quantserve.errors import QuantserveError


@pytest.fixture
def fused(tiny_onnx: Path, tmp_path: Path) -> Artifact:
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    return FuseGraph()(exported, tmp_path / "fused.onnx")


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_qdq_model_with_per_channel_weights(method: str, fused: Artifact, calib_npz: Path, tmp_path: Path) -> None:
    data = load_npz(calib_npz, fused.manifest.inputs)
    int8 = calibrate_int8(fused, data, tmp_path / "int8.onnx", method=method)
    record = int8.manifest.stages[-1]
    assert (record["method"], record["cache"], record["samples"]) == (
        method,
        "miss",
        32,
    )  # 40 samples: one full batch of 32
    assert int8.manifest.precision == "int8"
    model = onnx.load(str(int8.path))
    assert record["quantize_nodes"] > 0
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight_dq = next(n for n in model.graph.node if n.output[0] == conv.input[1])
    scales = next(i for i in model.graph.initializer if i.name == weight_dq.input[1])
    assert list(scales.dims) == [8]  # one scale per output channel
    feeds = {"pixels": data.arrays["pixels"][:16]}
    with OnnxRuntimeRunner(fused.path) as ref, OnnxRuntimeRunner(int8.path) as q:
        expected, got = ref.infer(feeds)["logits"], q.infer(feeds)["logits"]
    assert np.mean(expected.argmax(1) == got.argmax(1)) >= 0.8


def test_rerun_is_a_cache_hit(fused: Artifact, calib_npz: Path, tmp_path: Path, calib_cache: Path) -> None:
    data = load_npz(calib_npz)
    first = calibrate_int8(fused, data, tmp_path / "a.onnx")
    second = calibrate_int8(fused, data, tmp_path / "b.onnx")
    assert first.manifest.stages[-1]["cache"] == "miss"
    assert second.manifest.stages[-1]["cache"] == "hit"
    assert (calib_cache / f"{second.manifest.stages[-1]['cache_key']}.onnx").is_file()
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    other = calibrate_int8(fused, data, tmp_path / "c.onnx", method="entropy")
    assert other.manifest.stages[-1]["cache"] == "miss"  # settings are part of the key


def test_empty_calibration_set_is_refused() -> None:
    empty = TensorData({"pixels": np.zeros((0, 1, 8, 8), np.float32)})
    with pytest.raises(QuantserveError, match="calibration set is empty"):
        CalibrateInt8(empty)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(QuantserveError, match="unknown calibration method 'kl'"):
        CalibrationSettings(method="kl")


def test_excluded_nodes_stay_fp32(fused: Artifact, calib_npz: Path, tmp_path: Path) -> None:
    gemm = next(n.name for n in onnx.load(str(fused.path)).graph.node if n.op_type == "Gemm")
    settings = CalibrationSettings(nodes_to_exclude=(gemm,))
    int8 = CalibrateInt8(load_npz(calib_npz), settings)(fused, tmp_path / "int8.onnx")
    model = onnx.load(str(int8.path))
    node = next(n for n in model.graph.node if n.name == gemm)
    initializers = {i.name for i in model.graph.initializer}
    assert node.input[1] in initializers  # the FP32 weight itself, no DequantizeLinear in front


def test_shared_biases_are_unshared(fused: Artifact) -> None:
    model = onnx.load(str(fused.path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.input[2] = conv.input[1] if len(conv.input) < 3 else conv.input[2]
    shared = gemm.input[2]
    copies = unshare_weights(model)
    assert copies >= 1
    readers = [n.name for n in model.graph.node if shared in n.input]
    assert len(readers) <= 1

"""A published model fixed at batch 1 with rank-0 inputs (swift-f0: audio [1, samples], fmin and fmax scalars).

`optimize --unbatched` refused it as "the model does not run on one request (…): Unable to handle object of type
<class 'numpy.float32'>": a whole request's rank-0 input reached ONNX Runtime as a numpy scalar. Without
--unbatched its refusal said "re-export it with a dynamic batch axis", which a published file cannot be, and which
its scalar inputs would not let batch anyway.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Manifest
from quantserve.cli import main

SAMPLES = 64


def scalar_model(path: Path) -> Path:
    """audio [1, 'samples'] → Unsqueeze → Conv (1 → 4 channels, kernel 3) → Clip(·, fmin, fmax) → y [1, 4, …]; fmin
    and fmax rank 0 (swift-f0's Conv stack over its audio, cut to its pitch range)."""
    weight = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 1, 3), "w")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axes"], ["channel"]),
        helper.make_node("Conv", ["channel", "w"], ["conv"]),
        helper.make_node("Clip", ["conv", "fmin", "fmax"], ["y"]),
    ]
    inputs = [
        helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "samples"]),
        helper.make_tensor_value_info("fmin", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("fmax", TensorProto.FLOAT, []),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "frames"])]
    graph = helper.make_graph(nodes, "scalars", inputs, outputs, [weight, axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def scalar_data(path: Path, rows: int, whole: bool = True, scalars_first: bool = False) -> Path:
    """`rows` requests: audio (rows, 1, SAMPLES) (one axis more than the input) or (rows, SAMPLES); fmin, fmax
    (rows,). `scalars_first`: fmin and fmax stored before audio in the file."""
    rng = np.random.default_rng(0)
    audio = rng.uniform(-2, 2, (rows, 1, SAMPLES) if whole else (rows, SAMPLES)).astype(np.float32)
    low = rng.uniform(-1.0, -0.2, rows).astype(np.float32)
    arrays = {"fmin": low, "fmax": -low} if scalars_first else {}
    np.savez(path, **{**arrays, "audio": audio, "fmin": low, "fmax": -low})
    return path


def _options(model: Path, calib: Path, out: Path, unbatched: bool = True, precision: str = "fp32") -> OptimizeOptions:
    timing = SpeedSettings(enabled=precision == "int8", allow_slower=True, seconds_per_model=0.05)
    return OptimizeOptions(model, calib, precision, "embedded", out, speed=timing, unbatched=unbatched)


@pytest.mark.parametrize(("precision", "scalars_first"), [("fp32", False), ("fp32", True), ("int8", True)])
def test_unbatched_builds_a_model_with_rank_0_inputs_from_whole_requests(
    tmp_path: Path, precision: str, scalars_first: bool
) -> None:
    """INT8 timed too: its record's batch read len() of the timing batch's first input, fmin where it came first."""
    model = scalar_model(tmp_path / "m.onnx")
    calib = scalar_data(tmp_path / "calib.npz", 100, scalars_first=scalars_first)
    optimize(_options(model, calib, tmp_path / "out", precision=precision))
    manifest = Manifest.load(tmp_path / "out")
    assert manifest.unbatched and manifest.whole_samples and manifest.precision == precision
    assert [spec.shape for spec in manifest.inputs if spec.name != "audio"] == [(), ()]
    assert (manifest.verification or {})["holds"]


def test_the_cli_builds_it_with_unbatched(tmp_path: Path) -> None:
    model, calib = scalar_model(tmp_path / "m.onnx"), scalar_data(tmp_path / "calib.npz", 40)
    argv = ["-q", "optimize", str(model), "--calib", str(calib), "--precision", "fp32", "--unbatched"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0 and Manifest.load(tmp_path / "o").unbatched

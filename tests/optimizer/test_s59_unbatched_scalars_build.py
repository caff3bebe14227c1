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

from optimizer.batch_advice import UNBATCHED_ROUTE
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Manifest
from quantserve.cli import main
from quantserve.errors import QuantserveError

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


def test_without_unbatched_the_refusal_names_the_route_and_says_the_scalars_rule_out_a_batch(tmp_path: Path) -> None:
    model = scalar_model(tmp_path / "m.onnx")
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(model, scalar_data(tmp_path / "c.npz", 40, whole=False), tmp_path / "out", unbatched=False))
    message = str(refused.value)
    assert message.startswith(f"{model}: input 'audio' has a fixed batch axis (1), and axis 1 is dynamic")
    assert "re-export it with" not in message, "a published file cannot be re-exported; its scalars forbid a batch"
    assert "inputs 'fmin' and 'fmax' have rank 0 (one value a request, which no batch axis carries)" in message
    assert "build it as it is with --unbatched" in message
    assert "'audio' (N, 1, samples), 'fmin' (N,), 'fmax' (N,)" in message
    assert not (tmp_path / "out").exists()


def test_a_fixed_batch_without_scalars_is_told_both_routes(tmp_path: Path) -> None:
    """No rank-0 input: re-exporting may make it batch, and --unbatched builds the published file as it is."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["audio"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [2, "samples"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, "samples"])],
    )
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    np.savez(tmp_path / "c.npz", audio=np.ones((40, SAMPLES), np.float32))
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(model, tmp_path / "c.npz", tmp_path / "out", unbatched=False))
    assert str(refused.value) == (
        f"{model}: input 'audio' has a fixed batch axis (2), and axis 1 is dynamic: Triton batches along axis 0; "
        f"re-export it with a dynamic batch axis (dim_param) so Triton can batch requests{UNBATCHED_ROUTE}"
    )

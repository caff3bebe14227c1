"""optimize --unbatched: models that cannot take a batch, built for one request at a time (max_batch_size 0).

Before it, every such model was refused (an `If` on one sample's score, NonMaxSuppression inside), for FP32
too, and the refusal named no way to build it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from unbatched_models import CLASSES, WIDTH, gated_data, gated_model, nms_data, nms_model

from optimizer.batch_advice import UNBATCHED_ROUTE
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Manifest, TensorSpec
from quantserve.cli import main
from quantserve.data import TensorData, fixed_request_rows
from quantserve.errors import QuantserveError

NO_TIMING = SpeedSettings(enabled=False)


def _options(model: Path, calib: Path, precision: str, out: Path, unbatched: bool = True) -> OptimizeOptions:
    return OptimizeOptions(model, calib, precision, "embedded", out, speed=NO_TIMING, unbatched=unbatched)


@pytest.mark.parametrize("batch", [1, "N"])
def test_a_model_that_cannot_take_a_batch_is_refused_naming_the_unbatched_route(
    tmp_path: Path, batch: int | str
) -> None:
    """Fixed at 1 (2 rows do not run) or dynamic (rows not independent): the refusal stays, ending with the route."""
    model = gated_model(tmp_path / "gated.onnx", batch)
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(model, gated_data(tmp_path / "calib.npz", 64), "fp32", tmp_path / "out", unbatched=False))
    message = str(refused.value)
    assert message.startswith(f"{model}: ") and message.endswith(UNBATCHED_ROUTE)
    assert "build it with --unbatched (Triton then serves it with max_batch_size 0" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_an_unbatched_build_feeds_one_request_at_a_time_and_records_it(tmp_path: Path, precision: str) -> None:
    model = gated_model(tmp_path / "gated.onnx")
    calib = gated_data(tmp_path / "calib.npz", 300)
    artifact = optimize(_options(model, calib, precision, tmp_path / "out"))
    manifest = Manifest.load(tmp_path / "out")
    assert manifest.unbatched and manifest.precision == precision == artifact.manifest.precision
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["extra"]["batching"] == "none"
    assert manifest.inputs == [TensorSpec("x", "float32", (1, WIDTH))]  # the full request shape deploy serves
    assert manifest.outputs == [TensorSpec("y", "float32", (1, CLASSES))]
    verification = manifest.verification or {}
    assert verification["holds"] and f"(last {verification['samples']} of 300 samples held out)" in verification["data"]
    assert verification.get("judged_at") is None  # one composition: a request alone


def test_int8_of_outputs_shaped_by_the_values_is_refused_in_one_line_and_fp32_builds(tmp_path: Path) -> None:
    """NMS keeps K detections by the scores: INT8's K need not be FP32's, so no row pairs with another."""
    model = nms_model(tmp_path / "nms.onnx")
    calib = nms_data(tmp_path / "calib.npz", 100)
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(model, calib, "int8", tmp_path / "int8"))
    message = str(refused.value)
    assert message.startswith(f"{model}: output 'selected' has shape [") and "for request 0 and [" in message
    assert message.endswith(
        "its number of rows depends on the input's values (as NonMaxSuppression's kept detections do: INT8's may "
        "differ from FP32's for the same request), so INT8's answers cannot be paired row by row with FP32's to "
        "measure the drift; build it with --precision fp32 --unbatched (each request's answer kept as it is, served "
        "with that axis -1)"
    )
    assert not (tmp_path / "int8").exists()
    manifest = optimize(_options(model, calib, "fp32", tmp_path / "fp32")).manifest
    assert manifest.unbatched and manifest.outputs == [TensorSpec("selected", "int64", ("batch", 3))]
    assert (manifest.verification or {})["samples"] == 20


def test_an_input_whose_axis_0_is_fixed_above_1_is_refused_under_unbatched(tmp_path: Path) -> None:
    model = gated_model(tmp_path / "gated.onnx", 2)
    np.savez(tmp_path / "calib.npz", x=np.ones((40, WIDTH), np.float32))
    with pytest.raises(QuantserveError, match=r"input 'x' has shape \[2, 32\]; --unbatched sends each row"):
        optimize(_options(model, tmp_path / "calib.npz", "fp32", tmp_path / "out"))


def test_the_cli_flag_builds_unbatched(tmp_path: Path) -> None:
    model = gated_model(tmp_path / "gated.onnx")
    calib = gated_data(tmp_path / "calib.npz", 40)
    argv = ["-q", "optimize", str(model), "--calib", str(calib), "--precision", "fp32", "--out", str(tmp_path / "o")]
    assert main([*argv, "--unbatched"]) == 0 and Manifest.load(tmp_path / "o").unbatched


def test_unbatched_data_yields_single_rows_and_keeps_the_flag_when_cut() -> None:
    data = TensorData({"x": np.arange(10, dtype=np.float32).reshape(5, 2)}, unbatched=True)
    assert [batch["x"].shape for batch in data.take(1, 4).batches(32)] == [(1, 2)] * 3
    assert data.take_rows(np.array([4, 0])).unbatched and not TensorData(data.arrays).unbatched
    assert fixed_request_rows([TensorSpec("x", "float32", (1, 2))]) == 1
    assert fixed_request_rows([TensorSpec("x", "float32", (-1, 2))]) == 0

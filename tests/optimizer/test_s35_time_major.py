"""Models whose axis 0 is a sample's frames (madmom's notes_cnn, key_cnn: input (T, 144), no batch axis).

notes_cnn (a convolution over the frames, output T − 10 rows) was refused on the 8 check rows with "a size the data
uses may be fixed in the graph": false, and no route. key_cnn (frames pooled into one answer) was sent to
--unbatched, which fed each frame as a request of 1 row: calibration and verification on requests no user sends.
Now the refusal says axis 0 is frames, and --unbatched data with one axis more (N, T, F) sends each data[i] whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

FEATURES = 6
CHANNELS = 4
KERNEL = 11  # notes_cnn's frames: output rows = input rows − 10
FRAMES = 16
NO_TIMING = SpeedSettings(enabled=False)


def _time_major(path: Path, pooled: bool) -> Path:
    """(T, F) → Conv over T; `pooled`: a mean over the frames then a dense layer, output (1, 3); else (T − 10, 4)."""
    rng = np.random.default_rng(0)
    kernel = 3 if pooled else KERNEL
    weights = rng.standard_normal((CHANNELS, FEATURES, kernel)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(rng.standard_normal((CHANNELS, 3)).astype(np.float32), "dense"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["ft"], perm=[1, 0]),
        helper.make_node("Unsqueeze", ["ft", "axis0"], ["nft"]),
        helper.make_node("Conv", ["nft", "w"], ["conv"], pads=[1, 1] if pooled else [0, 0]),
        helper.make_node("Relu", ["conv"], ["act"]),
    ]
    if pooled:
        nodes += [
            helper.make_node("ReduceMean", ["act"], ["mean"], axes=[2], keepdims=0),
            helper.make_node("MatMul", ["mean", "dense"], ["y"]),
        ]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    else:
        nodes += [
            helper.make_node("Squeeze", ["act", "axis0"], ["ct"]),
            helper.make_node("Transpose", ["ct"], ["y"], perm=[1, 0]),
        ]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["frames_out", CHANNELS])
    graph = helper.make_graph(
        nodes, "time_major", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", FEATURES])], [out], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _options(model: Path, calib: Path, precision: str, out: Path, unbatched: bool) -> OptimizeOptions:
    return OptimizeOptions(model, calib, precision, "embedded", out, speed=NO_TIMING, unbatched=unbatched)


def _spy_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shape of every --unbatched request formed (what the runners are fed)."""
    seen: list[tuple[int, ...]] = []
    real = TensorData.request

    def request(self: TensorData, row: int) -> dict[str, np.ndarray]:
        feeds = real(self, row)
        seen.append(tuple(feeds["x"].shape))
        return feeds

    monkeypatch.setattr(TensorData, "request", request)
    return seen


def test_a_convolution_over_frames_is_said_to_be_frames_not_a_size_fixed_in_the_graph(tmp_path: Path) -> None:
    model = _time_major(tmp_path / "notes.onnx", pooled=False)
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).standard_normal((40, FEATURES)).astype(np.float32))
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(model, tmp_path / "calib.npz", "fp32", tmp_path / "out", unbatched=False))
    message = str(refused.value)
    assert message.startswith(f"{model}: the model does not run on the data's 8 rows (x [8, 6]: ")
    assert "may be fixed in the graph" not in message
    assert (
        "on 64 rows it runs and output 'y' has shape [54, 4], 54 rows (64 − 10): axis 0 is not a batch of samples "
        "but one sample's frames"
    ) in message
    assert message.endswith(
        "build it with --unbatched and give data of shape (N, T, 6) for input 'x', each data[i] one request (Triton "
        "then serves it with max_batch_size 0)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_unbatched_data_with_one_axis_more_sends_each_sample_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    model = _time_major(tmp_path / "key.onnx", pooled=True)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(2).standard_normal((300, FRAMES, FEATURES)).astype(np.float32))
    seen = _spy_requests(monkeypatch)
    manifest = optimize(_options(model, calib, precision, tmp_path / "out", unbatched=True)).manifest
    assert seen and set(seen) == {(FRAMES, FEATURES)}  # never a frame alone, never a sample wrapped as (1, T, F)
    verification = manifest.verification or {}
    assert verification["holds"]
    assert f"(last {verification['samples']} of 300 samples held out)" in verification["data"]


def test_unbatched_data_of_the_inputs_rank_keeps_a_row_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _time_major(tmp_path / "key.onnx", pooled=True)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(3).standard_normal((100, FEATURES)).astype(np.float32))
    seen = _spy_requests(monkeypatch)
    manifest = optimize(_options(model, calib, "fp32", tmp_path / "out", unbatched=True)).manifest
    assert seen and set(seen) == {(1, FEATURES)}
    assert (manifest.verification or {})["samples"] == 20


def test_a_pooled_model_refused_as_batched_names_the_whole_sample_data(tmp_path: Path) -> None:
    model = _time_major(tmp_path / "key.onnx", pooled=True)
    np.savez(tmp_path / "calib.npz", x=np.ones((40, FEATURES), np.float32))
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(model, tmp_path / "calib.npz", "fp32", tmp_path / "out", unbatched=False))
    message = str(refused.value)
    assert "output 'y' has shape [1, 3] for 8 input rows" in message
    assert message.endswith(
        "data with one axis more (N, then the input's shape) each data[i] whole, as a model whose "
        "axis 0 is a sample's frames needs"
    )


def test_unbatched_arrays_of_both_forms_are_refused_in_one_line() -> None:
    from quantserve.artifact import TensorSpec
    from quantserve.data import check_against

    specs = [TensorSpec("x", "float32", ("batch", FEATURES)), TensorSpec("m", "float32", ("batch", FEATURES))]
    data = TensorData({"x": np.ones((4, FRAMES, FEATURES), np.float32), "m": np.ones((4, FEATURES), np.float32)})
    data.unbatched = True
    with pytest.raises(QuantserveError) as refused:
        check_against("d.npz", data, specs)
    assert str(refused.value) == (
        "d.npz: array 'x' has one axis more than its input (each data[i] one request) but 'm' has its input's rank "
        "(each row one request): give every array the same form"
    )
    data.unbatched = False  # a batched build: one axis more is a wrong shape, as before
    with pytest.raises(QuantserveError, match=r"input 'x' has shape \(4, 16, 6\), the model expects \['batch', 6\]"):
        check_against("d.npz", data, specs)


def test_a_whole_sample_build_is_timed_as_one_sample_a_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its timing row read "batch 16": the clip's frames, not the one sample a request holds."""
    import optimizer.speed as speed

    monkeypatch.setattr(speed, "time_pair", lambda *_: speed.Block(10.0, 8.0, 1.25, 0.05, 5))
    model = _time_major(tmp_path / "key.onnx", pooled=True)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(4).standard_normal((300, FRAMES, FEATURES)).astype(np.float32))
    options = OptimizeOptions(
        model, calib, "int8", "embedded", tmp_path / "out", speed=SpeedSettings(rounds=1), unbatched=True
    )
    timed = (optimize(options).manifest.verification or {})["speed"]
    assert timed["batch_size"] == 1 and timed["input_shapes"] == {"x": [FRAMES, FEATURES]}

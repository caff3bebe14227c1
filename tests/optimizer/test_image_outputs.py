"""A picture a model outputs — (N, 3 or 4, H, W) or (N, H, W, 3 or 4) in [0, 1] or [0, 255] — is judged by each
sample's PSNR against FP32 over that range, not as a dense map: waifu2x's 2× super-resolution shipped at INT8 as
"budget holds" (channel error 0.116, scaled by the image content's spread) while it read 30.3 dB against the true
images, FP32 35.0 and bicubic 33.0. Class maps, signed maps, heatmaps and single-channel maps stay as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import normalized_slack
from optimizer.output_kinds import infer_kind, infer_output_kinds
from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve.cli import main
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

SIDE = 32


def _photos(samples: int, seed: int = 0, side: int = SIDE) -> np.ndarray:
    """(samples, 3, side, side) smooth colour fields in [0.05, 0.9]: a few random waves per channel over a gradient,
    as a photo's crops are mostly smooth regions and edges."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:side, 0:side] / side
    field = np.zeros((samples, 3, side, side))
    for _ in range(4):
        fy, fx, phase = rng.uniform(0.5, 4, size=(3, samples, 3, 1, 1))
        field += rng.uniform(0.2, 1, size=(samples, 3, 1, 1)) * np.sin(2 * np.pi * (fy * rows + fx * cols) + phase)
    field += rng.uniform(-1, 1, size=(samples, 1, 1, 1)) * rows  # light falling off across the crop
    low, high = field.min(axis=(1, 2, 3), keepdims=True), field.max(axis=(1, 2, 3), keepdims=True)
    return (0.05 + 0.85 * (field - low) / (high - low)).astype(np.float32)


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    scores = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return scores / scores.sum(axis=axis, keepdims=True)


def test_pictures_are_images_in_either_layout_and_range() -> None:
    photos = _photos(16)
    overshoot = photos.copy()
    overshoot[:, :, 0, :4] = 1.06  # an upscaler's ringing past white, unclamped
    rgba = np.concatenate([photos, np.ones_like(photos[:, :1])], axis=1)
    reference = {
        "nchw": photos,
        "nhwc": np.ascontiguousarray(photos.transpose(0, 2, 3, 1)),
        "levels": np.round(photos * 255),
        "rgba": rgba,
        "overshoot": overshoot - 0.02,
    }
    assert set(infer_output_kinds(reference).values()) == {"image"}


def test_maps_that_are_not_pictures_keep_their_kind() -> None:
    rng = np.random.default_rng(2)
    photos = _photos(16)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    centres = rng.uniform(6, 26, size=(2, 16, 3, 1, 1))
    reference = {
        "classes": _softmax(rng.normal(size=(16, 3, SIDE, SIDE)) * 3, axis=1),  # a 3-class segmentation
        "classes_last": _softmax(rng.normal(size=(16, SIDE, SIDE, 3)) * 3, axis=3),
        "signed": rng.normal(size=(16, 3, SIDE, SIDE)),  # a flow or a residual
        "gray": photos[:, :1],  # one channel: no colour picture
        "keypoints": np.exp(-((rows - centres[0]) ** 2 + (cols - centres[1]) ** 2) / 18.0),  # 3 heatmaps, mostly 0
        "small": _photos(16, side=8),
        "wide_range": photos * 1.5,  # in [0, 255] by its values, but reaching under a quarter of it
    }
    assert infer_output_kinds(reference) == {
        "classes": "class_map",
        "classes_last": "class_map",  # NHWC classes too (session 39: read dense before, never as an image)
        "signed": "dense",
        "gray": "dense",
        "keypoints": "dense",
        "small": "dense",
        "wide_range": "dense",
    }


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_an_image_is_judged_by_psnr_per_sample(layout: str) -> None:
    photos = _photos(24, seed=3)
    photos = photos if layout == "nchw" else np.ascontiguousarray(photos.transpose(0, 2, 3, 1))
    noise = np.random.default_rng(4).normal(size=photos.shape).astype(np.float32)
    noisy = photos + noise * 10 ** (-30 / 20)  # 30 dB against FP32
    report = measure_drift({"sr": photos}, {"sr": noisy}, {}, DriftBudget())
    record = report.outputs["sr"]
    assert record["kind"] == "image" and record["psnr_range"] == [0.0, 1.0]
    assert record["psnr_mean"] == pytest.approx(30.0, abs=0.3) and record["psnr_samples"] == 24
    assert [v.metric for v in report.violations] == ["psnr_mean", "psnr_worst"]
    worst = record["psnr_worst_sample"]
    line = report.violations[1].line("image")
    assert f"(image): worst sample's PSNR to FP32 (sample {worst}, in dB over [0, 1]) 29." in line, line
    faithful = measure_drift({"sr": photos}, {"sr": photos + noise * 10 ** (-50 / 20)}, {}, DriftBudget())
    assert faithful.holds and faithful.outputs["sr"]["psnr_mean"] == pytest.approx(50.0, abs=0.3)
    loose = measure_drift({"sr": photos}, {"sr": noisy}, {}, DriftBudget(min_psnr_mean=29.0, min_psnr_worst=28.0))
    assert loose.holds  # --min-psnr-mean and --min-psnr-worst set them


def test_levels_are_read_over_255_and_an_unchanged_sample_counts_as_100_db() -> None:
    levels = np.round(_photos(8, seed=5) * 255)
    levels[0] = 128.0  # a flat grey frame: FP32 constant, INT8 exact there
    moved = levels.copy()
    moved[1:] += 2.55  # every other sample one hundredth of the range off: 40 dB
    record = measure_drift({"frame": levels}, {"frame": moved}, {}, DriftBudget()).outputs["frame"]
    assert record["psnr_range"] == [0.0, 255.0] and record["psnr_worst"] == pytest.approx(40.0)
    assert record["psnr_mean"] == pytest.approx((100.0 + 7 * 40.0) / 8)


def _colour_cast_model(path: Path, blue: float) -> Path:
    """picture (N, 3, H, W) → picture + (0, 0, blue) per channel: an INT8 build's colour cast, as waifu2x's had."""
    bias = numpy_helper.from_array(np.array([0.0, 0.0, blue], np.float32).reshape(1, 3, 1, 1), "bias")
    graph = helper.make_graph(
        [helper.make_node("Add", ["picture", "bias"], ["upscaled"])],
        "colour_cast",
        [helper.make_tensor_value_info("picture", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("upscaled", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, path)
    return path


def test_a_colour_cast_is_refused_where_a_dense_map_passed_it(tmp_path: Path) -> None:
    data = TensorData({"picture": _photos(40, seed=6)})
    reference = _colour_cast_model(tmp_path / "fp32.onnx", 0.0)
    candidate = _colour_cast_model(tmp_path / "int8.onnx", 0.015)  # blue 3.8 levels up: about 41 dB
    record = VerifyAgainstReference(reference, data, "photos.npz").measure(candidate)
    assert [v["metric"] for v in record["violations"]] == ["psnr_mean"]
    assert record["outputs"]["upscaled"]["psnr_channel_worst_channel"] == 2
    assert drift_refusal(record) == (
        "INT8 misses the drift budget: output 'upscaled' (image): mean PSNR to FP32 (in dB over [0, 1], 40 samples) "
        "41.25 < budget 45; nothing written (pass --keep-failing to ship anyway)"
    )
    as_map = VerifyAgainstReference(reference, data, "", output_kinds={"upscaled": "dense"}).measure(candidate)
    assert as_map["holds"]  # judged as a dense map (--output-kind upscaled=dense), the cast shipped


def test_an_output_named_an_image_needs_a_pixel_range() -> None:
    tanh = _photos(4) * 2 - 1
    assert infer_output_kinds({"generated": tanh}, {"generated": "image"}) == {"generated": "image"}
    assert infer_kind(tanh, None) == "dense"  # signed: only named an image
    record = measure_drift({"g": tanh}, {"g": tanh}, {"g": "image"}, DriftBudget()).outputs["g"]
    assert record["psnr_range"] == [-1.0, 1.0] and record["psnr_worst"] == 100.0
    with pytest.raises(QuantserveError) as raised:
        infer_output_kinds({"depth": _photos(4) * 10 - 5}, {"depth": "image"})
    assert str(raised.value) == (
        "--output-kind depth=image: output 'depth' has values from -4.5 to 4, filling no pixel range ([0, 1], "
        "[-1, 1] or [0, 255]); judge it as dense"
    )
    with pytest.raises(QuantserveError, match=r"^--output-kind ids=image: output 'ids' holds int64 of shape"):
        infer_output_kinds({"ids": np.zeros((4, 3), np.int64)}, {"ids": "image"})


def test_psnr_budgets_are_decibels(capsys: pytest.CaptureFixture[str]) -> None:
    assert DriftBudget(min_psnr_mean=45.0).min_psnr_mean == 45.0
    with pytest.raises(QuantserveError) as raised:
        DriftBudget(min_psnr_worst=-1.0)
    assert str(raised.value) == "--min-psnr-worst -1: expected a PSNR in dB, a number >= 0"
    assert normalized_slack(46.0, 40.0, True) == pytest.approx(0.5, abs=0.01)  # as the RMS error it allows
    assert normalized_slack(34.0, 40.0, True) == pytest.approx(-1.0, abs=0.01)
    for command in ("optimize", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--min-psnr-mean" in (out := capsys.readouterr().out) and "--min-psnr-worst" in out

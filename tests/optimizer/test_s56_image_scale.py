"""An image output's PSNR miss is said beside FP32's own sensitivity (session 56): a low-light enhancer was refused at
mean PSNR to FP32 40.66 < 45, worst 21.44 < 40, where FP32 itself, fed its inputs rounded to 8 bits, read 40.47 /
20.76 against its own answers. The refusal (and --json) now gives that scale; the budget is not relaxed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.image_scale import FP32_SCALE, rounded_to_8_bits, scale_words
from optimizer.refusal_figures import miss_words
from quantserve.cli import main

ROWS = 24
GAIN = 40.0  # a dark picture lit 40×: each input step of 8-bit rounding is 40 output steps' worth of it


def _enhancer(path: Path) -> Path:
    """(N, 3, 32, 32) → clip(x · GAIN, 0, 1): a 1×1 convolution (each channel times GAIN), then Clip."""
    weight = numpy_helper.from_array((np.eye(3) * GAIN).reshape(3, 3, 1, 1).astype(np.float32), "w")
    low, high = numpy_helper.from_array(np.float32(0), "low"), numpy_helper.from_array(np.float32(1), "high")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["lit"]),
            helper.make_node("Clip", ["lit", "low", "high"], ["enhanced"]),
        ],
        "enhancer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [weight, low, high],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _dark(seed: int) -> np.ndarray:
    """Dark pictures: values up to 1.1 / GAIN, a few lit past white."""
    return np.random.default_rng(seed).uniform(0, 1.1 / GAIN, (ROWS, 3, 32, 32)).astype(np.float32)


def _optimize(tmp_path: Path, *flags: str) -> int:
    np.savez(tmp_path / "calib.npz", image=_dark(1))
    np.savez(tmp_path / "heldout.npz", image=_dark(2))
    argv = ["optimize", str(_enhancer(tmp_path / "enhancer.onnx")), "--precision", "int8"]
    argv += ["--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "heldout.npz")]
    argv += ["--output-kind", "enhanced=image", "--min-psnr-mean", "99", "--min-psnr-worst", "99"]
    return main([*argv, "--out", str(tmp_path / "built"), *flags])


def _numpy_psnr() -> tuple[float, float]:
    """FP32's own PSNR under 8-bit inputs, computed here: clip(x · GAIN) of the rounded inputs against the given."""
    held = _dark(2)
    low, high = float(held.min()), float(held.max())
    step = (high - low) / 255
    rounded = (low + np.round((held.astype(np.float64) - low) / step) * step).astype(np.float32)
    error = np.square(np.clip(rounded * GAIN, 0, 1) - np.clip(held * GAIN, 0, 1)).reshape(ROWS, -1).mean(axis=1)
    psnr = 10 * np.log10(1.0 / error)
    return float(psnr.mean()), float(psnr.min())


def test_a_psnr_refusal_gives_fp32s_own_psnr_under_8_bit_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _optimize(tmp_path, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    figures = document["verification"][FP32_SCALE]
    assert figures["inputs_rounded"] == ["image"] and figures["levels"] == 256
    mean, worst = _numpy_psnr()
    fp32 = figures["outputs"]["enhanced"]
    assert fp32["psnr_mean"] == pytest.approx(mean, abs=0.05) and fp32["psnr_worst"] == pytest.approx(worst, abs=0.05)
    assert 30 < worst < mean < 80  # rounding moved it, far short of the 99 dB asked
    reads = f"FP32 itself, given its inputs rounded to 8 bits, reads {fp32['psnr_mean']:.2f} dB mean / "
    assert f"for scale: {reads}{fp32['psnr_worst']:.2f} dB worst against its own answers; " in document["reason"]
    assert not (tmp_path / "built").exists()  # still refused: scale, not a looser budget


def test_a_build_kept_failing_notes_the_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _optimize(tmp_path, "--keep-failing", "--allow-slower") == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "kept failing: for scale: FP32 itself" in line]
    assert len(notes) == 1, notes
    manifest = json.loads((tmp_path / "built" / "manifest.json").read_text())
    assert manifest["verification"][FP32_SCALE]["outputs"]["enhanced"]["psnr_mean"] > 0


def test_rounding_spans_each_inputs_own_range_and_leaves_integers() -> None:
    wide = np.linspace(-3, 5, 1000, dtype=np.float32).reshape(10, 100)
    narrow = np.linspace(0, 0.01, 1000, dtype=np.float32).reshape(10, 100)
    ids, mask = np.arange(40).reshape(10, 4), np.ones((10, 4), bool)
    rounded = rounded_to_8_bits({"wide": wide, "narrow": narrow, "ids": ids, "mask": mask, "flat": wide * 0})
    for name, values in (("wide", wide), ("narrow", narrow)):
        levels = np.unique(rounded[name])
        assert len(levels) == 256 and rounded[name].dtype == np.float32
        assert levels[0] == values.min() and levels[-1] == pytest.approx(values.max(), rel=1e-6)
        assert np.abs(rounded[name] - values).max() <= (values.max() - values.min()) / 255 / 2 * 1.001
    assert rounded["ids"] is ids and rounded["mask"] is mask and rounded["flat"] is not None
    assert np.array_equal(rounded["flat"], wide * 0)  # one value: nothing to round over


LOW_LIGHT = {  # session 55's refusal, with the scale session 56 measured for it
    "outputs": {"enhanced": {"kind": "image", "psnr_mean": 40.66, "psnr_worst": 21.44}},
    "violations": [
        {"output": "enhanced", "metric": "psnr_mean", "value": 40.66, "budget": 45.0},
        {"output": "enhanced", "metric": "psnr_worst", "value": 21.44, "budget": 40.0},
    ],
    FP32_SCALE: {"outputs": {"enhanced": {"psnr_mean": 40.47, "psnr_worst": 20.76}}},
}


def test_the_words_say_whether_int8_is_within_fp32s_own_sensitivity() -> None:
    said = "for scale: FP32 itself, given its inputs rounded to 8 bits, reads 40.47 dB mean / 20.76 dB worst against "
    assert scale_words(LOW_LIGHT) == (
        f"{said}its own answers; INT8's drift is within that (a budget of --min-psnr-mean 40 --min-psnr-worst 20 "
        "would ship it; check your --metric)"
    )
    assert said in miss_words(LOW_LIGHT)
    sharp = {**LOW_LIGHT, FP32_SCALE: {"outputs": {"enhanced": {"psnr_mean": 60.0, "psnr_worst": 52.0}}}}
    assert scale_words(sharp).endswith("; INT8 (40.66 / 21.44 dB) moves the output more than 8-bit input rounding does")
    assert scale_words({**LOW_LIGHT, FP32_SCALE: {}}) == ""  # not read: nothing said
    unread = {"outputs": {"enhanced": {"psnr_mean": float("nan"), "psnr_worst": 20.0}}}
    assert scale_words({**LOW_LIGHT, FP32_SCALE: unread}) == ""

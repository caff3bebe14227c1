"""A picture output stored as bytes, (N, H, W, 3) uint8 (a Cast to uint8 last), is judged as an image, by PSNR, not as
a label per pixel (session 50).

Read as a mask, a ±1 level change on two pixels in three (PSNR 49.9 dB) was refused at "share of values unchanged
0.3368" and "worst class IoU 0.03687", over 256 "classes" that were pixel levels.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.typed_kinds import check_typed_kind


def _pictures() -> np.ndarray:
    y, x = np.mgrid[0:128, 0:128]
    planes = [np.stack([(x * 2 + i * 10) % 256, (y * 2) % 256, (x + y + i * 30) % 256], axis=-1) for i in range(4)]
    return np.stack(planes).astype(np.uint8)


def _moved(pictures: np.ndarray, levels: int) -> np.ndarray:
    noise = np.random.default_rng(0).integers(-levels, levels + 1, pictures.shape)
    return np.clip(pictures.astype(int) + noise, 0, 255).astype(np.uint8)


def test_a_uint8_picture_is_an_image_judged_by_psnr() -> None:
    pictures = _pictures()
    kinds = infer_output_kinds({"out": pictures})
    assert kinds == {"out": "image"}
    close = measure_drift({"out": pictures}, {"out": _moved(pictures, 1)}, kinds, DriftBudget())
    assert close.holds and close.outputs["out"]["psnr_mean"] > 49.0, close.violations
    far = measure_drift({"out": pictures}, {"out": _moved(pictures, 12)}, kinds, DriftBudget())
    assert [v.metric for v in far.violations] == ["psnr_mean", "psnr_worst"]
    assert far.violations[0].line("image").startswith("output 'out' (image): mean PSNR to FP32 (in dB over [0, 255]")


def test_label_maps_stay_masks_and_a_uint8_image_may_be_named() -> None:
    labels = np.random.default_rng(1).integers(0, 4, (4, 64, 64)).astype(np.uint8)
    assert infer_output_kinds({"seg": labels}) == {"seg": "mask"}
    blocks = np.zeros((4, 64, 64, 3), np.uint8)
    blocks[:, 20:30, 20:30, :] = 2  # three label planes, mostly background: no picture
    assert infer_output_kinds({"seg": blocks}) == {"seg": "mask"}
    check_typed_kind("out", "image", _pictures())  # --output-kind out=image: accepted, no refusal


def test_an_integer_quantity_read_as_a_mask_names_the_override() -> None:
    """A uint16 depth in millimetres, ±2 mm: refused as a mask, the line says how to read it as a quantity; a label
    map of a few classes gets no such word."""
    y, x = np.mgrid[0:64, 0:64]
    depth = np.stack([1000 + x * 20 + y * 7 + i * 50 for i in range(8)]).astype(np.uint16)
    moved = (depth.astype(int) + np.random.default_rng(0).integers(-2, 3, depth.shape)).astype(np.uint16)
    kinds = infer_output_kinds({"depth": depth})
    (violation,) = measure_drift({"depth": depth}, {"depth": moved}, kinds, DriftBudget()).violations
    assert "distinct values, more than a label map has classes" in violation.hint
    assert violation.hint.endswith("pass --output-kind depth=dense")
    assert measure_drift({"depth": depth}, {"depth": moved}, {"depth": "dense"}, DriftBudget()).holds
    labels = np.random.default_rng(1).integers(0, 4, (4, 64, 64)).astype(np.uint8)
    flipped = labels.copy()
    flipped[:, :8] = (flipped[:, :8] + 1) % 4
    (refused,) = measure_drift({"seg": labels}, {"seg": flipped}, {"seg": "mask"}, DriftBudget()).violations[:1]
    assert "distinct values" not in refused.hint

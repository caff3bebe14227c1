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

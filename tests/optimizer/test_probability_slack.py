"""A sigmoid's answer one float32 ulp over 1 is still a probability.

ONNX Runtime's Sigmoid answers 1.0000001 for large logits. MediaPipe's selfie map held one such value: the range
check read the whole map as logits, cut it at logit 0 where every pixel is on for FP32 and INT8 alike, and judged a
broken INT8 mask (by hand: IoU mean 0.86, worst 0) at mask IoU 1.0 — a wrong ship with --output-kind …=soft_mask."""

from __future__ import annotations

import numpy as np

from optimizer.soft_masks import is_soft_mask, mask_threshold, soft_mask_metrics
from quantserve import metrics

ULP_OVER_ONE = np.nextafter(np.float32(1.0), np.float32(2.0))


def _person_masks(rng: np.random.Generator, n: int = 8) -> np.ndarray:
    """Sigmoid maps of a solid foreground (a disc per sample), committed near 0 or 1, one value 1 ulp over 1."""
    yy, xx = np.mgrid[:32, :32]
    maps = []
    for _ in range(n):
        cy, cx, r = rng.integers(8, 24), rng.integers(8, 24), rng.integers(5, 9)
        logits = np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, 12.0, -12.0) + rng.normal(0, 0.5, (32, 32))
        maps.append(1.0 / (1.0 + np.exp(-logits)))
    out = np.stack(maps)[..., None].astype(np.float32)
    out[0, 0, 0, 0] = ULP_OVER_ONE
    return out


def test_a_map_one_ulp_over_one_is_cut_as_scores_and_judged_by_its_masks() -> None:
    rng = np.random.default_rng(4)
    reference = _person_masks(rng)
    assert is_soft_mask(reference)  # read as a mask, not left a dense map
    cut, logits = mask_threshold(reference, 0.5)
    assert (cut, logits) == (0.5, False)
    broken = rng.uniform(0.0, 1.0, reference.shape).astype(np.float32)  # an INT8 map that lost the person
    record = soft_mask_metrics(reference, broken, 0.5)
    assert record["mask_iou_mean"] < 0.5, record  # it read 1.0: both cut at 0, every pixel on


def test_label_sets_of_scores_one_ulp_over_one_are_cut_at_the_threshold() -> None:
    reference = np.array([[ULP_OVER_ONE, 0.2, 0.7], [0.1, 0.9, 0.3]], np.float32)
    candidate = np.array([[1.0, 0.4, 0.3], [0.1, 0.9, 0.3]], np.float32)  # class 2 of row 0 fell under 0.5
    sets, _ = metrics.label_set_agreement(reference, candidate, 0.5)
    assert sets == 0.5  # cut at logit 0, all of row 0 was on in both and it read 1.0

"""`pixel_boxes` on a recogniser's (N, T, C) output with C in the tens of thousands (PP-OCRv5 rec: 18385 classes)
reads each channel's span without a float64 copy of the whole output: +1.5 GB a call on ocr5-rec's held-out output
(136, 40, 18385). optimize's own peak on it did not move (3.46 GB; its climb is elsewhere, session 49)."""

import tracemalloc

import numpy as np

from optimizer.detection_heads import pixel_boxes


def _old_spans(values: np.ndarray, axis: int) -> np.ndarray:
    return np.ptp(np.moveaxis(values.astype(np.float64), axis, -1).reshape(-1, values.shape[axis]), axis=0)


def test_pixel_boxes_holds_no_float64_copy_of_a_wide_output() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((8, 40, 18385), dtype=np.float32)
    tracemalloc.start()
    pixel_boxes(values)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < values.nbytes / 4, (peak, values.nbytes)


def test_pixel_boxes_spans_equal_the_float64_ptp() -> None:
    rng = np.random.default_rng(1)
    plain = rng.standard_normal((4, 6, 30), dtype=np.float32)
    boxes = plain.copy()
    boxes[:, :4, :] *= 500.0  # channels on axis 1, the smaller
    assert pixel_boxes(boxes) and not pixel_boxes(plain)
    for values in (plain, boxes):
        for axis in (1, 2):
            others = tuple(a for a in range(values.ndim) if a != axis)
            new = values.max(axis=others).astype(np.float64) - values.min(axis=others).astype(np.float64)
            assert np.array_equal(new, _old_spans(values, axis))

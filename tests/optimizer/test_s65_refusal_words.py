"""Two refusal words that read as figures they were not (probe 65C, an ESRGAN upscaler from npm):
- the search's "candidates tried (metric 'srmetric:psnr_truth' relative drop, budget 0.01): static_qdq 31.5, …" gave
  each candidate's INT8 score (31.5 dB) under the name and budget of the relative drop (0.0151);
- "for scale: FP32 itself, given its inputs rounded to 8 bits, reads 100.00 dB …" on inputs that were PNG pixels
  already (0-255 whole numbers): rounding them moved nothing, and PSNR's cap read as a measured sensitivity."""

from __future__ import annotations

import numpy as np

from optimizer.drift_checks import DriftReport
from optimizer.image_scale import FP32_SCALE, rounded_to_8_bits, scale_words
from optimizer.refusal_figures import failing_check_figures, figure_rows
from optimizer.user_metric import metric_violation


def _scored(int8: float, fp32: float = 31.99) -> DriftReport:
    drop = (fp32 - int8) / fp32
    violation = metric_violation("srmetric:psnr_truth", drop, 0.01)
    user = {"fp32": fp32, "int8": int8, "relative_drop": drop, "max_relative_drop": 0.01}
    return DriftReport(outputs={}, violations=[violation], user_metric=user)


def test_the_candidates_line_gives_each_ones_relative_drop_not_its_score() -> None:
    reports = [("static_qdq", 2.9, _scored(31.5), None), ("static_qdq_compute", 2.5, _scored(31.47), None)]
    violation = reports[0][2].violations[0].to_dict()
    said, record = failing_check_figures(violation, figure_rows(violation, reports), {}, (300, 300))
    assert "relative drop, budget 0.01" in said
    assert "static_qdq 0.01532" in said and "static_qdq_compute 0.01626" in said, said
    assert " 31.5" not in said
    assert [row["value"] for row in record["figures"]] == [
        (31.99 - 31.5) / 31.99,
        (31.99 - 31.47) / 31.99,
    ]


def test_pixels_already_on_8_bit_levels_are_not_rounded_and_no_scale_is_claimed() -> None:
    pixels = np.random.default_rng(0).integers(3, 251, (4, 8, 8, 3)).astype(np.float32)  # PNG pixels as floats
    unit = np.random.default_rng(1).uniform(0, 1, (4, 3, 8, 8)).astype(np.float32)  # a real range to round
    rounded = rounded_to_8_bits({"lr": pixels, "x": unit})
    assert rounded["lr"] is pixels
    assert rounded["x"] is not unit and not np.array_equal(rounded["x"], unit)
    nothing = {FP32_SCALE: {"levels": 256, "inputs_rounded": [], "outputs": {}}, "outputs": {"sr": {"kind": "image"}}}
    words = scale_words(nothing)
    assert "100.00" not in words and "not read: its inputs are whole 8-bit levels already" in words

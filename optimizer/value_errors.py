"""A value output's difference from FP32 in its own units: the p95 of |INT8 − FP32| beside the mean and max the drift
record already carries, and the words every table shows them in (optimize's verification, evaluate's terminal and
report). Information, not budgeted: the budget judges a value output by its normalized channel figures, which say
nothing in years or metres (face-api's age head read "channel_error_worst 0.1096" for 1.15 years on average,
3.08 at p95 and 7.14 at worst, session 63).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

# the kinds whose outputs are values, not scores: a regression and an angle are measured as dense (`drift_metrics`)
VALUE_KINDS = ("dense", "regression", "angle")
# the values a p95 is read over at most (32 MB of float64): a larger output is sampled evenly
P95_VALUES = 1 << 22
VALUE_DIFFERENCE_LABEL = "|Δ| vs FP32, its own units"  # the row's name in optimize's verification table


def value_difference(kind: str, reference: np.ndarray, candidate: np.ndarray, broken: bool) -> dict[str, float]:
    """{"p95_abs_diff": …} of a value output (`VALUE_KINDS`), {} of any other; infinite where the candidate is NaN
    or infinite where FP32 is finite (`broken`), as its mean and max read (`drift_metrics.abs_difference_told`)."""
    if kind not in VALUE_KINDS or reference.dtype.kind not in "biuf" or candidate.dtype.kind not in "biuf":
        return {}
    if broken:
        return {"p95_abs_diff": math.inf}
    return {"p95_abs_diff": abs_difference_p95(reference, candidate)}


def abs_difference_p95(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The 95th percentile of |candidate − reference| (0 of none): over every value up to P95_VALUES of them, else over
    an even sample of that many (every k-th value of the flat output), the mean and max beside it staying exact over
    all. A float32 copy of the whole difference took 0.46 GB more on PP-OCRv5's 136 × 40 × 18385 logits, and optimize,
    which measures every candidate's drift, peaked at 4.3 GB where it had peaked at 3.45 (session 63)."""
    if not reference.size:
        return 0.0
    if reference.ndim == 0:
        return float(abs(float(candidate) - float(reference)))
    step = max(1, -(-reference.size // P95_VALUES))  # ceil: at most P95_VALUES values
    ref, got = reference.reshape(-1)[::step], candidate.reshape(-1)[::step]
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    return float(np.percentile(diff, 95, overwrite_input=True))


def value_difference_words(record: Mapping[str, Any]) -> str | None:
    """ "mean 1.155, p95 3.08, max 7.143" (", radians" after an angle's) of a value output's record; None of any
    other kind or a record without its mean and max. A record saved before the p95 was recorded reads without it."""
    if record.get("kind") not in VALUE_KINDS or record.get("max_abs_diff") is None:
        return None
    figures = [("mean", record.get("mean_abs_diff")), ("p95", record.get("p95_abs_diff"))]
    figures.append(("max", record["max_abs_diff"]))
    words = ", ".join(f"{name} {float(value):.4g}" for name, value in figures if value is not None)
    return f"{words}, radians" if record.get("kind") == "angle" else words

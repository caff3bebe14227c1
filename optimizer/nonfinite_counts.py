"""Values an output holds NaN or infinite, counted a slice at a time: what `optimizer.drift` reports and judges
beside the figures (a cosine, correlation or channel error over them is NaN, which no budget judges)."""

from __future__ import annotations

import numpy as np


def nonfinite_where_finite(reference: np.ndarray, candidate: np.ndarray) -> int:
    """How many values the candidate has NaN or infinite where FP32 is finite (an INT8 variance quantized to
    zero under a division): a cosine, correlation or channel error over them is NaN, which no budget judges."""
    if not (np.issubdtype(candidate.dtype, np.floating) or np.issubdtype(candidate.dtype, np.complexfloating)):
        return 0
    flat_ref, flat_new = reference.reshape(-1), candidate.reshape(-1)
    step = 1 << 24  # values at a time: the two boolean masks of a PP-OCRv5 output whole would take 200 MB
    return sum(
        int(np.count_nonzero(~np.isfinite(flat_new[i : i + step]) & np.isfinite(flat_ref[i : i + step])))
        for i in range(0, flat_ref.size, step)
    )


def nonfinite_count(values: np.ndarray) -> int:
    """How many of a float output's values are NaN or infinite, counted a slice at a time (as above)."""
    flat, step = values.reshape(-1), 1 << 24
    return sum(int(np.count_nonzero(~np.isfinite(flat[i : i + step]))) for i in range(0, flat.size, step))

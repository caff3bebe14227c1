"""Big outputs compared a block at a time: slices of rows or columns whose float64 copy fits in BLOCK_BYTES, so the
metrics' working set stays bounded whatever the output's size.
"""

from __future__ import annotations

import numpy as np

BLOCK_BYTES = 64 << 20  # float64 working set per block: big outputs are compared a block at a time


def row_blocks(x: np.ndarray) -> list[slice]:
    """Slices of axis 0 whose float64 copy fits in BLOCK_BYTES. A PP-OCRv5 recogniser's 128 × 40 × 18385 logits
    compared whole took 3.8 GB of float64 temporaries (optimize peaked at 5.6 GB); by blocks, 0.4 GB."""
    per_row = max(int(np.prod(x.shape[1:], dtype=np.int64)) * 8, 1)
    step = max(1, BLOCK_BYTES // per_row)
    return [slice(start, start + step) for start in range(0, len(x), step)] or [slice(0, 0)]


def column_blocks(matrix: np.ndarray) -> list[slice]:
    """Slices of a (observations, channels) matrix's columns whose float64 copy fits in BLOCK_BYTES."""
    step = max(1, BLOCK_BYTES // max(len(matrix) * 8, 1))
    return [slice(start, start + step) for start in range(0, matrix.shape[1], step)]

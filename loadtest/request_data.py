"""How a data file's samples become requests (kept free of Locust so it imports anywhere)."""

from __future__ import annotations

import numpy as np

ATTENTION_MASK = "attention_mask"


def trim_padding(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cut token inputs to the request's own length: drop trailing columns where `attention_mask` is 0.

    Data files of token ids are padded to one width; real clients send each request at its own
    length, and that mixed-length traffic is what Triton's ragged batching must join.
    """
    mask = batch.get(ATTENTION_MASK)
    if mask is None or mask.ndim != 2:
        return batch
    used = np.flatnonzero(mask.any(axis=0))
    length = int(used[-1]) + 1 if used.size else 1
    width = mask.shape[1]
    return {k: v[:, :length] if v.ndim >= 2 and v.shape[1] == width else v for k, v in batch.items()}

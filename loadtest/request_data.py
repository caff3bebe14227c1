"""How a data file's samples become requests (kept free of Locust so it imports anywhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quantserve.data import TensorData
from quantserve.errors import QuantserveError

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


GRPC_MAX_MESSAGE = 2**31 - 1  # gRPC's hard limit on one message, whatever the channel options say
MESSAGE_OVERHEAD = 1 << 20  # room for the request's own fields beside the tensors


def check_request_size(
    source: Path | str, data: TensorData, batch_size: int, max_batch: int, flag: str = "--batch-size"
) -> None:
    """Refuse requests over gRPC's 2 GiB message limit before sending any: 176 images of 3×1024² (2.2 GB) failed
    after 23 s at 10.9 GB of memory with gRPC's own message and no fix named."""
    if not len(data):
        return
    row_bytes = sum(int(np.asarray(array[:1]).nbytes) for array in data.arrays.values())
    rows = min(batch_size, max_batch) if max_batch > 0 else batch_size
    limit = GRPC_MAX_MESSAGE - MESSAGE_OVERHEAD
    if rows * row_bytes <= limit:
        return
    fit = limit // row_bytes
    advice = f"pass {flag} {fit} or less" if fit else "no request of even one row fits"
    raise QuantserveError(
        f"{source}: a request of {rows} rows is {rows * row_bytes / 1e9:.2f} GB, over gRPC's 2 GiB message "
        f"limit; {advice}"
    )

"""The words of a data file's refusal where its arrays disagree on the samples of axis 0 (`quantserve.data`): where
each array's count was read, the other axis they agree on, and the way out for rank-0 arrays."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class _Arrays(Protocol):
    arrays: dict[str, np.ndarray]


def batch_axes_words(arrays: dict[str, np.ndarray]) -> str:
    """Each array's count of samples and where it was read, and the other axis holding the most common count: silero-
    vad's state (2, 1870, 128) was read as 2 samples, its 1870 rows lying on axis 1."""
    counts = [a.shape[0] for a in arrays.values() if a.ndim]
    common = max(set(counts), key=lambda count: (counts.count(count), count)) if counts else 0
    said = []
    for name, array in arrays.items():
        if not array.ndim:
            said.append(f"'{name}' none (rank 0: one value, no axis 0)")
            continue
        elsewhere = [axis for axis in range(1, array.ndim) if array.shape[0] != common == array.shape[axis]]
        moved = f"; its axis {elsewhere[0]} holds {common}" if elsewhere else ""
        said.append(f"'{name}' {array.shape[0]} (axis 0 of shape {tuple(array.shape)}{moved})")
    return ", ".join(said)


def batch_elsewhere_words(arrays: dict[str, np.ndarray]) -> str:
    """The axis other than 0 on which every array of rank 2 or more agrees, said as a likely batch with the two routes
    that serve it: TabPFN's x (208, 4, 100) and y (200, 4), (seq, batch, …), were refused as "208 vs 200" alone."""
    shaped = [array.shape for array in arrays.values() if array.ndim >= 2]
    shared = [axis for axis in range(1, min(map(len, shaped), default=0)) if len({s[axis] for s in shaped}) == 1]
    if len(shaped) < 2 or not shared:
        return ""
    axis = shared[0]
    return (
        f"; they agree on axis {axis} ({shaped[0][axis]} each), which may be the batch: quantserve reads the batch as "
        f"axis 0 of every input and output, so either wrap the model to take and return the batch on axis 0 (moving "
        f"it to axis {axis} and back inside) and save each array as np.moveaxis(a, {axis}, 0), or build with "
        "--unbatched and save whole requests, one axis more than the model's inputs (each data[i] one request: a[None] "
        "for the one here)"
    )


def rank_0_words(data: _Arrays) -> str:
    """The way out for rank-0 arrays (a sample rate): one value for the whole model, which belongs in the model."""
    scalars = [name for name, array in data.arrays.items() if not array.ndim]
    if not scalars:
        return ""
    names = ", ".join(f"'{name}'" for name in scalars)
    return (
        f"; {names} (rank 0) {'is a' if len(scalars) == 1 else 'are'} per-model constant"
        f"{'' if len(scalars) == 1 else 's'}: leave {'it' if len(scalars) == 1 else 'them'} out of the data and give "
        "the model an initializer of the same name holding the value (the input's default), which optimize folds "
        "into the model as that constant"
    )

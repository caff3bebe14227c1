"""The axes an output is read and measured along: singleton axes behind one wide one dropped, so a Keras 1×1-conv
head's (N, 1, 1, C) is judged as the (N, C) rows it is. Kind inference (`optimizer.output_kinds`) and every drift
measure read an output this way, so it lives below both.
"""

from __future__ import annotations

import numpy as np


def real_axes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes an output is read and measured along: all of them, unless only one non-batch axis has more than one
    entry — (N, 1, 1, 96), (N, 96, 1, 1), (N, 1, 96) are read as (N, 96): the batch axis and that one (axis 1
    where every one is a singleton). A Keras 1×1-conv head's (N, 1, 1, 96) embedding was read as a dense map of one
    channel, its 96 features pooled into one correlation of 0.989, and shipped; as (N, 96) its worst feature reads
    0.869. Two or more such axes stay as they are: (N, 1, H, W) is a single-channel map, judged whole, and its
    shape cannot tell it from features (N, 1, T, C)."""
    wide = [axis for axis in range(1, len(shape)) if shape[axis] != 1]
    if len(shape) <= 2 or len(wide) > 1:
        return tuple(range(len(shape)))
    return (0, wide[0] if wide else 1)


def on_real_axes(values: np.ndarray) -> np.ndarray:
    """`values` reshaped to its real axes (`real_axes`): the same values in the same order, singleton axes dropped."""
    axes = real_axes(values.shape)
    return values if len(axes) == values.ndim else values.reshape([values.shape[axis] for axis in axes])

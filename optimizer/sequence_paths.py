"""A sequence output's best paths judged as decoded sequences: a CTC recogniser's (N, T) class ids per frame read as
its text, and any (N, T) path over its real frames alone (a length input's, a mask's, the token ids'), padding
dropped rather than read as the blank. Split from `optimizer.drift_metrics`, which picks these by the output's kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantserve import metrics


def ctc_path(values: np.ndarray) -> bool:
    """(N, T) integers: a CTC recogniser's best path, one class id per frame (an ArgMax in its graph)."""
    return values.ndim == 2 and np.issubdtype(values.dtype, np.integer)


def ctc_path_metrics(reference: np.ndarray, candidate: np.ndarray, frames: np.ndarray | None = None) -> dict[str, Any]:
    """A best path's frames and decoded text (repeats merged, the blank, 0, dropped), as a CTC head's logits are
    judged (`sequence`): frames flip between a character and the blank at its edges without changing the text, and
    judged as ids, every frame counted, such a recogniser was refused on frames nobody reads. Over its real `frames`
    alone, where known (`path_metrics`)."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    record = path_metrics(reference, candidate, frames, located=False)  # a recogniser's best path: its text alone
    changed = (reference != candidate) if frames is None else (reference != candidate) & frames
    return {
        "kind": "sequence",
        "best_path": True,
        "shape": list(reference.shape),
        **record,
        "values_changed": int(np.count_nonzero(changed)),
    }


def real_frames(kind: str, reference: np.ndarray, positions: np.ndarray | None) -> np.ndarray | None:
    """The (N, T) real frames a `sequence` output is judged over (a length input's, a mask's, the token ids'
    positions), where they cover its first two axes and mark some; None otherwise: every frame is judged."""
    if kind != "sequence" or positions is None or reference.ndim < 2 or positions.shape != reference.shape[:2]:
        return None
    return positions if positions.any() else None


def path_metrics(
    reference: np.ndarray, candidate: np.ndarray, frames: np.ndarray | None, located: bool = True
) -> dict[str, Any]:
    """Two (N, T) best paths' per-position agreement and decoded sequences (in order; in place, where `located`),
    over each row's real `frames` alone where given (`tokens_judged` counts them): GSSC's sleep stages read
    decoded-sequence agreement 0.2 where INT8 differed only on padded epochs, 1.0 over the real ones (session 61).
    Padding is dropped, not read as the blank: a mask's frames are decoded in order across its holes."""
    same = reference == candidate
    judged = same if frames is None else same[frames]
    if frames is not None:
        reference, candidate = (real_first(path, frames) for path in (reference, candidate))
    record = {
        "position_agreement": float(np.mean(judged)) if judged.size else 1.0,
        "sequence_agreement": metrics.path_sequence_agreement(reference, candidate),
    }
    if located:
        record["located_agreement"] = metrics.located_path_agreement(reference, candidate)
    return record if frames is None else {**record, "tokens_judged": int(frames.sum())}


def real_first(path: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """A (N, T) best path with each row's real frames first, in order, and the blank (0) after them: a trailing blank
    adds no symbol and ends no run, so it decodes as the real frames alone."""
    order = np.argsort(~frames, axis=1, kind="stable")
    return np.where(np.take_along_axis(frames, order, axis=1), np.take_along_axis(path, order, axis=1), 0)

"""Ranked ids: the indices of a TopK in the graph, (N, K) class ids ranked by a (N, K) float output beside them (its
values, each row sorted), judged by the first id's agreement as a classifier's logits are, not by every rank's.

Judged as ids (every row's K ids unchanged, in order), a classifier with TopK(5) in its graph was refused at id
agreement 0.65 while its top-1 class held on every row and the same network's logits, given raw, are judged by top-1
agreement (session 50, 1000 classes): the order of near-tied classes at ranks 2–5 is what moved. The share of rows
with all K ids unchanged, and with the same K ids in any order, are recorded as information.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def ranked_outputs(reference: Mapping[str, np.ndarray]) -> set[str]:
    """Names of (N, K ≥ 2) integer outputs whose rows hold K distinct ids, beside a float output of the same shape
    whose every row is sorted (descending, or ascending: TopK's largest=0) — TopK's values and indices."""
    arrays = {name: np.asarray(values) for name, values in reference.items()}
    sorted_shapes = {values.shape for values in arrays.values() if _sorted_rows(values)}
    return {
        name
        for name, ids in arrays.items()
        if ids.ndim == 2
        and ids.shape[1] >= 2
        and np.issubdtype(ids.dtype, np.integer)
        and ids.shape in sorted_shapes
        and _distinct_rows(ids)
    }


def _sorted_rows(values: np.ndarray) -> bool:
    if values.ndim != 2 or values.shape[1] < 2 or not len(values) or not np.issubdtype(values.dtype, np.floating):
        return False
    steps = np.diff(values, axis=1)
    ranks = bool(np.any(steps != 0))  # rows of one value (an all-zero output) rank nothing
    return ranks and bool(np.all(steps <= 0) or np.all(steps >= 0))


def _distinct_rows(ids: np.ndarray) -> bool:
    if not len(ids):
        return False
    ordered = np.sort(ids, axis=1)
    return bool(np.all(ordered[:, 1:] != ordered[:, :-1]))


def ranked_metrics(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """The first id's agreement (judged, as top-1 is), and the shares of rows with every id unchanged in order and
    with the same ids in any order (information)."""
    rows = max(len(reference), 1)
    same_sets = np.all(np.sort(reference, axis=1) == np.sort(candidate, axis=1), axis=1)
    return {
        "kind": "ids",
        "shape": list(reference.shape),
        "first_id_agreement": float(np.sum(reference[:, 0] == candidate[:, 0])) / rows,
        "ranks_unchanged": float(np.sum(np.all(reference == candidate, axis=1))) / rows,
        "id_set_unchanged": float(np.sum(same_sets)) / rows,
        "values_changed": int(np.sum(reference != candidate)),
        "ranked": True,
    }

"""Outputs compared as vectors, one per sample: cosine similarity (the one definition build-time verification and
served evaluation share), and for embeddings whether each text's top-k neighbours in the candidate's space are the
ones it had in the reference's, and how much a changed nearest neighbour costs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError
from quantserve.metrics.blocks import row_blocks


@dataclass(frozen=True)
class EmbeddingDrift:
    """Cosine similarity of candidate vs reference (mean, worst) and top-k retrieval agreement."""

    samples: int
    mean_cosine: float
    worst_cosine: float
    k: int
    topk_unchanged: float  # fraction of queries whose top-k neighbour set is unchanged
    topk_overlap: float  # mean |top-k(ref) ∩ top-k(candidate)| / k

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_pair(reference: np.ndarray, candidate: np.ndarray) -> None:
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise QuantserveError(
            f"embeddings must be two (samples, dim) arrays of one shape; got {reference.shape} and {candidate.shape}"
        )
    if reference.shape[0] == 0:
        raise QuantserveError("embeddings hold zero samples")


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0.0, 1.0, norms)


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity of the flattened outputs.

    Both vectors zero: 1.0 (the outputs agree exactly). Exactly one zero: 0.0 (a collapsed output
    must not read as faithful). The one definition used at build time and in served evaluation.
    """
    a, b = np.asarray(reference).reshape(len(reference), -1), np.asarray(candidate).reshape(len(candidate), -1)
    if a.shape != b.shape:
        raise QuantserveError(f"cannot compare outputs of shapes {np.shape(reference)} and {np.shape(candidate)}")
    norm_a, norm_b, dots = (np.empty(len(a)) for _ in range(3))
    for rows in row_blocks(a):
        a64, b64 = a[rows].astype(np.float64), b[rows].astype(np.float64)
        norm_a[rows], norm_b[rows], dots[rows] = (
            np.linalg.norm(a64, axis=1),
            np.linalg.norm(b64, axis=1),
            (a64 * b64).sum(1),
        )
    both_zero = (norm_a == 0) & (norm_b == 0)
    safe = np.where(norm_a * norm_b > 0, norm_a * norm_b, 1.0)
    return np.where(both_zero, 1.0, np.where(norm_a * norm_b > 0, dots / safe, 0.0))


def top_k_neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k most cosine-similar other rows, most similar first."""
    unit = normalize_rows(embeddings)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)  # a text is not its own neighbour
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def retrieval_agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> tuple[float, float]:
    """(fraction of queries with an unchanged top-k set, mean top-k overlap) over the text set."""
    _check_pair(reference, candidate)
    if not 1 <= k < reference.shape[0]:
        raise QuantserveError(f"retrieval k={k} must be between 1 and {reference.shape[0] - 1} (samples - 1)")
    ref, new = top_k_neighbours(reference, k), top_k_neighbours(candidate, k)
    overlaps = np.array([len(set(a) & set(b)) for a, b in zip(ref.tolist(), new.tolist(), strict=True)])
    return float(np.mean(overlaps == k)), float(np.mean(overlaps) / k)


REGRET_MAX_ROWS = 2000  # rows the nearest-neighbour regret is taken over (an N × N similarity matrix each)


def nearest_neighbour_regret(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(share of rows whose nearest other row changed, mean regret): a row's regret is how much less similar, by
    the reference's similarities, the candidate's nearest row is than the reference's nearest, over the gap between
    the reference's nearest and its median row. A swap among near-duplicates costs ~0 (a tight cluster's rows are
    all nearest); a pick of a typical row costs 1. Over the first REGRET_MAX_ROWS rows."""
    _check_pair(reference, candidate)
    rows = min(len(reference), REGRET_MAX_ROWS)
    if rows < 3:
        return 0.0, 0.0
    if not (np.isfinite(reference[:rows]).all() and np.isfinite(candidate[:rows]).all()):
        return math.nan, math.nan  # non-finite values are judged on their own (drift's nonfinite_values)
    unit = [_unit_rows(np.asarray(x[:rows], dtype=np.float64).reshape(rows, -1)) for x in (reference, candidate)]
    fp32, other = (u @ u.T for u in unit)
    np.fill_diagonal(fp32, np.nan)
    np.fill_diagonal(other, -np.inf)
    nearest, picked = np.nanargmax(fp32, axis=1), other.argmax(axis=1)
    index = np.arange(rows)
    best, got = fp32[index, nearest], fp32[index, picked]
    typical = np.nanmedian(fp32, axis=1)
    regret = (best - got) / np.maximum(best - typical, 1e-12)
    return float(np.mean(nearest != picked)), float(np.mean(regret))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embedding_drift(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> EmbeddingDrift:
    """Everything the evaluator reports for an embedding output."""
    _check_pair(reference, candidate)
    cosines = cosine_similarity(reference, candidate)
    unchanged, overlap = retrieval_agreement(reference, candidate, k)
    return EmbeddingDrift(
        samples=int(reference.shape[0]),
        mean_cosine=float(cosines.mean()),
        worst_cosine=float(cosines.min()),
        k=k,
        topk_unchanged=unchanged,
        topk_overlap=overlap,
    )

"""Accuracy drift for embedding models: cosine similarity and nearest-neighbour (retrieval) agreement.

Pure numpy over two `(samples, dim)` arrays of the same inputs, one from the FP32 reference and
one from the candidate (INT8, a served endpoint). Retrieval agreement asks whether each text's
top-k neighbours in the candidate's embedding space are the ones it had in the reference's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError


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


def cosine_similarities(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity between matching rows."""
    _check_pair(reference, candidate)
    return np.sum(normalize_rows(reference) * normalize_rows(candidate), axis=1)


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


def embedding_drift(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> EmbeddingDrift:
    """Everything the evaluator reports for an embedding output."""
    cosines = cosine_similarities(reference, candidate)
    unchanged, overlap = retrieval_agreement(reference, candidate, k)
    return EmbeddingDrift(
        samples=int(reference.shape[0]),
        mean_cosine=float(cosines.mean()),
        worst_cosine=float(cosines.min()),
        k=k,
        topk_unchanged=unchanged,
        topk_overlap=overlap,
    )

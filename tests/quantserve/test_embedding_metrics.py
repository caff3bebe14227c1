"""Embedding drift math: cosine similarity and top-k retrieval agreement, on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from quantserve.errors import QuantserveError
from quantserve.metrics import cosine_similarity, embedding_drift, retrieval_agreement, top_k_neighbours


def test_identical_embeddings_have_no_drift() -> None:
    x = np.random.default_rng(0).normal(size=(20, 8))
    drift = embedding_drift(x, x.copy(), k=3)
    assert drift.mean_cosine == pytest.approx(1.0) and drift.worst_cosine == pytest.approx(1.0)
    assert drift.topk_unchanged == 1.0 and drift.topk_overlap == 1.0


def test_cosine_is_scale_free_and_catches_a_flipped_row() -> None:
    x = np.eye(3)
    y = np.array([[2.0, 0, 0], [0, 1, 1], [0, 0, -1]])
    np.testing.assert_allclose(cosine_similarity(x, y), [1.0, np.sqrt(0.5), -1.0])
    drift = embedding_drift(np.vstack([x, x]), np.vstack([y, x]), k=1)
    assert drift.worst_cosine == pytest.approx(-1.0)
    assert drift.mean_cosine == pytest.approx((1 + np.sqrt(0.5) - 1 + 3) / 6)


def test_top_k_neighbours_exclude_self_and_order_by_similarity() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.5, 0.5]])
    assert top_k_neighbours(x, 2)[0].tolist() == [1, 3]


def test_retrieval_agreement_counts_changed_neighbour_sets() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    swapped = x[[0, 2, 1, 3]]  # rows 1 and 2 trade places: their neighbours change
    unchanged, overlap = retrieval_agreement(x, swapped, k=1)
    assert unchanged == 0.0 and overlap == 0.0
    unchanged, _ = retrieval_agreement(x, x * 3.0, k=1)
    assert unchanged == 1.0


def test_bad_shapes_and_k_are_one_line_errors() -> None:
    with pytest.raises(QuantserveError, match="one shape"):
        embedding_drift(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(QuantserveError, match="k=4"):
        retrieval_agreement(np.ones((4, 2)), np.ones((4, 2)), k=4)

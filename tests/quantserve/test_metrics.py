"""The pure-numpy metrics against scikit-learn's definitions (scikit-learn only needed by this test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantserve import metrics as m
from quantserve.errors import QuantserveError

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def classified() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=400)
    logits = rng.normal(size=(400, 5)) + np.eye(5)[labels] * 1.5
    logits[:20] = np.round(logits[:20])  # ties in the scores
    return labels, logits


def test_accuracy_and_macro_prf(classified: tuple[np.ndarray, np.ndarray]) -> None:
    labels, logits = classified
    predicted = logits.argmax(axis=1)
    assert m.accuracy(labels, predicted) == pytest.approx(sklearn_metrics.accuracy_score(labels, predicted))
    precision, recall, f1 = m.precision_recall_f1_macro(labels, predicted)
    assert precision == pytest.approx(sklearn_metrics.precision_score(labels, predicted, average="macro"))
    assert recall == pytest.approx(sklearn_metrics.recall_score(labels, predicted, average="macro"))
    assert f1 == pytest.approx(sklearn_metrics.f1_score(labels, predicted, average="macro"))


def test_macro_prf_with_a_never_predicted_class() -> None:
    labels, predicted = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 1])
    precision, recall, f1 = m.precision_recall_f1_macro(labels, predicted)
    assert precision == pytest.approx(
        sklearn_metrics.precision_score(labels, predicted, average="macro", zero_division=0)
    )
    assert recall == pytest.approx(sklearn_metrics.recall_score(labels, predicted, average="macro", zero_division=0))
    assert f1 == pytest.approx(sklearn_metrics.f1_score(labels, predicted, average="macro", zero_division=0))


def test_one_vs_rest_auc_roc_and_pr(classified: tuple[np.ndarray, np.ndarray]) -> None:
    labels, logits = classified
    probabilities = m.as_probabilities(logits)
    assert probabilities.sum(axis=1) == pytest.approx(1.0)
    expected_roc = sklearn_metrics.roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    assert m.one_vs_rest("auc_roc", labels, probabilities) == pytest.approx(expected_roc)
    expected_pr = np.mean([sklearn_metrics.average_precision_score(labels == c, probabilities[:, c]) for c in range(5)])
    assert m.one_vs_rest("auc_pr", labels, probabilities) == pytest.approx(expected_pr)


def test_binary_auc_with_ties_and_degenerate_input() -> None:
    positive = np.array([1, 0, 1, 0, 1], dtype=bool)
    scores = np.array([0.9, 0.9, 0.3, 0.1, 0.3])
    assert m.binary_auc_roc(positive, scores) == pytest.approx(sklearn_metrics.roc_auc_score(positive, scores))
    assert m.average_precision(positive, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(positive, scores)
    )
    assert math.isnan(m.binary_auc_roc(np.ones(3, bool), scores[:3]))


def test_probabilities_are_kept_when_rows_already_are() -> None:
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert m.as_probabilities(p) == pytest.approx(p)


def test_drift_measures() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    cand = ref + np.array([[0.0, 0.5], [0.0, 0.0], [0.0, 5.0]])
    assert m.top1_agreement(ref, cand) == pytest.approx(2 / 3)
    mean, biggest = m.abs_difference(ref, cand)
    assert mean == pytest.approx(5.5 / 6) and biggest == 5.0
    cosine = m.cosine_similarity(ref, cand)
    assert cosine[1] == pytest.approx(1.0) and cosine[2] < 0.9
    assert m.cosine_similarity(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 1.0


def test_cosine_of_two_zero_vectors_is_one() -> None:
    assert m.cosine_similarity(np.zeros((2, 4)), np.zeros((2, 4))).tolist() == [1.0, 1.0]


def test_cosine_with_one_zero_vector_is_zero_so_a_collapsed_output_shows() -> None:
    ref = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    cand = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert m.cosine_similarity(ref, cand).tolist() == [0.0, 0.0]


def test_cosine_refuses_outputs_of_different_sizes() -> None:
    with pytest.raises(QuantserveError, match="cannot compare outputs of shapes"):
        m.cosine_similarity(np.zeros((2, 4)), np.zeros((2, 3)))


def test_channel_correlation_shows_a_collapsed_channel_and_skips_a_constant_one() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 4))
    ref[:, 3] = 7.0  # constant in the reference: nothing to follow
    cand = ref.copy()
    cand[:, 1] = 0.0  # collapsed in the candidate
    cand[:, 2] = -ref[:, 2]  # inverted
    corr = m.channel_correlations(ref, cand, axis=1)
    assert corr[0] == pytest.approx(1.0) and corr[1] == 0.0 and corr[2] == pytest.approx(-1.0)
    assert np.isnan(corr[3])


def test_channel_correlation_along_a_middle_axis_pools_the_other_positions() -> None:
    ref = np.arange(2 * 3 * 5, dtype=np.float64).reshape(2, 3, 5)
    cand = ref.copy()
    cand[:, 2, :] = 1.0
    corr = m.channel_correlations(ref, cand, axis=1)
    assert corr.shape == (3,) and corr[:2] == pytest.approx([1.0, 1.0]) and corr[2] == 0.0


def test_relative_error_whole_and_per_channel() -> None:
    ref = np.array([[3.0, 0.0], [4.0, 0.0]])
    cand = np.array([[3.0, 0.0], [4.0, 1.0]])
    assert m.relative_error(ref, ref)[0] == 0.0
    assert m.relative_error(ref, cand)[0] == pytest.approx(1 / 5)
    assert m.relative_error(ref, cand, axis=1).tolist() == [0.0, np.inf]  # a zero reference channel that moved


def test_position_agreement_and_ctc_decoded_agreement() -> None:
    def logits(labels: list[list[int]]) -> np.ndarray:
        return np.eye(4)[np.array(labels)]  # (samples, positions, 4 classes), class 0 = CTC blank

    ref = logits([[1, 1, 0, 2, 2], [3, 0, 3, 0, 0], [1, 2, 0, 0, 0]])
    # sample 0: a repeat split differently (same text); sample 1: the blank between two 3s lost (text changes)
    cand = logits([[1, 0, 0, 2, 0], [3, 3, 3, 0, 0], [1, 2, 0, 0, 0]])
    assert m.ctc_collapse(np.array([[1, 1, 0, 2, 2], [3, 0, 3, 0, 0]])) == [(1, 2), (3, 3)]
    assert m.position_agreement(ref, cand) == pytest.approx(12 / 15)
    assert m.decoded_sequence_agreement(ref, cand) == pytest.approx(2 / 3)

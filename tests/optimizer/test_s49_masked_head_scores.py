"""A dependency parser's head scores (N, T, T) with padded tokens' columns masked are per-token class scores."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.token_kinds import head_columns

N, T, LABELS = 64, 24, 40


def _parser(fill: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.ones((N, T), np.int64)
    for row in range(N):
        mask[row, rng.integers(8, T) :] = 0
    inputs = {"input_ids": rng.integers(5, 30000, (N, T)).astype(np.int64), "attention_mask": mask}

    def peaked(classes: int) -> np.ndarray:
        scores = rng.normal(size=(N, T, classes)).astype(np.float32) * 2
        np.put_along_axis(scores, rng.integers(0, classes, (N, T))[..., None], 8.0, 2)
        return scores

    heads = peaked(T)
    heads[np.broadcast_to(mask[:, None, :] == 0, heads.shape)] = fill
    return {"heads": heads, "labels": peaked(LABELS)}, inputs, mask


@pytest.mark.parametrize("fill", [-1e4, -1e9])
def test_masked_head_scores_are_token_classification(fill: float) -> None:
    reference, inputs, _ = _parser(fill)
    assert infer_output_kinds(reference, inputs=inputs) == {
        "heads": "token_classification",
        "labels": "token_classification",
    }


def test_masked_heads_judged_with_labels_by_top1() -> None:
    reference, inputs, mask = _parser(-1e4)
    candidate = {name: values.copy() for name, values in reference.items()}
    real = np.argwhere(mask == 1)[:12]  # 12 tokens' heads change their top-1
    for row, token in real:
        top = int(candidate["heads"][row, token, : int(mask[row].sum())].argmax())
        other = (top + 1) % int(mask[row].sum())
        candidate["heads"][row, token, other] = candidate["heads"][row, token, top] + 1
    kinds = infer_output_kinds(reference, inputs=inputs)
    report = measure_drift(reference, candidate, kinds, DriftBudget(), inputs=inputs)
    judged = int(mask.sum())
    assert report.outputs["heads"]["token_agreement"] == pytest.approx(1 - 12 / judged)
    assert report.outputs["heads+labels"]["token_agreement"] == pytest.approx(1 - 12 / judged)


def _rooted(reference: dict[str, np.ndarray], mask: np.ndarray, root_first: bool) -> dict[str, np.ndarray]:
    """The parser's heads with a root column (slovnet: (N, T, T + 1), the root first), padded columns still masked."""
    root = np.random.default_rng(3).normal(size=(N, T, 1)).astype(np.float32)
    pieces = (root, reference["heads"]) if root_first else (reference["heads"], root)
    return {**reference, "heads": np.concatenate(pieces, axis=2)}


@pytest.mark.parametrize("root_first", [True, False])
def test_head_scores_with_a_root_column_are_token_classification(root_first: bool) -> None:
    """slovnet's parser (session 51): read `dense`, its INT8 heads at 0.9867 of real tokens shipped unjudged."""
    reference, inputs, mask = _parser(-1e4)
    rooted = _rooted(reference, mask, root_first)
    kinds = infer_output_kinds(rooted, inputs=inputs)
    assert kinds == {"heads": "token_classification", "labels": "token_classification"}
    candidate = {name: values.copy() for name, values in rooted.items()}
    row, token = np.argwhere(mask == 1)[0]
    candidate["heads"][row, token] = -candidate["heads"][row, token]  # one real token's head changes
    report = measure_drift(rooted, candidate, kinds, DriftBudget(), inputs=inputs)
    assert report.outputs["heads+labels"]["token_agreement"] == pytest.approx(1 - 1 / int(mask.sum()))


def test_t_plus_one_columns_without_a_masked_fill_are_not_read_as_heads() -> None:
    """As many tags as tokens + 1, padded positions unmasked: other scores, left as they are."""
    _, _, mask = _parser(-1e4)
    scores = np.random.default_rng(4).normal(size=(N, T, T + 1)).astype(np.float32)
    assert head_columns(scores, mask.astype(bool)) is None
    assert head_columns(scores, np.ones((N, T), bool)) is not None  # no padding: nothing to read at a floor

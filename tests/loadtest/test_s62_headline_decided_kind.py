"""evaluate's headline output ranks the outputs by the kinds the build's labels decided too (session 62): a sleep
stager's per-epoch softmax `stages`, labelled a stage per epoch at optimize and judged per position there
(`quantserve_labelled_kinds`), read as a CTC `sequence` on evaluate's unlabelled rows, so the headline table scored
the per-epoch features `hidden` (token_embedding ranks before sequence) instead of the stages the verdict judged."""

from __future__ import annotations

import numpy as np

from loadtest.variant_scores import headline_output
from optimizer.unscored_heads import NotedKind

N, T, C, F = 40, 16, 4, 64


def _served() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(62)
    lengths = rng.integers(3, T - 2, N).astype(np.int64)
    real = np.arange(T)[None, :] < lengths[:, None]
    features = np.where(real[:, :, None], rng.standard_normal((N, T, 5)), -1.0).astype(np.float32)
    logits = rng.standard_normal((N, T, C)) * 3
    stages = (np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)).astype(np.float32)
    hidden = rng.standard_normal((N, T, F)).astype(np.float32)
    return {"stages": stages, "hidden": hidden}, {"features": features, "lengths": lengths}


def test_the_labels_decided_kind_ranks_the_headline() -> None:
    outputs, inputs = _served()
    assert headline_output(outputs, None, None, inputs) == "hidden"  # read afresh: stages a CTC sequence
    decided = {"stages": NotedKind("token_classification", "decided by the build's labels")}
    assert headline_output(outputs, None, None, inputs, decided=decided) == "stages"

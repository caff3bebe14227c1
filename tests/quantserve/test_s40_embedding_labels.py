"""An embedding given a data file with class labels (another head's) is not scored by an argmax over its dimensions:
`infer` printed "accuracy: 0.0120" and `evaluate` accuracy, F1, AUC and top-1 agreement beside "cosine min –" while
its drift table judged it as an embedding (session 40). A classifier's scores keep their accuracy."""

from __future__ import annotations

import numpy as np

from loadtest.variant_scores import reads_as_embedding
from quantserve.cli.commands.infer import summary

RNG = np.random.default_rng(0)


def _unit_rows(n: int, width: int) -> np.ndarray:
    rows = RNG.normal(size=(n, width)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_an_embedding_with_labels_prints_no_accuracy_a_classifier_does() -> None:
    labels = RNG.integers(0, 10, 500)
    said = summary({"emb": _unit_rows(500, 64)}, labels)
    assert "accuracy" not in said and "argmax" not in said, said
    logits = np.eye(10, dtype=np.float32)[labels] * 4 + RNG.normal(size=(500, 10)).astype(np.float32)
    assert "accuracy: 0.9800 on 500 samples" in summary({"logits": logits}, labels)


def test_evaluate_reads_an_embedding_as_drift_does_or_as_output_kind_says() -> None:
    labels = RNG.integers(0, 10, 500)
    assert reads_as_embedding(_unit_rows(500, 64), labels=labels)
    logits = np.eye(10, dtype=np.float32)[labels] * 4
    assert not reads_as_embedding(logits, labels=labels)
    assert not reads_as_embedding(_unit_rows(500, 64), "classification", labels)

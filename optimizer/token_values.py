"""A text model's (N, T) output, one value per token, read and measured over its real tokens only: where its
attention mask is 1 (`token_positions`). Padded positions carry whatever the model computes for padding.

An ELECTRA discriminator's replaced-token logit is one yes/no per token (a sigmoid, on at logit 0). Read over
every position, a tiny discriminator trained to 1.000 replaced-token accuracy was taken for a tagger's label sets
(pads at logits up to +7.7 among them), for a classifier over positions or for a regression, by how many tokens
its data replaced; and judged with its pads, a build whose real tokens' decisions all held was refused for its
pads' values alone (label-set agreement 0.041). So its real tokens' values are read alone: yes/no values per
token — most (as sigmoids) within FLAG_COMMITTED of 0 or 1 — are multilabel, judged per real token by the share
of decisions at --label-threshold unchanged (`label_set_agreement` over rows of one token each: the label-set
agreement of a tagger whose sample is a token); other values per token are dense (a probability's decisions are
read off each token as a one-score output's are, `optimizer.decision_metrics`). Logits whose softmax over the real
positions commits on the median row, with answers that vary — a span's start or end (question answering), one
position per row — stay a classification over positions, its pads never the answer, unless a tenth of the rows or
more have every real token plainly off: a classifier always answers, yes/no values per token need not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from optimizer.decision_metrics import FLAG_COMMITTED, is_flag
from optimizer.row_kinds import answers_vary, peaked_softmax, sums_to_one
from optimizer.token_lengths import (
    length_input,
    length_positions,
    length_words,
    named_length,
    off_words,
    sequence_length,
)
from quantserve import metrics

NONE_ON_SHARE = 0.1  # rows with every real token plainly off, from which signed values per token are yes/no logits
OFF_LOGIT = math.log(FLAG_COMMITTED / (1.0 - FLAG_COMMITTED))  # a sigmoid's plainly off, as a logit (-2.2)
SPAN_WORDS = {"start", "end"}  # in an (N, T) output's name: a span's answer position (`span_kind`)
MEASURED_PER_TOKEN = ("multilabel", "dense", "classification")  # a regression is measured as dense; others as they are


PAD_INSIDE_SHARE = 0.01  # a pad id found more often among the real tokens is content


def token_positions(inputs: Mapping[str, np.ndarray] | None) -> np.ndarray | None:
    """(N, T) True at each real token of a text model's rows, None when the model takes no tokens. Tokens are a
    2-D integer input (token ids); the real ones are where the length input --length-input names says, else where a
    mask (a 2-D input named "*mask*" of 0s and 1s) says (`_mask_marks_pads`: an attention mask is 1 at real tokens, a
    padding mask at pads); without one, where a length input (N,) says (`optimizer.token_lengths`: positions
    0..length-1, unless --length-input none), else the positions before a row's trailing pad ids (`unpadded`), else
    every position. Without token ids, where a length input counts another 2+-D input's axis 1 (a sequence of
    features: `sequence_positions`), else None. Padded positions carry whatever the model computes for padding:
    judged like tokens, they refused a faithful encoder, or could pass a broken one."""
    return real_tokens_read(inputs)[0]


def token_basis(inputs: Mapping[str, np.ndarray] | None) -> str:
    """Which positions `token_positions` took for real tokens, in words ("" without token ids): the note beside a
    per-token output's figures."""
    return real_tokens_read(inputs)[1]


class RealTokens(NamedTuple):
    """How a text model's real tokens were read (`real_tokens`): the positions, in words, and the input that marked
    them (a mask or a length input; None where none did: trailing pad ids, or every position)."""

    positions: np.ndarray | None
    basis: str
    input_name: str | None


def real_tokens_read(inputs: Mapping[str, np.ndarray] | None) -> tuple[np.ndarray | None, str]:
    """`token_positions` and `token_basis` together."""
    found = real_tokens(inputs)
    return found.positions, found.basis


def real_tokens(inputs: Mapping[str, np.ndarray] | None) -> RealTokens:
    """`token_positions`, `token_basis` and the input that marked them, by its name as data: the load test found it
    by its quoted name in the words, and an input named inside another's quoted name ("s mask" in "where input
    'it's mask' is 1") was taken for it."""
    if not inputs:
        return RealTokens(None, "", None)
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    ids = _integer_rows(arrays)
    wide = [a for a in ids if a.shape[1] > 1]  # an (N, 1) length input is no token row
    if not wide and (sequence := sequence_positions(arrays)).positions is not None:
        return sequence  # no token ids: a length input counts another input's axis 1 (before (N, 1) integers)
    ids = wide or ids
    if (named := named_length(arrays, ids[0] if ids else None)) is not None:  # --length-input NAME: before a mask
        return RealTokens(length_positions(named[1], ids[0].shape[1]), length_words(named[0]), named[0])
    if not ids:
        return RealTokens(None, "", None)
    for name, array in arrays.items():
        if "mask" in name.lower() and array.shape == ids[0].shape and np.isin(array, (0, 1)).all():
            on = array != 0
            if _mask_marks_pads(name, on, _token_ids(arrays, on)):
                return RealTokens(~on, f"where input '{name}' is 0", name)
            return RealTokens(on, f"where input '{name}' is 1", name)
    if (found := length_input(arrays, ids[0])) is not None:
        name, lengths = found
        return RealTokens(length_positions(lengths, ids[0].shape[1]), length_words(name), name)
    positions = unpadded(ids[0])
    if positions.all():
        return RealTokens(positions, off_words("every position (no mask, length or trailing pad id found)"), None)
    return RealTokens(positions, off_words("before each row's trailing pad ids"), None)


def _integer_rows(arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The 2-D integer inputs: token ids, or (N, 1) length inputs."""
    return [a for a in arrays.values() if a.ndim == 2 and np.issubdtype(a.dtype, np.integer)]


def frames_not_tokens(inputs: Mapping[str, np.ndarray] | None) -> bool:
    """Whether real positions, where there are any, are a sequence's a length input counts (`sequence_positions`:
    frames of features, no (N, T > 1) token ids beside them)."""
    rows = _integer_rows({name: np.asarray(value) for name, value in (inputs or {}).items()})
    return bool(inputs) and not any(a.shape[1] > 1 for a in rows)


TOKENS, POSITIONS = "tokens", "positions"  # what a per-token output's real positions are called (`position_unit`)
POSITIONS_ARE = "positions_are"  # a drift record's word for them, where they are no token ids' (`unit_of`)


def position_unit(inputs: Mapping[str, np.ndarray] | None) -> str:
    """What a per-token output's real positions are, in words: TOKENS over integer token ids, POSITIONS over a
    sequence of other values a length input counts (`frames_not_tokens`: a sleep stager's epochs, audio frames).
    Decided here once: its notes, violations and evidence lines read "per-token top-1 agreement … real tokens" for
    a stager that takes no token (session 62)."""
    return POSITIONS if frames_not_tokens(inputs) else TOKENS


def unit_of(record: Mapping[str, object]) -> str:
    """A drift record's `position_unit` (TOKENS where it says none)."""
    return str(record.get(POSITIONS_ARE) or TOKENS)


def sequence_positions(arrays: Mapping[str, np.ndarray]) -> RealTokens:
    """`real_tokens` of a model without token ids: positions 0..length-1 of the 2+-D input (of any dtype: a sleep
    stager's per-epoch features) a length input marks (`optimizer.token_lengths.sequence_length`); none where no
    length input marks one."""
    found = sequence_length(arrays)
    if found is None:
        return RealTokens(None, "", None)
    name, lengths, width = found
    return RealTokens(length_positions(lengths, width), length_words(name), name)


def _token_ids(arrays: Mapping[str, np.ndarray], mask: np.ndarray) -> np.ndarray | None:
    """The token ids beside a mask: a 2-D integer input of its shape that is not itself 0s and 1s."""
    for name, array in arrays.items():
        if (
            "mask" not in name.lower()
            and array.shape == mask.shape
            and np.issubdtype(array.dtype, np.integer)
            and not np.isin(array, (0, 1)).all()
        ):
            return array
    return None


def _mask_marks_pads(name: str, on: np.ndarray, ids: np.ndarray | None) -> bool:
    """Whether a mask's 1s are the pads (PyTorch's `key_padding_mask`, True where a position is ignored), not the
    real tokens (an attention mask). The ids decide where they show it: pads are one id, so the side of the mask
    holding (almost) a single id while the other side varies is the pads'. Else the name does: "pad" or "padding"
    among its words. A NER tagger's `pad_mask` (True at pads) was read as an attention mask: its 2676 pad positions
    alone were judged, token agreement 1.0 and max abs diff 0 (real tokens: 0.9968, 1.43), session 45."""
    if ids is not None and on.any() and (~on).any():
        on_one, off_one = _one_id(ids[on]), _one_id(ids[~on])
        if on_one != off_one:
            return on_one
    return bool({"pad", "padding"} & set(re.split(r"[^a-z]+", name.lower())))


def _one_id(ids: np.ndarray) -> bool:
    """Whether (almost) every id here is one value: a pad's (PAD_INSIDE_SHARE of others allowed)."""
    _, counts = np.unique(ids, return_counts=True)
    return bool(counts.max() >= (1.0 - PAD_INSIDE_SHARE) * ids.size)


def unpadded(ids: np.ndarray) -> np.ndarray:
    """(N, T) True before each row's trailing padding, where the ids show it without a mask: one id ends at least
    half the rows, in runs of varying length, and is (almost) never found before them — a pad id, not an end token
    at a fixed place. slovorez's letter ids, 0-padded to 20 with no mask input, were judged over every position:
    token agreement 0.9949 passed, 0.9897 over the real letters (5421 of 10880 positions)."""
    every = np.ones(ids.shape, dtype=bool)
    if ids.size == 0 or ids.shape[1] < 2:
        return every
    values, counts = np.unique(ids[:, -1], return_counts=True)
    pad = values[np.argmax(counts)]
    if counts.max() * 2 < len(ids):
        return every
    real = np.flip(np.logical_or.accumulate(np.flip(ids != pad, axis=1), axis=1), axis=1)  # up to the last non-pad
    runs = ids.shape[1] - real.sum(axis=1)
    inside = np.count_nonzero(ids[real] == pad)
    if len(np.unique(runs[runs > 0])) < 2 or inside > PAD_INSIDE_SHARE * max(int(real.sum()), 1):
        return every
    return real


def per_token(values: np.ndarray, positions: np.ndarray) -> bool:
    """A 2-D float output of one value per token: (N, T) as the token ids are."""
    return values.ndim == 2 and values.shape == positions.shape and np.issubdtype(values.dtype, np.floating)


def _real(positions: np.ndarray) -> np.ndarray:
    """The real tokens; every position where the mask marks none."""
    return positions if positions.any() else np.ones(positions.shape, dtype=bool)


def token_values_kind(values: np.ndarray, positions: np.ndarray) -> str:
    """The kind of a per-token (N, T) output, read off its real tokens' values (module docstring)."""
    real = _real(positions)
    scores = values[real].astype(np.float64)
    if metrics.probabilities(scores):
        if sums_to_one(values.astype(np.float64)) or sums_to_one(np.where(real, values, 0.0).astype(np.float64)):
            return "classification"  # a softmax over the positions
        return "multilabel" if is_flag(scores) else "dense"
    rows = np.where(real, values, -np.inf).astype(np.float64)[real.any(axis=1)]
    over_positions = peaked_softmax(rows) and answers_vary(rows)
    yes_no = is_flag(np.exp(-np.logaddexp(0.0, -scores)))  # their sigmoids
    if yes_no and (not over_positions or np.mean(rows.max(axis=1) < OFF_LOGIT) >= NONE_ON_SHARE):
        return "multilabel"
    return "classification" if over_positions else "dense"


def span_kind(name: str, values: np.ndarray, positions: np.ndarray | None) -> str | None:
    """ "classification" for a question-answering model's span start or end logits — an (N, T) output named for it
    (`start_logits`, `end_logits`, `span_start`…): one answer position per row, however peaked its softmax. A small
    BERT QA model's (median top softmax 0.28) read as yes/no values per token shipped an INT8 build at label-set
    agreement 0.9933 while 5-8 % of its answer positions moved (whole spans: 12 %, session 30). None otherwise."""
    words = set(re.split(r"[^a-z]+", name.lower()))
    if positions is None or not per_token(values, positions) or not words & SPAN_WORDS:
        return None
    return "classification"


def token_values_metrics(
    measure: Callable[..., dict[str, Any]],
    kind: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray | None,
    positions: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """A per-token (N, T) output's metrics (`measure`: `optimizer.drift_metrics.output_metrics`) over its real tokens:
    a classification over positions with its pads set below every real value in both, any other kind over its real
    tokens' values as rows of one (a yes/no's decisions per token). As information, the per-sample cosine over the
    real tokens and the share of samples with every real token's decision unchanged."""
    real = _real(positions)
    if kind == "classification":
        lowest = min(float(reference[real].min()), float(candidate[real].min()))
        record = measure(
            kind, np.where(real, reference, lowest), np.where(real, candidate, lowest), labels, None, threshold
        )
        return {**record, "tokens_judged": int(real.sum())}
    record = measure(kind, reference[real][:, None], candidate[real][:, None], None, None, threshold)
    cosines = metrics.cosine_similarity(np.where(real, reference, 0.0), np.where(real, candidate, 0.0))
    record.update(shape=list(reference.shape), tokens_judged=int(real.sum()))
    record.update(cosine_mean=float(cosines.mean()), cosine_worst=float(cosines.min()))
    if kind == "multilabel":  # rows of one token: a top class, or a row without labels, says nothing
        cut = record["label_cut"]
        changed = ((reference >= cut) != (candidate >= cut)) & real
        for key in ("top_class_agreement", "rows_without_labels"):
            record.pop(key, None)
        record["samples_unchanged"] = float(np.mean(~changed.any(axis=1)))
    return record


def token_values_doubt(name: str, kind: str, values: np.ndarray, positions: np.ndarray | None) -> str:
    """How a per-token output read as yes/no values was judged, with the override; "" for any other output."""
    if kind != "multilabel" or positions is None or not per_token(values, positions):
        return ""
    return f"read as a yes/no per real token: if they are values, pass --output-kind {name}=regression"


def live_positions(reference: np.ndarray) -> np.ndarray:
    """The (N, T) positions of a (N, T, C) output whose C values are not all 0: a position all 0 holds no class
    scores, the padding past a decoder's end (SLANet-plus padded to 1024 steps held ~40 real ones a row: judged over
    all 1024, agreement counted 0 = 0 on the padding, probe 65D)."""
    return np.asarray(np.any(reference != 0, axis=-1))

"""A tagger's per-token logits of 64 tags or more are token_classification, an encoder's hidden states stay
token_embedding (optimizer.row_kinds.token_logits; issue 9).

A GECToR grammar tagger (DistilBERT, (N, 48, 213) logits, "keep" on 98 % of the real tokens) was read as dense:
judged by correlation over every position, padding included, it refused a faithful INT8 model at 0.50 while
0.9985 of its tags were kept.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.row_kinds import token_logits

SAMPLES, LENGTH, TAGS = 64, 48, 213
KEEP, EDITS = 0, (5, 7, 11, 16, 40)  # the tag on most tokens, and the few edits the data asks for


def _tagger_rows(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Token ids (well above the tag count: no vocabulary's scores), an attention mask (8-30 real tokens of 48)
    and logits whose top tag is "keep" on about 97 % of the real tokens, one of five edits on the rest."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 31, SAMPLES)
    mask = (np.arange(LENGTH)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1000, 28000, (SAMPLES, LENGTH)) * mask
    prior = rng.normal(-3.0, 2.0, TAGS)
    prior[KEEP] = 10.0
    logits = prior + rng.normal(0, 0.5, (SAMPLES, LENGTH, TAGS))
    edited = (rng.random((SAMPLES, LENGTH)) < 0.03) & (mask != 0)
    tags = rng.choice(EDITS, int(edited.sum()))
    logits[edited, tags] = 16.0
    return {"input_ids": ids, "attention_mask": mask}, logits.astype(np.float32)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("form", ["logits", "log_softmax"])
def test_a_taggers_wide_logits_mostly_keep_are_token_classification(form: str) -> None:
    inputs, logits = _tagger_rows()
    values = logits if form == "logits" else _log_softmax(logits).astype(np.float32)
    assert infer_output_kinds({"logits": values}, inputs=inputs) == {"logits": "token_classification"}


def test_a_faithful_taggers_padding_is_not_judged_and_a_lost_edit_is() -> None:
    """INT8 noise on the real tokens that keeps every tag, and padding moved by 3 (the probe's 2.96): it holds,
    judged by per-token top-1 agreement. A tagger that reads every edit as "keep" (2 % of the tokens) is refused,
    though its per-token cosine stays near 1."""
    inputs, logits = _tagger_rows()
    real = inputs["attention_mask"] != 0
    rng = np.random.default_rng(1)
    quantized = logits + rng.normal(0, 0.3, logits.shape).astype(np.float32)
    quantized[~real] += rng.normal(0, 3.0, quantized[~real].shape).astype(np.float32)
    kinds = infer_output_kinds({"logits": logits}, inputs=inputs)
    report = measure_drift({"logits": logits}, {"logits": quantized}, kinds, DriftBudget(), inputs=inputs)
    assert report.holds, report.violations
    assert report.outputs["logits"]["token_agreement"] == 1.0
    assert report.outputs["logits"]["tokens_judged"] == int(real.sum())

    edited = np.argwhere(real & (logits.argmax(axis=2) != KEEP))
    quantized[edited[:, 0], edited[:, 1], KEEP] = 30.0
    report = measure_drift({"logits": logits}, {"logits": quantized}, kinds, DriftBudget(), inputs=inputs)
    # and each edit class lost, beyond chance (session 53: a class is judged, as a classifier's is)
    assert [v.metric for v in report.violations] == ["token_agreement", "class_agreement"]
    assert report.outputs["logits"]["cosine_mean"] > 0.99


def _hidden_states(outlier: float, seed: int = 2) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """An encoder's (N, T, 384) last_hidden_state over the tagger's token rows: LayerNorm-scaled features, channel
    63 raised by up to `outlier` on every token (all-MiniLM-L6-v2's peak features: up to 6 where the rest spread ±3)."""
    inputs, _ = _tagger_rows()
    rng = np.random.default_rng(seed)
    hidden = rng.normal(0, 1, (SAMPLES, LENGTH, 384))
    hidden[..., 63] += outlier * rng.uniform(0.3, 1.0, (SAMPLES, LENGTH))
    return inputs, hidden.astype(np.float32)


def test_an_encoders_hidden_states_with_an_outlier_channel_stay_token_embedding() -> None:
    """The outlier channel is the largest on most tokens, yet the softmax commits to nothing (MiniLM's median real
    token: 0.010 of the mass): features, judged by cosine over the real tokens."""
    inputs, hidden = _hidden_states(outlier=6.0)
    real = inputs["attention_mask"] != 0
    assert np.mean(hidden[real].argmax(axis=1) == 63) > 0.5
    assert infer_output_kinds({"last_hidden_state": hidden}, inputs=inputs) == {"last_hidden_state": "token_embedding"}


def test_a_feature_of_large_scale_that_commits_the_softmax_is_not_read_as_tags() -> None:
    """A channel so large that the softmax commits to it on every token, at an embedding's width (384), other
    channels the largest on a few tokens: one feature's scale, not a tag that answers (`outlier_feature`)."""
    inputs, hidden = _hidden_states(outlier=12.0)
    rows = hidden[inputs["attention_mask"] != 0].astype(np.float64)
    assert np.unique(rows.argmax(axis=1)).size >= 2
    assert not token_logits(rows)
    assert infer_output_kinds({"last_hidden_state": hidden}, inputs=inputs) == {"last_hidden_state": "token_embedding"}

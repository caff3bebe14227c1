"""A text model's (N, T) output of one value per token is judged over its real tokens only (optimizer.token_values;
issue 9, session 30).

An ELECTRA discriminator's replaced-token logit (a sigmoid per token) was read over every position, pads included:
as a tagger's label sets per sample, a classifier over positions or a regression, by the share of tokens its data
replaced, and a build whose real tokens all kept their decisions was refused for its pads' values alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds

SAMPLES, LENGTH = 300, 32


def _discriminator_rows(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Token ids, an attention mask (6-32 real tokens of 32) and replaced-token logits: about -6 on original
    tokens, +6 on the 15 % replaced; the pads at whatever padding computes (some of them above 0, as the probe's)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(6, LENGTH + 1, SAMPLES)
    mask = (np.arange(LENGTH)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(5, 1000, (SAMPLES, LENGTH)) * mask
    replaced = rng.random((SAMPLES, LENGTH)) < 0.15
    logits = np.where(replaced, 6.0, -6.0) + rng.normal(0, 1.0, (SAMPLES, LENGTH))
    logits = np.where(mask != 0, logits, rng.normal(-4.0, 4.0, (SAMPLES, LENGTH)))
    return {"input_ids": ids, "attention_mask": mask}, logits.astype(np.float32)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-values.astype(np.float64)))).astype(np.float32)


def _judged(inputs: dict[str, np.ndarray], fp32: np.ndarray, int8: np.ndarray):  # type: ignore[no-untyped-def]
    kinds = infer_output_kinds({"logits": fp32}, inputs=inputs)
    return measure_drift({"logits": fp32}, {"logits": int8}, kinds, DriftBudget(), inputs=inputs)


@pytest.mark.parametrize("form", ["logits", "probabilities"])
def test_pads_changed_wildly_while_real_tokens_agree_holds(form: str) -> None:
    inputs, logits = _discriminator_rows()
    real = inputs["attention_mask"] != 0
    rng = np.random.default_rng(1)
    quantized = logits + rng.normal(0, 0.05, logits.shape).astype(np.float32)
    quantized[~real] = -logits[~real] + 20.0 * rng.standard_normal(int((~real).sum())).astype(np.float32)
    fp32, int8 = (logits, quantized) if form == "logits" else (_sigmoid(logits), _sigmoid(quantized))
    report = _judged(inputs, fp32, int8)
    record = report.outputs["logits"]
    assert report.holds, [violation.line("multilabel") for violation in report.violations]
    assert record["kind"] == "multilabel"
    assert record["tokens_judged"] == int(real.sum())
    assert record["label_set_agreement"] == 1.0 and record["samples_unchanged"] == 1.0


def test_one_real_tokens_decision_flipped_in_many_samples_is_refused_per_token() -> None:
    inputs, logits = _discriminator_rows()
    real = inputs["attention_mask"] != 0
    quantized = logits.copy()
    quantized[::2, 0] = -quantized[::2, 0]  # the first token's decision, in every other sample
    report = _judged(inputs, logits, quantized)
    share = 1.0 - (SAMPLES // 2) / int(real.sum())
    assert [violation.line("multilabel") for violation in report.violations] == [
        f"output 'logits' (multilabel): label-set agreement (at logit 0: --label-threshold 0.5) {share:.4g} < budget "
        "0.99 (read as a yes/no per real token: if they are values, pass --output-kind logits=regression)"
    ]
    assert report.outputs["logits"]["samples_unchanged"] == 0.5


def test_span_logits_stay_a_classification_over_the_real_positions() -> None:
    """A question-answering head's start logits (one position stands out on every row) are a classification over
    positions: INT8 making a pad the largest value changes no answer, a pad never being one."""
    inputs, _ = _discriminator_rows()
    real = inputs["attention_mask"] != 0
    rng = np.random.default_rng(2)
    logits = rng.normal(-2.0, 2.0, real.shape)
    logits[np.arange(SAMPLES), rng.integers(0, real.sum(axis=1))] = 8.0
    logits = logits.astype(np.float32)
    quantized = logits + rng.normal(0, 0.05, logits.shape).astype(np.float32)
    quantized[~real] = 12.0
    report = _judged(inputs, logits, quantized)
    assert report.outputs["logits"]["kind"] == "classification"
    assert report.holds, [violation.line("classification") for violation in report.violations]
    assert report.outputs["logits"]["top1_agreement"] == 1.0

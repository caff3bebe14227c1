"""A (N, T) integer output of one id per token (a tagger with its argmax in the graph) is judged over its real tokens,
per token, as a tagger's logits are (optimizer.drift_metrics.token_ids_metrics; session 50).

It was judged as class ids per sample over every position: ids changed only at padded positions, which nothing reads,
refused a build at id agreement 0.95; and its changed tokens were not read together with the model's other per-token
answers (optimizer.joint_tokens).
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import evidence_shortfall
from optimizer.output_kinds import infer_output_kinds

N, T, TAGS = 64, 24, 40


def _batch() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Token inputs with 8..23 real tokens per row, and FP32's tag per token."""
    rng = np.random.default_rng(0)
    mask = np.ones((N, T), np.int64)
    for row in range(N):
        mask[row, rng.integers(8, T) :] = 0
    inputs = {"input_ids": rng.integers(5, 30000, (N, T)).astype(np.int64), "attention_mask": mask}
    return inputs, rng.integers(0, TAGS, (N, T)).astype(np.int64)


def _changed(tags: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = tags.copy()
    for row, token in where:
        out[row, token] = (out[row, token] + 1) % TAGS
    return out


def test_ids_changed_only_at_padding_hold() -> None:
    inputs, tags = _batch()
    padded = np.argwhere(inputs["attention_mask"] == 0)[:10]
    kinds = infer_output_kinds({"tags": tags}, inputs=inputs)
    report = measure_drift({"tags": tags}, {"tags": _changed(tags, padded)}, kinds, DriftBudget(), inputs=inputs)
    record = report.outputs["tags"]
    assert kinds == {"tags": "ids"}
    assert record["token_agreement"] == 1.0 and record["values_changed"] == 0, record
    assert record["tokens_judged"] == int(inputs["attention_mask"].sum())
    assert report.holds, report.violations


def test_ids_changed_at_real_tokens_are_refused_per_token() -> None:
    inputs, tags = _batch()
    real = np.argwhere(inputs["attention_mask"] == 1)
    tokens = len(real)
    changed = real[np.random.default_rng(1).choice(tokens, 30, replace=False)]
    report = measure_drift(
        {"tags": tags}, {"tags": _changed(tags, changed)}, {"tags": "ids"}, DriftBudget(), inputs=inputs
    )
    record = report.outputs["tags"]
    assert record["token_agreement"] == 1.0 - 30 / tokens and record["values_changed"] == 30
    assert record["samples_unchanged"] < 1.0
    (violation,) = report.violations
    assert violation.metric == "token_agreement" and violation.output == "tags"
    assert violation.line("ids").startswith("output 'tags' (ids): per-token top-1 agreement"), violation.line("ids")


def test_ids_are_read_together_with_the_taggers_other_answers() -> None:
    """Tags and a morphology head's logits each changed on other real tokens, each within the budget alone."""
    inputs, tags = _batch()
    rng = np.random.default_rng(2)
    real = np.argwhere(inputs["attention_mask"] == 1)
    picks = real[rng.choice(len(real), 10, replace=False)]
    morph = (rng.standard_normal((N, T, 12)) * 3).astype(np.float32)
    moved = morph.copy()
    for row, token in picks[5:]:
        moved[row, token] = np.roll(moved[row, token], 1)
    reference = {"tags": tags, "morph": morph}
    candidate = {"tags": _changed(tags, picks[:5]), "morph": moved}
    kinds = {"tags": "ids", "morph": "token_classification"}
    tokens = len(real)
    budget = DriftBudget(min_top1_agreement=1.0 - 7 / tokens)
    report = measure_drift(reference, candidate, kinds, budget, inputs=inputs)
    joint = report.outputs["tags+morph"]
    assert joint["kind"] == "token_joint" and joint["token_agreement"] == 1.0 - 10 / tokens
    assert [v.output for v in report.violations] == ["tags+morph"], report.violations


def test_rows_enough_to_judge_ids_count_real_tokens_where_the_rows_have_them() -> None:
    """Before the run the kind alone does not say whether ids are per token: with token inputs, the real tokens
    count (64 rows of 1003 tokens show a 0.99 budget); without, the rows do (64 of the 268 needed)."""
    inputs, _ = _batch()
    assert evidence_shortfall({"tags": "ids"}, DriftBudget(), rows=N, inputs=inputs) == []
    (short,) = evidence_shortfall({"tags": "ids"}, DriftBudget(), rows=N)
    assert (short["metric"], short["rows"], short["rows_needed"]) == ("id_agreement", N, 268)

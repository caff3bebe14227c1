"""The joint check (a token's analysis read whole: `optimizer.joint_tokens`) judges the labelled tokens alone where
token labels leave real tokens unlabelled (-100), as each output's per-token check does since session 57 (session 58):
a two-head tagger labelled at the first sub-word of each word, whose heads change their answers only at other
sub-words, was refused on its heads read together at tokens its task never reads."""

from __future__ import annotations

import numpy as np

from optimizer.drift import kind_notes, measure_drift, tokens_notes
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import thin_evidence

ROWS, TOKENS, LABELLED = 100, 20, 4  # the first 4 tokens of each row labelled, the rest -100
KINDS = {"heads": "token_classification", "rels": "token_classification"}


def _flipped(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """`logits` with the top-1 at each (N, T) position of `tokens` moved to another class."""
    out = logits.copy()
    out[tokens] = np.roll(out[tokens], 1, axis=-1)
    return out


def _parser() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """Heads (N, T, 20) and relations (N, T, 9): INT8 changes each head's answer at 4 % of the unlabelled tokens,
    other ones for each, and at none of the labelled; labels -100 at the unlabelled tokens."""
    rng = np.random.default_rng(58)
    fp32 = {name: (rng.standard_normal((ROWS, TOKENS, width)) * 3).astype(np.float32) for name, width in
            (("heads", TOKENS), ("rels", 9))}  # fmt: skip
    draw = rng.random((ROWS, TOKENS))
    draw[:, :LABELLED] = 1.0
    int8 = {
        "heads": _flipped(fp32["heads"], draw < 0.04),
        "rels": _flipped(fp32["rels"], (draw >= 0.04) & (draw < 0.08)),
    }
    labels = np.full((ROWS, TOKENS), -100, np.int64)
    labels[:, :LABELLED] = fp32["rels"][:, :LABELLED].argmax(axis=2)
    return fp32, int8, labels, {"input_ids": rng.integers(5, 3000, (ROWS, TOKENS))}


def test_the_joint_check_judges_the_labelled_tokens() -> None:
    fp32, int8, labels, inputs = _parser()
    report = measure_drift(fp32, int8, KINDS, DriftBudget(), labels, inputs)
    joint = report.outputs["heads+rels"]
    assert report.holds, [v.line() for v in report.violations]
    assert joint["token_agreement"] == 1.0 and joint["tokens_judged"] == ROWS * LABELLED
    assert joint["tokens_real"] == ROWS * TOKENS and joint["token_agreement_real"] < 0.95
    assert joint["samples_unchanged"] == 1.0


def test_the_note_says_the_joint_figure_over_every_token() -> None:
    fp32, int8, labels, inputs = _parser()
    joint = measure_drift(fp32, int8, KINDS, DriftBudget(), labels, inputs).outputs["heads+rels"]
    note = (
        f"outputs 'heads+rels': every output's top-1 at once judged on the {ROWS * LABELLED} labelled tokens "
        f"(labels -100 elsewhere); over all {ROWS * TOKENS} real tokens {joint['token_agreement_real']:.4f}"
    )
    assert note in tokens_notes({"heads+rels": joint}) and note in kind_notes({"heads+rels": joint})


def test_labelled_tokens_changed_by_other_heads_are_refused_together_and_named_as_labelled() -> None:
    fp32, int8, labels, inputs = _parser()
    int8["heads"] = _flipped(int8["heads"], np.isin(np.arange(ROWS), [0, 1, 2])[:, None] & (np.arange(TOKENS) == 0))
    int8["rels"] = _flipped(int8["rels"], np.isin(np.arange(ROWS), [3, 4, 5])[:, None] & (np.arange(TOKENS) == 1))
    report = measure_drift(fp32, int8, KINDS, DriftBudget(min_top1_agreement=0.99), labels, inputs)
    assert report.outputs["heads"]["token_agreement"] == report.outputs["rels"]["token_agreement"] == 1 - 3 / 400
    assert report.outputs["heads+rels"]["token_agreement"] == 1 - 6 / 400
    lines = [v.line("token_joint") for v in report.violations]
    assert lines == [
        "outputs 'heads+rels' (token_joint): per-token top-1 agreement (every output's top-1 at once, on its 400 "
        "labelled tokens) 0.985 < budget 0.99"
    ], lines


def test_labels_without_negatives_judge_every_token_together() -> None:
    fp32, int8, labels, inputs = _parser()
    every = np.where(labels < 0, 0, labels)
    report = measure_drift(fp32, int8, KINDS, DriftBudget(), every, inputs)
    joint = report.outputs["heads+rels"]
    assert joint["tokens_judged"] == ROWS * TOKENS and "tokens_real" not in joint
    assert not report.holds and joint["token_agreement"] < 0.95


def test_thin_evidence_counts_the_joint_labelled_tokens() -> None:
    fp32, int8, labels, inputs = _parser()
    few = labels.copy()
    few[2:] = -100  # 8 labelled tokens: 1.0 on them shows only ≥ 0.63
    report = measure_drift(fp32, int8, KINDS, DriftBudget(), few, inputs)
    thin = {entry["output"]: entry for entry in thin_evidence(report, DriftBudget(), ROWS)}
    assert thin["heads+rels"]["rows"] == 2 * LABELLED

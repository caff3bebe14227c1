"""A tagger whose token labels leave some tokens unlabelled (negative: Hugging Face's -100) is judged on its labelled
tokens, the ones its task reads (session 57): g2pM's polyphone tagger, labelled at its polyphones only (22 % of its
tokens), was refused at per-token agreement 0.9688 over every token and on "one class" FP32 answered at 6 unlabelled
tokens, while its 3742 labelled tokens agreed 0.999."""

from __future__ import annotations

import numpy as np

from optimizer.drift import kind_notes, measure_drift, tokens_notes
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import thin_evidence, thin_evidence_line

ROWS, TOKENS, CLASSES = 100, 20, 8
LABELLED = 4  # the first tokens of each row carry a label; the rest -100


def _tagger() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """FP32 and INT8 logits (N, T, C): INT8 changes 10 % of the unlabelled tokens' answers (all of class 7, which FP32
    answers only there), none of the labelled ones; labels -100 at the unlabelled tokens."""
    rng = np.random.default_rng(0)
    fp32 = rng.normal(size=(ROWS, TOKENS, CLASSES)).astype(np.float32)
    answers = rng.integers(0, CLASSES - 1, (ROWS, TOKENS))
    answers[:, LABELLED:][rng.random((ROWS, TOKENS - LABELLED)) < 0.1] = CLASSES - 1
    np.put_along_axis(fp32, answers[..., None], 6.0, axis=2)
    int8 = fp32.copy()
    int8[..., CLASSES - 1] = np.where(answers == CLASSES - 1, 0.0, int8[..., CLASSES - 1])  # class 7 lost
    labels = np.full((ROWS, TOKENS), -100, np.int64)
    labels[:, :LABELLED] = answers[:, :LABELLED]
    ids = rng.integers(5, 3000, (ROWS, TOKENS))
    return {"logits": fp32}, {"logits": int8}, labels, {"input_ids": ids}


def test_unlabelled_tokens_are_not_judged() -> None:
    fp32, int8, labels, inputs = _tagger()
    report = measure_drift(fp32, int8, {"logits": "token_classification"}, DriftBudget(), labels, inputs)
    record = report.outputs["logits"]
    assert report.holds, [v.line() for v in report.violations]
    assert record["token_agreement"] == 1.0 and record["tokens_judged"] == ROWS * LABELLED
    assert record["tokens_real"] == ROWS * TOKENS and record["token_agreement_real"] < 0.95
    assert record["accuracy_drop_points"] == 0.0


def test_the_note_says_what_was_judged_and_the_figure_over_every_token() -> None:
    fp32, int8, labels, inputs = _tagger()
    record = measure_drift(fp32, int8, {}, DriftBudget(), labels, inputs).outputs["logits"]
    note = (
        f"output 'logits': per-token top-1 agreement judged on the {ROWS * LABELLED} labelled tokens (labels -100 "
        f"elsewhere); over all {ROWS * TOKENS} real tokens {record['token_agreement_real']:.4f}"
    )
    assert note in tokens_notes({"logits": record}) and note in kind_notes({"logits": record})


def test_a_labelled_token_that_changes_is_judged_and_named_as_labelled() -> None:
    fp32, int8, labels, inputs = _tagger()
    int8["logits"][:5, 0] = -fp32["logits"][:5, 0]  # 5 of 400 labelled tokens change their answer
    report = measure_drift(fp32, int8, {"logits": "token_classification"}, DriftBudget(), labels, inputs)
    lines = [v.line() for v in report.violations]
    assert any("per-token top-1 agreement (on its 400 labelled tokens) 0.9875 < budget 0.99" in x for x in lines)


def test_labels_without_negatives_change_nothing() -> None:
    fp32, int8, labels, inputs = _tagger()
    every = np.where(labels < 0, 0, labels)
    report = measure_drift(fp32, int8, {"logits": "token_classification"}, DriftBudget(), every, inputs)
    record = report.outputs["logits"]
    assert record["tokens_judged"] == ROWS * TOKENS and "tokens_real" not in record
    assert not report.holds and record["token_agreement"] < 0.95


def test_thin_evidence_counts_the_labelled_tokens() -> None:
    fp32, int8, labels, inputs = _tagger()
    few = labels.copy()
    few[2:] = -100  # 8 labelled tokens: 1.0 on them shows only ≥ 0.63
    report = measure_drift(fp32, int8, {"logits": "token_classification"}, DriftBudget(), few, inputs)
    thin = thin_evidence(report, DriftBudget(), ROWS)
    assert thin and thin[0]["rows"] == 2 * LABELLED
    assert "over 8 held-out labelled tokens" in thin_evidence_line(thin[0])


def test_a_tagger_with_its_argmax_in_the_graph_too() -> None:
    fp32, int8, labels, inputs = _tagger()
    ids = {name: values.argmax(axis=2) for name, values in fp32.items()}
    got = {name: values.argmax(axis=2) for name, values in int8.items()}
    report = measure_drift(ids, got, {"logits": "ids"}, DriftBudget(), labels, inputs)
    record = report.outputs["logits"]
    assert report.holds, [v.line() for v in report.violations]
    assert record["token_agreement"] == 1.0 and record["tokens_judged"] == ROWS * LABELLED

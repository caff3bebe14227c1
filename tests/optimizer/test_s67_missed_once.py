"""A refusal names each missed flag once (session 67): nanodet's three score heads, each missing its clear positives
and its positions turned on or off, put "--min-box-agreement 0.95 (…)" six times into one line of ~2,000 characters."""

from __future__ import annotations

from optimizer.drift_checks import Violation
from optimizer.refusal_figures import miss_words

HEADS = ("Identity_2:0", "Identity_1:0", "Identity:0")


def test_each_missed_flag_is_said_once_with_what_it_measured_counted() -> None:
    violations = [Violation(HEADS[0], "channel_correlation_worst", -0.1662, 0.98)]
    for head in HEADS:
        violations += [
            Violation(head, "anchor_decision_agreement", 0.0, 0.95),
            Violation(head, "anchor_far_agreement", 0.0, 0.95),
        ]
    outputs = {head: {"kind": "dense"} for head in HEADS}
    words = miss_words({"violations": [v.to_dict() for v in violations], "outputs": outputs})
    assert words.count("--min-box-agreement 0.95") == 1, words
    assert words.count("--min-channel-correlation 0.98") == 1, words
    assert "clear positives of output 'Identity_2:0' agreed: 0" in words, words
    assert "output 'Identity_2:0', 1 - positions turned on from nothing or off to nothing per sample: 0" in words
    assert "and 4 more" in words, words
    assert "Identity:0" not in words, words  # counted, not listed


def test_one_miss_reads_as_before() -> None:
    decisions = Violation("probs", "anchor_decision_agreement", 0.8605, 0.95)
    words = miss_words({"violations": [decisions.to_dict()], "outputs": {"probs": {"kind": "dense"}}})
    assert words == "missed: --min-box-agreement 0.95 (clear positives of output 'probs' agreed: 0.8605)", words

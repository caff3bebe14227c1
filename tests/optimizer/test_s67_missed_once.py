"""A refusal names each missed flag once (session 67): nanodet's three score heads, each missing its clear positives
and its positions turned on or off, put "--min-box-agreement 0.95 (…)" six times into one line of ~2,000 characters."""

from __future__ import annotations

from optimizer.drift_checks import DriftReport, Violation
from optimizer.refusal_figures import failing_check_figures, figure_rows, miss_words

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


def _report(top1: float, *others: Violation) -> DriftReport:
    violations = [Violation("Identity:0", "top1_agreement", top1, 0.99)] if top1 < 0.99 else []
    return DriftReport(outputs={"Identity:0": {"top1_agreement": top1}}, violations=[*violations, *others])


def test_a_candidate_that_held_the_named_check_and_missed_another_says_so_and_repeats_are_said_once() -> None:
    """gear (human-models, probe 67D): "static_qdq_matmul_only 0.9933" read as holding a budget of 0.99 where it
    missed a per-class agreement (0.7778); static_qdq was listed twice with one figure."""
    per_class = Violation("Identity:0", "per_class_agreement", 0.7778, 0.99)
    closest = _report(0.9767)
    reports = [
        ("static_qdq", 1.9, closest, None),
        ("static_qdq_matmul_only", 1.2, _report(0.9933, per_class), None),
        ("static_qdq", 1.9, closest, None),
    ]
    violation = closest.violations[0].to_dict()
    rows = figure_rows(violation, reports)
    said, _ = failing_check_figures(violation, rows, {}, (300, 300))
    assert said.count("static_qdq 0.9767") == 1, said
    assert "static_qdq_matmul_only 0.9933 (held this, missed another check)" in said, said
    assert "static_qdq 0.9767 (held" not in said, said

"""A verdict judged by figures with no row count of their own (a dense output's channel figures, an embedding's
cosine), on fewer held-out samples than optimize holds out where it may, says how many samples it rests on.

Probe 66C: an SSD hand detector with only --calib (32 rows, the last 6 held out) was refused with "worst channel
correlation 0.9768 < 0.98" on 6 samples and no word that the evidence was thin; on 32 held-out rows the same output
held (0.9945). Agreement rates already carry their rows (`drift_evidence.thin_evidence`, `evidence_shortfall`); these
figures carry no bound, so the count is the one optimize already holds out for the budget (`evidence_rows`: 268).
"""

from __future__ import annotations

from typing import Any

from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import evidence_rows
from optimizer.few_samples import evidence_notes, few_samples, few_samples_note, few_samples_refusal_words
from optimizer.refusal_figures import miss_words


def _verification(samples: int, holds: bool) -> dict[str, Any]:
    dense = {"kind": "dense", "channel_correlation_worst": 0.9768 if not holds else 0.9945, "relative_error": 0.15}
    missed = {"output": "Identity_7:0", "metric": "channel_correlation_worst", "value": 0.9768, "budget": 0.98}
    return {
        "samples": samples,
        "budget": DriftBudget().to_dict(),
        "holds": holds,
        "outputs": {
            "Identity_7:0": dense,
            "Identity_4:0": {"kind": "embedding", "cosine_mean": 0.9969, "cosine_worst": 0.9937},
            "Identity_5:0": {"kind": "dense", "relative_error": 0.0},  # nothing budgeted measured: no verdict
            "label": {"kind": "classification", "top1_agreement": 1.0},  # its rows counted already
        },
        "violations": [] if holds else [missed],
        "thin_evidence": [],
    }


def test_the_outputs_judged_without_a_count_on_few_samples_are_found() -> None:
    entry = few_samples(_verification(6, holds=False))
    assert entry == {"outputs": ["Identity_7:0", "Identity_4:0"], "samples": 6, "samples_wanted": 268}
    assert evidence_rows(DriftBudget().to_dict()) == evidence_rows(DriftBudget()) == 268
    assert few_samples(_verification(268, holds=False)) is None


def test_a_refusal_on_six_samples_says_it_rests_on_them_and_what_to_give() -> None:
    words = few_samples_refusal_words(_verification(6, holds=False))
    assert words == (
        "this refusal rests on only 6 held-out samples (thin evidence: output 'Identity_7:0' (dense) is judged by "
        "figures that carry no row count of their own, on fewer samples than the 268 optimize holds out where the "
        "data allows; pass --eval with at least 268 rows)"
    )
    assert miss_words(_verification(6, holds=False)).endswith(words)  # the line optimize refuses with ends so
    assert few_samples_refusal_words(_verification(6, holds=True)) == ""


def test_a_verdict_that_held_on_six_samples_says_so_too() -> None:
    note = few_samples_note(_verification(6, holds=True))
    assert note == (
        "outputs 'Identity_7:0' (dense), 'Identity_4:0' (embedding): their verdict rests on only 6 held-out samples "
        "(thin evidence: judged by figures that carry no row count of their own, on fewer samples than the 268 "
        "optimize holds out where the data allows); pass --eval with at least 268 rows"
    )
    assert evidence_notes(_verification(6, holds=True)) == [note]  # optimize prints them after a shipped build
    assert few_samples_note(_verification(300, holds=True)) == ""


def test_a_speed_refusal_whose_drift_held_on_six_samples_notes_them_and_a_drift_refusal_once() -> None:
    from quantserve.cli.optimize_refusal import refusal_notes

    held = _verification(6, holds=True)
    assert refusal_notes({"verification": held}) == [few_samples_note(held)]  # beside "its drift is within …"
    assert refusal_notes({"verification": _verification(6, holds=False)}) == []  # the refusal's own line says it

"""What `quantserve optimize` says where it refuses a build: the line's added words and the figures' caveats.

A refusal (`BudgetExceeded`) carries its record; the command adds to its one line the flag of each missed check and
the calibration advice that fits, prints the notes on what its figures were taken at, and with --json writes the
refusal as one document. Kept apart from the command so its words are tested without running a build.
"""

from __future__ import annotations

import argparse
from typing import Any


def refusal_notes(record: dict[str, Any]) -> list[str]:
    """What a refusal's figures were taken at, where it is not what was asked: the timing batch lowered to fit memory
    (`optimizer.timing_rows`; U²-Net-p's drift refusal had said nothing of its candidates timed at batch 2 of 8); and
    the drift held on thin evidence or few samples (face-api's expressions, session 63; `optimizer.few_samples`)."""
    from optimizer.few_samples import evidence_notes, thin_lines

    lowered = (record.get("timing_rows") or {}).get("note") or (record.get("speed") or {}).get("batch_note")
    verification = record.get("verification") or {}
    thin = evidence_notes(verification) if verification.get("holds") else thin_lines(verification)
    return ([lowered] if lowered else []) + thin


def with_miss_words(refusal: Any) -> Any:
    """A refusal whose record carries a verification that missed, with each missed check named by its flag, the
    samples a worst-sample check misses, and the user's --metric where it held (`optimizer.refusal_figures`): a
    low-light enhancer was told "deploy fp32" with no word that its PSNR to the true images had held (session 55).
    Any other refusal as it was."""
    from optimizer.drift_budget import BudgetExceeded
    from optimizer.refusal_figures import miss_words

    words = miss_words(refusal.record.get("verification") or {})
    return BudgetExceeded(f"{refusal}; {words}", refusal.record) if words else refusal


def with_method_hint(refusal: Any, options: Any) -> Any:
    """A drift refusal of a model calibrated with minmax, with the calibration methods that clip outliers named:
    one activation outlier stretches a minmax scale over every other value (a re-ID embedder refused at cosine
    0.68 under minmax) — or, where the search measured the activations and found none to clip (MediaPipe's palm
    detector: 4.2×, where percentile refused again), that advice instead. Any other refusal as it was, one whose
    refused builds were all dynamic INT8 (`refused_schemes`): no --method changes those (g2p's GRU decoder), and one
    whose requests changed length (`lengths_changed`: SLANet-plus's under percentile and entropy too, probe 66I)."""
    from optimizer.drift_budget import BudgetExceeded
    from optimizer.int8_schemes import calibrates_activations

    if refusal.record.get("refused_for") != "drift" or options.precision != "int8" or options.method != "minmax":
        return refusal
    schemes = refusal.record.get("refused_schemes")  # lengths_changed: the line names the FP32 route instead
    if refusal.record.get("lengths_changed") or (schemes and not any(map(calibrates_activations, schemes))):
        return refusal
    measured = refusal.record.get("method_hint")  # the outliers calibration saw (optimizer.activation_outliers)
    advice = measured or "--method percentile or --method entropy clips outliers and may hold it"
    return BudgetExceeded(f"{refusal}; calibrated with --method minmax: {advice}", refusal.record)


def refusal_document(refusal: Any, args: argparse.Namespace) -> dict[str, Any]:
    """`optimize --json` where the build is refused: the verdict, the one line, the exit code and what the refusal
    rests on (`BudgetExceeded.record`: the violations and verification, the speed figures, the candidates tried)."""
    return {
        "verdict": "refused",
        "reason": str(refusal),
        "exit_code": refusal.exit_code,
        "model": args.model,
        "precision": args.precision,
        "target": args.target,
        **refusal.record,
    }

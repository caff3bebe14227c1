"""Verdicts judged by figures that carry no row count of their own, on fewer held-out samples than optimize holds
out where it may: how many samples they rest on, and what to give.

An agreement rate says how far it can be trusted by its 95 % lower bound (`drift_evidence.thin_evidence`); a dense
output's channel figures or an embedding's cosine have no such bound. Probe 66C's hand detector (only --calib, 32
rows, the last 6 held out) was refused at "worst channel correlation 0.9768 < 0.98" on 6 samples, no word that the
evidence was thin, where 32 held-out rows read 0.9945 and held. No second statistic is made up for them: the count is
the one optimize already holds out for the budget (`drift_evidence.evidence_rows`, 268 at the default budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimizer.drift_checks import BUDGETED
from optimizer.drift_evidence import BOX_METRICS, DISCRETE_METRICS, MORE_NAMED, evidence_rows, thin_evidence_line
from quantserve import metrics

COUNTED = (*DISCRETE_METRICS, *BOX_METRICS)  # rates whose rows are weighed by their own bound (`thin_evidence`)
UNCOUNTED_WHY = "figures that carry no row count of their own"
# a worst sample's figure: more samples can only lower it, so a miss on it is no thin evidence (MediaPipe's selfie
# segmentation, refused at worst-sample mask IoU 0 and its --metric 20 % down, was told its refusal was thin;
# session 69)
SAMPLE_FLOORS = ("cosine_worst", "mask_iou_worst", "psnr_worst")


def few_samples(verification: Mapping[str, Any]) -> dict[str, Any] | None:
    """The outputs of a verification record whose verdict rests on budgeted figures alone that no row count weighs
    (none of `COUNTED` measured), where its samples are fewer than `evidence_rows` of its budget; None otherwise."""
    samples, budget = verification.get("samples"), verification.get("budget")
    if not isinstance(samples, int) or not isinstance(budget, Mapping):
        return None
    wanted = evidence_rows(budget)
    outputs = [name for name, record in (verification.get("outputs") or {}).items() if _uncounted(record)]
    if samples >= wanted or not outputs:
        return None
    return {"outputs": outputs, "samples": samples, "samples_wanted": wanted}


def _uncounted(record: Mapping[str, Any]) -> bool:
    """Whether an output's verdict was reached by budgeted figures, none of them a rate counted over rows."""
    measured = [m for m in BUDGETED.get(str(record.get("kind", "")), ()) if record.get(m) is not None]
    return bool(measured) and not any(m in COUNTED for m in measured)


def few_samples_note(verification: Mapping[str, Any]) -> str:
    """E.g. "output 'y' (dense): its verdict rests on only 6 held-out samples (thin evidence: …); pass --eval with at
    least 268 rows"; "" where the samples are enough or every verdict is weighed by its rows."""
    entry = few_samples(verification)
    if entry is None:
        return ""
    names = _named(entry["outputs"], verification)
    plural = len(entry["outputs"]) > 1
    return (
        f"output{'s' if plural else ''} {names}: {'their' if plural else 'its'} verdict rests on only "
        f"{entry['samples']} held-out samples (thin evidence: judged by {UNCOUNTED_WHY}, on fewer samples than the "
        f"{entry['samples_wanted']} optimize holds out where the data allows); pass --eval with at least "
        f"{entry['samples_wanted']} rows"
    )


def few_samples_refusal_words(verification: Mapping[str, Any]) -> str:
    """What a drift refusal adds where a check it missed is one of `few_samples`' outputs': that the refusal itself
    rests on so few samples, and what to give; "" otherwise (a miss weighed by its rows, enough samples, or a miss
    more samples cannot undo: `_certain`)."""
    entry = few_samples(verification)
    violations = list(verification.get("violations") or [])
    missed = [str(v.get("output")) for v in violations]
    thin = [name for name in dict.fromkeys(missed) if entry and name in entry["outputs"]]
    if entry is None or not thin or any(_certain(v, entry["samples"]) for v in violations):
        return ""
    verb = "are" if len(thin) > 1 else "is"
    return (
        f"this refusal rests on only {entry['samples']} held-out samples (thin evidence: output"
        f"{'s' if len(thin) > 1 else ''} {_named(thin, verification)} {verb} judged by {UNCOUNTED_WHY}, on fewer "
        f"samples than the {entry['samples_wanted']} optimize holds out where the data allows; pass --eval with at "
        f"least {entry['samples_wanted']} rows)"
    )


def _certain(violation: Mapping[str, Any], samples: int) -> bool:
    """A miss more samples cannot undo: a worst sample's figure (`SAMPLE_FLOORS`), the user's own --metric, which
    then refuses the build whatever the figures with no row count say, or a miss beyond its samples' reach
    (`_beyond_noise`)."""
    floor = violation.get("metric") in SAMPLE_FLOORS or violation.get("scope") == "metric"
    return floor or _beyond_noise(violation, samples)


def _beyond_noise(violation: Mapping[str, Any], samples: int) -> bool:
    """Whether a figure read as a share in [0, 1] missed its budget by more than `samples` can show: the one-sided
    95 % bound agreement rates are weighed by (`metrics.agreement_lower_bound`, which sets the 268 rows asked for)
    does not reach the budget from the value seen. Selfie segmentation's mask IoU mean 0.8212 on 240 samples reaches
    0.858 at most, far from 0.95; a worst channel correlation of 0.9768 on 6 samples reaches 0.98. A figure or
    budget outside [0, 1] (dB, a count) has no such bound: not judged beyond noise here."""
    value, budget = violation.get("value"), violation.get("budget")
    if not isinstance(value, int | float) or not isinstance(budget, int | float) or not 0 <= budget <= 1:
        return False
    share = min(max(float(value), 0.0), 1.0)
    if violation.get("higher_is_better", value < budget):  # the best a true value could be: 1 − bound of 1 − share
        return 1 - metrics.agreement_lower_bound(1 - share, samples) < budget
    return metrics.agreement_lower_bound(share, samples) > budget


def evidence_notes(verification: Mapping[str, Any]) -> list[str]:
    """The notes optimize prints after a build on how far its verdict can be trusted: each agreement rate held on
    too few rows (`thin_evidence_line`), then the figures no row count weighs (`few_samples_note`)."""
    return thin_lines(verification) + [note for note in [few_samples_note(verification)] if note]


def thin_lines(verification: Mapping[str, Any]) -> list[str]:
    """A line per agreement rate held on too few rows to show its budget (`thin_evidence_line`)."""
    return [thin_evidence_line(entry) for entry in verification.get("thin_evidence") or []]


def _named(outputs: list[str], verification: Mapping[str, Any]) -> str:
    """E.g. "'y' (dense), 'e' (embedding)": each output with its kind, MORE_NAMED at most, then how many more."""
    records = verification.get("outputs") or {}
    named = ", ".join(f"'{name}' ({(records.get(name) or {}).get('kind', 'n/a')})" for name in outputs[:MORE_NAMED])
    return named + (f" and {len(outputs) - MORE_NAMED} more" if len(outputs) > MORE_NAMED else "")

"""A tagger's label sets (`multilabel`) and a multitask head's decisions at --label-threshold, FP32's near-ties left
out as a probability's are (`optimizer.decision_metrics`), and the line that says where the verdict may not be the one
at the cut-off the classes are read at (`label_threshold_doubt`).

A (row, class) decision whose FP32 score lies within `tie_margin` of the threshold (0.02 at 0.5; logits through a
sigmoid first) is one FP32 itself barely makes: INT8 turning it changes no row's set, and the record counts them
(`label_ties`). musicnn's MTT tagger was refused at label-set agreement 0.9861: 4 of its 5 changed rows were FP32
scores of 0.5010 to 0.5118; its clear decisions changed 1 row of 360 (session 63). A score INT8 moves across the cut
from farther off still changes its row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimizer.decision_metrics import near_ties, tie_margin
from optimizer.drift_budget import DriftBudget
from optimizer.soft_masks import mask_threshold
from optimizer.task_outputs import task_metrics
from quantserve import metrics

LOWER_CUT_FACTOR = 10  # a multilabel output's label sets are also measured at its --label-threshold over this


def label_set_metrics(reference: np.ndarray, candidate: np.ndarray, threshold: float, every: bool) -> dict[str, Any]:
    """A tagger's label sets at `threshold` (its logit for logits: `mask_threshold`), judged, and its tasks' decisions
    (`optimizer.task_outputs`; each task's with `every`, a multitask output's record), near-ties left out of both; as
    information, the share of decisions unchanged over the clear ones, the share of rows with no class on, and the
    label sets at a tenth of the threshold — where the model's own cut-off may lie (BirdNET's species lists are read
    at 0.03): the verdict at 0.5 need not be the verdict there (`label_threshold_doubt`)."""
    cut, logits = mask_threshold(reference, threshold)
    ties = near_ties(reference, threshold, logits)
    same = (reference >= cut) == (candidate >= cut)
    rows = reference.reshape(len(reference), -1) >= cut if len(reference) else np.ones((0, 1), dtype=bool)
    lower = threshold / LOWER_CUT_FACTOR
    return {
        "label_threshold": threshold,
        "label_cut": cut,
        "label_logits": logits,
        "label_set_agreement": _sets_kept(reference, candidate, threshold, ties),
        "label_ties": int(np.count_nonzero(ties)),
        "label_tie_margin": tie_margin(threshold),
        "decision_agreement": float(np.mean(same[~ties])) if (~ties).any() else 1.0,
        "top_class_agreement": metrics.top1_agreement(reference, candidate) if reference.ndim == 2 else None,
        "rows_without_labels": float(np.mean(~rows.any(axis=1))) if len(rows) else 0.0,
        "lower_label_threshold": lower,
        "label_set_agreement_lower": _sets_kept(reference, candidate, lower, near_ties(reference, lower, logits)),
        # a near-tie read as kept: each task's rows stay counted, its coin tosses not judged
        **task_metrics(reference, np.where(ties, reference, candidate), threshold, every),
    }


def _sets_kept(reference: np.ndarray, candidate: np.ndarray, threshold: float, ties: np.ndarray) -> float:
    """The share of rows whose every decision at `threshold` but its near-ties (`ties`) INT8 keeps."""
    return metrics.label_set_agreement(reference, np.where(ties, reference, candidate), threshold)[0]


def tie_words(record: Mapping[str, Any]) -> str:
    """E.g. "; 34 decisions within 0.02 of it left out", after the words naming the cut; "" where none was."""
    ties = int(record.get("label_ties") or 0)
    if not ties:
        return ""
    return f"; {ties} decision{'s' if ties != 1 else ''} within {record['label_tie_margin']:.3g} of it left out"


def label_threshold_doubt(record: Mapping[str, Any], budget: DriftBudget) -> str:
    """Why a multilabel output's verdict may not be the one at the cut-off its classes are read at; "" otherwise.
    Two signs: half the rows or more have no class on at the judged threshold (their empty sets agree whatever INT8
    does below it), or these label sets hold the budget while those at a tenth of the threshold miss it: BirdNET's
    species lists are read at 0.03, not at 0.5, and a model that holds at 0.5 can ship with its lists at 0.03 changed.
    The threshold is the user's to give: no other is judged. Where the label sets at a tenth agree less, a lower
    cut-off is no way out and is not offered: `--metric` judges a tagger read by its top tags (musicnn's: 52 % of
    its rows empty at 0.5, its sets agreeing 0.71 at 0.05, session 63)."""
    sets = record.get("label_set_agreement")
    if record.get("kind") != "multilabel" or sets is None or record.get("label_threshold") is None:
        return ""
    at = f"at --label-threshold {record['label_threshold']:g}"
    if record.get("label_logits") and record.get("label_cut") is not None:
        at += f" (logit {record['label_cut']:.3g})"
    advice = "if its classes are read at another cut-off, pass that with --label-threshold"
    empty = float(record.get("rows_without_labels") or 0.0)
    lower, limit = record.get("label_set_agreement_lower"), budget.min_top1_agreement
    if empty >= 0.5 and lower is not None and lower < sets:
        return (
            f"{empty * 100:.0f} % of the rows have no class on {at}, and at a tenth of it "
            f"({record['lower_label_threshold']:g}) the label sets agree less ({lower:.4g}): if it is read by its "
            "top tags, judge those with --metric (e.g. the top-k tags of a clip)"
        )
    if empty >= 0.5:
        return f"{empty * 100:.0f} % of the rows have no class on {at}: {advice}"
    if lower is None or sets < limit or lower >= limit:
        return ""
    return (
        f"label sets agree on {sets:.4g} of the rows {at} but on {lower:.4g} at a tenth of it "
        f"({record['lower_label_threshold']:g}): {advice}"
    )

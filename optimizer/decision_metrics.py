"""The decisions of a dense output of one score in [0, 1] per sample — a siamese matcher's "same icon?", a binary
classifier's, a wake-word, voice-activity or spam score — read at --label-threshold, as the model is used. A yes/no
flag (most scores near 0 or 1) is judged by all of its decisions (`flag_agreement`); a probability spread over the
range by those FP32 does not leave to a near-tie (`decision_agreement`, rows within DECISION_TIE_MARGIN of the
threshold left out and counted), where FP32 takes both sides of the threshold on the data (one-sided, it decides
nothing there: not judged). Both against the top-1 agreement budget. Judged by correlation alone, CapSpot's matcher
(N, 1) shipped at 0.9991 with nothing budgeting its decisions: a build flipping 5 % of its clear ones can keep
0.999 (`optimizer.drift_budget`). A score that is a value, not a yes/no (a quality or similarity regression in
[0, 1]), is said so with `--output-kind NAME=regression`: judged by its values alone. Either is judged on each side of
the threshold as FP32 decides too (`decision_sides`, its worse side against the same budget): pooled, a rare side
hides. @vladmandic/human's antispoof had 4 of 400 held-out rows below 0.5, and a build answering "yes" on every row
agreed 0.99 and held (session 64). The same flag answered before its sigmoid, a raw logit (`is_flag_logit`), is
judged as the flag, at the threshold's logit (session 68).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optimizer.soft_masks import cut_words, mask_threshold
from quantserve import metrics

FLAG_COMMITTED = 0.1  # a one-score-per-sample output in [0, 1] with most scores this near 0 or 1 is a yes/no flag
FLAG_LOGIT_COMMITTED = math.log((1.0 - FLAG_COMMITTED) / FLAG_COMMITTED)  # 2.197: such a score's logit, in size
# a logit mostly beyond this means nothing more (its sigmoid is 1 - 1e-13): values that large are a quantity's
FLAG_LOGIT_LARGEST = 30.0
FLAG_LOGIT_HOLLOW = 0.5  # a flag logit's share within 1 of 0, at most this of a same-rms normal's (`_hollow_at_zero`)
# A row whose FP32 score lies this near the threshold is a near-tie, its decision a coin toss INT8 noise may turn:
# CapSpot's faithful INT8 build (AUC 0.8108 -> 0.8100) moved scores near 0.5 by up to 0.055 and flipped 5 of 384
# decisions, 3 of them within 0.02 of 0.5; on the 369 rows farther off it agrees 0.9946 (2 flips, FP32 0.4485 and
# 0.5252), where a build flipping 5 % of them is refused.
DECISION_TIE_MARGIN = 0.02
DECISION_METRICS = ("flag_agreement", "decision_agreement")
# what a score's decisions add to its record; a regression's record goes without them
SIDE_METRIC = "decision_side_agreement"  # the worse side's agreement: judged, not recorded (`worse_side`)
DECISION_KEYS = (
    *DECISION_METRICS,
    "flag_cut",
    "decision_ties",
    "decision_tie_margin",
    "label_threshold",
    "decision_sides",
)


def score_decisions(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """The decision metrics of a dense output (on its real axes) at `threshold`: a flag's (a raw logit's at the
    threshold's logit) or a probability's, none where it is neither."""
    if is_flag_logit(reference):
        return logit_flag_decisions(reference, candidate, threshold)
    if not _one_score_a_sample(reference):
        return {}
    fp32, int8 = reference.reshape(-1).astype(np.float64), candidate.reshape(-1).astype(np.float64)
    if is_flag(reference):
        found = {"flag_agreement": metrics.label_set_agreement(reference, candidate, threshold)[0]}
        return {**found, **decision_sides(fp32, int8, threshold, np.ones(fp32.shape, bool))}
    return _clear_decisions(fp32, int8, threshold)


def value_decisions(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """A dense output's every value read as a decision at a `--label-threshold` the user gave, as information and a
    note (`drift.kind_notes`): per-position yes/no logits (attacut's word boundaries per character, at 0) were pooled
    into one channel's correlation, 0.9994, with 99 of 16801 boundaries flipped and the threshold given used by
    nothing, unsaid (session 41). Not judged: the threshold may be another output's (a box list's beside a mask's
    prototypes); `--output-kind NAME=multilabel` judges the values as decisions."""
    fp32, int8 = reference.reshape(-1).astype(np.float64), candidate.reshape(-1).astype(np.float64)
    if not fp32.size or not np.isfinite(fp32).all():
        return {}
    found = _clear_decisions(fp32, int8, threshold)
    if not found:
        return {}
    return {"value_decision_agreement": found["decision_agreement"], "value_decision_threshold": float(threshold)}


def is_flag(values: np.ndarray) -> bool:
    """One score in [0, 1] per sample, most of them committed (within FLAG_COMMITTED of 0 or 1): a sigmoid's
    yes/no (a hand's presence, a wake word), read at --label-threshold. Judged by correlation alone, MediaPipe's
    hand-presence flag at 0.944 had 5.7 % of its decisions flipped at 0.5, and one at 0.98 can flip more than the
    1 % the top-1 budget allows; a probability spreads over the range instead (`_clear_decisions`)."""
    values = np.asarray(values)
    if not _one_score_a_sample(values):
        return False
    flat = values.reshape(-1).astype(np.float64)
    committed = (flat <= FLAG_COMMITTED) | (flat >= 1.0 - FLAG_COMMITTED)
    return bool(np.mean(committed) >= 0.5)


def is_flag_logit(values: np.ndarray) -> bool:
    """One raw value per sample that reads as a yes/no flag before its sigmoid: both signs present, and `is_flag`'s
    rule through the sigmoid — half the values or more committed, |x| >= FLAG_LOGIT_COMMITTED (2.2) — with the
    median |x| within FLAG_LOGIT_LARGEST. MediaPipe's face-mesh face flag, (N, 1) over -12..+9, had 4 of 320 rows near
    0 flip sign in INT8, unreported by correlation alone (probe 68). A standardized regression (spread around 0, much
    of it near 0) has 2.8 % of its values committed so and is not read so; one of a wider spread is committed by size
    but fills the middle (`_hollow_at_zero`), and one in pixels or larger units (median |x| past 30) is not read so
    either; a flag read wrongly is said with `--output-kind NAME=regression`, which a refusal names."""
    values = np.asarray(values)
    if not _one_value_a_sample(values) or metrics.probabilities(values.reshape(-1)):
        return False
    size = np.abs(values.reshape(-1).astype(np.float64))
    both = bool((values < 0).any() and (values > 0).any())
    committed = np.mean(size >= FLAG_LOGIT_COMMITTED) >= 0.5
    return both and bool(committed) and bool(np.median(size) <= FLAG_LOGIT_LARGEST) and _hollow_at_zero(size)


def _hollow_at_zero(size: np.ndarray) -> bool:
    """Few values near the cut: the share within 1 of 0 is at most FLAG_LOGIT_HOLLOW of what a zero-mean normal of
    the same root mean square puts there. A yes/no logit sits on two sides, seldom between (the face flag: 4 of 320
    near 0); a regression's values, normal (ratio 1) or uniform (0.72) about 0, fill the middle, whatever their
    spread (a zero-centred age offset in years would read committed by size alone)."""
    rms = float(np.sqrt(np.mean(size**2)))
    expected = math.erf(1.0 / (rms * math.sqrt(2.0))) if rms > 0 else 1.0
    return bool(np.mean(size < 1.0) <= FLAG_LOGIT_HOLLOW * expected)


def logit_flag_decisions(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """A flag logit's decisions at `threshold`'s logit (`flag_cut`, 0 for 0.5), as `is_flag`'s after the sigmoid
    are: every row judged, none left out as a near-tie. A probability's margin (0.02 at 0.5, ±0.08 in logits:
    `near_ties`) is not taken, since the same model verified with its Sigmoid appended is judged on every row, and a
    flag's rows near the cut are the ones its user sees turn (probe 68's 4 of 320)."""
    cut, _ = mask_threshold(reference, threshold)
    fp32, int8 = reference.reshape(-1).astype(np.float64), candidate.reshape(-1).astype(np.float64)
    kept = (fp32 >= cut) == (int8 >= cut)
    return {
        "flag_agreement": float(np.mean(kept)),
        "flag_cut": float(cut),
        "label_threshold": float(threshold),
        **decision_sides(fp32, int8, cut, np.ones(fp32.shape, bool)),
    }


def _one_value_a_sample(values: np.ndarray) -> bool:
    """A float output of one finite value per sample ((N,) or (N, 1)) on some samples."""
    if (
        not np.issubdtype(values.dtype, np.floating)
        or values.ndim == 0
        or values.size != len(values)
        or not len(values)
    ):
        return False
    return bool(np.isfinite(values).all())


def _one_score_a_sample(values: np.ndarray) -> bool:
    """A float output of one finite value in [0, 1] per sample ((N,) or (N, 1)) on some samples."""
    return _one_value_a_sample(values) and metrics.probabilities(values.reshape(-1))


def _clear_decisions(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """The share of rows whose decision (score >= `threshold`) INT8 keeps, over the rows FP32 puts farther than
    DECISION_TIE_MARGIN from it; nothing where FP32 decides one way on every row, or every row is a near-tie."""
    above = reference >= threshold
    clear = np.abs(reference - threshold) > DECISION_TIE_MARGIN
    if above.all() or not above.any() or not clear.any():
        return {}
    kept = above == (candidate >= threshold)
    return {
        "decision_agreement": float(np.mean(kept[clear])),
        "decision_ties": int(np.count_nonzero(~clear)),
        "decision_tie_margin": DECISION_TIE_MARGIN,
        "label_threshold": threshold,
        **decision_sides(reference, candidate, threshold, clear),
    }


def decision_sides(
    reference: np.ndarray, candidate: np.ndarray, threshold: float, judged: np.ndarray
) -> dict[str, Any]:
    """The agreement on each side of `threshold` as FP32 decides, over the `judged` rows (a probability's clear
    ones, a flag's every one), the side with fewer rows first; nothing where FP32 puts them all on one side."""
    above = reference >= threshold
    kept = above == (candidate >= threshold)
    sides = [
        {"side": side, "threshold": float(threshold), "rows": int(rows.sum()), "agreement": float(np.mean(kept[rows]))}
        for side, rows in (("below", judged & ~above), ("above", judged & above))
        if rows.any()
    ]
    if len(sides) < 2:
        return {}
    return {"decision_sides": sorted(sides, key=lambda entry: entry["rows"])}


def worse_side(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The side of the threshold on which INT8 agrees least (the fewer rows where both agree alike), None where
    the record has no sides (`decision_sides`)."""
    sides = record.get("decision_sides") or []
    return min(sides, key=lambda entry: (entry["agreement"], entry["rows"]), default=None)


def side_words(record: Mapping[str, Any], entry: Mapping[str, Any], unit: str = "rows") -> str:
    """E.g. "on the 4 rows FP32 puts below 0.5, INT8 agrees 0.75" ("clear rows" where a probability's near-ties
    were left out; a per-token output's `unit`)."""
    clear = "clear " if "decision_agreement" in record else ""
    return (
        f"on the {entry['rows']} {clear}{unit} FP32 puts {entry['side']} {entry['threshold']:g}, INT8 agrees "
        f"{entry['agreement']:.4g}"
    )


def confident_decisions(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """A classifier used at a confidence threshold (--label-threshold given): it answers its top class where that
    class's probability reaches `threshold` and "unsure" elsewhere. The share of rows whose answer INT8 keeps, over
    the rows whose FP32 top probability lies farther than DECISION_TIE_MARGIN from the threshold (rows are
    probabilities where they sum to 1, else logits, softmaxed). malviz's malware classifier, used at 0.9 (benign or a
    family, else uncertain), shipped at top-1 agreement 0.9933 while that rule's answers agreed on 94.3 % of files:
    INT8 lowered its confidence across the board (session 30)."""
    if reference.ndim != 2 or reference.shape[1] < 2 or not len(reference):
        return {}
    ref, cand = metrics.as_probabilities(reference), metrics.as_probabilities(candidate)
    top = ref.max(axis=1)
    answer = np.where(top >= threshold, ref.argmax(axis=1), -1)
    kept = answer == np.where(cand.max(axis=1) >= threshold, cand.argmax(axis=1), -1)
    clear = np.abs(top - threshold) > DECISION_TIE_MARGIN
    if not clear.any():
        return {}
    return {
        "decision_agreement": float(np.mean(kept[clear])),
        "decision_ties": int(np.count_nonzero(~clear)),
        "decision_tie_margin": DECISION_TIE_MARGIN,
        "label_threshold": float(threshold),
        "unsure_fp32": int(np.count_nonzero(answer < 0)),
    }


def tie_margin(threshold: float) -> float:
    """How near a threshold in (0, 1) an FP32 probability is a near-tie: DECISION_TIE_MARGIN at 0.5, narrowed
    toward 0 and 1 as a sigmoid's slope is (0.02 · 4t(1 − t): the same ±0.08 in logits). A fixed 0.02 at 0.05 would
    leave out every score from 0.03 to 0.07: 12 % of musicnn's tag decisions there (session 63)."""
    if not 0.0 < threshold < 1.0:
        return DECISION_TIE_MARGIN
    return DECISION_TIE_MARGIN * 4.0 * threshold * (1.0 - threshold)


def near_ties(reference: np.ndarray, threshold: float, logits: bool) -> np.ndarray:
    """Where FP32's values lie within `tie_margin` of `threshold`, read as probabilities (`logits`: through a
    sigmoid first, so raw logits cut at the threshold's logit leave out the same decisions their probabilities
    would): decisions a coin toss of INT8 noise may turn."""
    values = np.asarray(reference, dtype=np.float64)
    if logits:
        with np.errstate(over="ignore"):
            values = 1.0 / (1.0 + np.exp(-values))
    return np.abs(values - threshold) <= tie_margin(threshold)  # as `_clear_decisions` reads a tie


def decision_doubt(name: str, missed: Iterable[str]) -> str:
    """The override, where a score's decisions missed their budget: a value in [0, 1] that nobody reads at a
    threshold (a quality or similarity regression) is judged by decisions it does not make."""
    if not any(metric in (*DECISION_METRICS, SIDE_METRIC) for metric in missed):
        return ""
    return (
        "read as a score decided at --label-threshold: if it is a regression (a value, not a yes/no), pass "
        f"--output-kind {name}=regression"
    )


def decision_words(record: Mapping[str, Any]) -> str:
    """E.g. "at --label-threshold 0.5; 15 rows within 0.02 of it left out": where a probability's decisions were
    read, and the near-ties they leave out; "at logit 0: --label-threshold 0.5" for a flag logit's."""
    if record.get("flag_cut") is not None:
        return cut_words(record["label_threshold"], record["flag_cut"], logits=True)
    words = f"at --label-threshold {record['label_threshold']:g}"
    ties = int(record.get("decision_ties") or 0)
    if ties:
        words += f"; {ties} row{'s' if ties != 1 else ''} within {record['decision_tie_margin']:g} of it left out"
    return words

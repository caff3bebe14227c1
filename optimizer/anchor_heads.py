"""An SSD-style split head's per-anchor outputs — one score per anchor, (N, A, 1) or (N, A), raw logits or
probabilities, beside box regressions (N, A, K ≥ 4) of the same anchors — judged per anchor where FP32 fires.

Judged as a dense map, each anchor a channel of its own over the samples, MediaPipe's pose detector ((N, 2254, 1)
score logits beside (N, 2254, 12) regressions, session 67) was refused at "worst channel correlation 0.4418" at an
anchor whose FP32 logit never rises above −51: its sigmoid is 0 however INT8 moves it, a value no decoder reads and
no build can be steered by; over the 88 anchors that fire the worst was 0.841, still a miss, and the figure to cite.
A decoder reads an anchor's score against its threshold and its box only where that score passes, as a decoded
head's box channels are judged only at the anchors FP32 keeps (`optimizer.decoded_heads`) and a heatmap's sibling
maps where the heat reaches its threshold (`optimizer.gated_maps`).

The rule (`anchor_heads`): a float output of one score per anchor over at least `MIN_ANCHORS` anchors, beside a float
(N, A, K ≥ 4) output of the same N and A, both read dense off their values (a kind the user typed is judged as typed),
where at most half the anchors fire on the median row (`MAX_FIRING_SHARE`: an SSD's are mostly background; which output
is read only where another is high is otherwise the user's word, `--gate`). An anchor fires where FP32's score reaches,
on some row, the quiet channels' cut (`channel_metrics.quiet_cut`): the lower of --label-threshold and QUIET_CEILING
(0.1), at its logit for logits — the lower cut because the user's decoder threshold is not known here (0.25 to 0.9,
`optimizer.anchor_scores`), so an anchor a decoder at 0.25 would read is judged though the threshold is 0.5. Every
per-anchor figure (correlation, spread error, gain, along the anchor axis and, for the boxes, along their coordinates)
is taken over the firing anchors alone, its worst named by the anchor's own index, and the record says how many fire
(`anchors_judged`, `judged_at`). An anchor that never fires is judged on its score as a quiet channel is: INT8 turning
it on at the threshold refuses at any count, and its largest error in score units (a logit's sigmoid) stays within
--max-quiet-error; its box rows feed no decision and are not judged. Correlation is not judged there at all rather than
cited after the firing anchors: its values decide nothing, so no figure of theirs can say what the build lost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from optimizer.channel_metrics import QUIET_CEILING, channel_metrics, quiet_channels
from optimizer.detection_heads import BOX_CHANNELS
from optimizer.typed_kinds import is_typed
from quantserve.metrics import probabilities

MIN_ANCHORS = 64  # anchor_scores.MIN_POSITIONS: fewer values per sample are a per-sample score, not anchors
# at most this share of the anchors fire on the median row: an SSD's are mostly background (the pose detector's 88
# of 2254 ever); a per-frame confidence beside per-frame values (N, T) + (N, T, K), on in most frames, is no anchor
# head. Per row, not over all rows: MediaPipe's full-range face detector fired 1271 of its 2304 anchors on some of
# 300 photos with faces everywhere, a few on each
MAX_FIRING_SHARE = 0.5
READ_AS = (None, "dense")  # the readings off the values this rule refines
# a per-anchor figure's record keys: the axis it lies on, the entry it names
ENTRY_KEYS = (
    ("channel_worst_axis", "channel_worst"),
    ("channel_error_worst_axis", "channel_error_worst_channel"),
    ("channel_gain_worst_axis", "channel_gain_worst_channel"),
)


@dataclass(frozen=True)
class AnchorEntries:
    """One output of an anchor head: the score output whose anchors fire (`scores`), which do ((A,) `firing`, over
    `rows` held-out rows), the firing cut and the decision threshold (score units), and whether the scores are
    logits and this output is them."""

    scores: str
    firing: np.ndarray
    rows: int
    cut: float
    threshold: float
    logits: bool
    is_scores: bool

    def where(self) -> str:
        """The words a record carries: which anchors its per-anchor figures were taken over."""
        cut = f"{self.cut:g}" + (f" (logit {_logit(self.cut):.4g})" if self.logits else "")
        unit = ", a logit's sigmoid" if self.logits else ""  # the quiet error's unit: 0.4 of a score, not a logit
        rest = (
            f"the others by INT8 not turning them on and their error in score{unit}"
            if self.is_scores
            else "the others' boxes feed no decision"
        )
        return (
            f"per anchor over the {int(self.firing.sum())} of {self.firing.size} anchors where FP32's '{self.scores}' "
            f"reaches {cut} on some of {self.rows} rows ({rest})"
        )


def anchor_heads(
    reference: Mapping[str, np.ndarray], kinds: Mapping[str, str], threshold: float
) -> dict[str, AnchorEntries]:
    """Each output of an anchor head in `reference` (module docstring) and how it is judged per anchor; {} where none
    is, or where none fires or more than MAX_FIRING_SHARE of them do on the median row."""
    found: dict[str, AnchorEntries] = {}
    for name, values in reference.items():
        scores = _anchor_scores(name, np.asarray(values), kinds)
        boxes = [other for other in reference if other != name and _boxes_of(other, scores, reference, kinds)]
        if scores is None or not boxes or name in found:
            continue
        logits = not probabilities(scores)
        cut = min(float(threshold), QUIET_CEILING)
        on = scores >= (_logit(cut) if logits else cut)
        firing = on.any(axis=0)
        if not firing.any() or float(np.median(on.mean(axis=1))) > MAX_FIRING_SHARE:
            continue
        entries = AnchorEntries(name, firing, len(scores), cut, float(threshold), logits, True)
        found[name] = entries
        found.update({box: replace(entries, is_scores=False) for box in boxes})
    return found


def _anchor_scores(name: str, values: np.ndarray, kinds: Mapping[str, str]) -> np.ndarray | None:
    """(N, A) scores where `values` is one float score per anchor read dense, (N, A, 1) or (N, A); else None."""
    kind = kinds.get(name)
    if kind not in READ_AS or (kind is not None and is_typed(kind)) or not np.issubdtype(values.dtype, np.floating):
        return None
    if values.ndim not in (2, 3) or values.shape[1] < MIN_ANCHORS or values.shape[2:] not in ((), (1,)):
        return None
    scores = values.reshape(values.shape[:2])
    return scores if scores.size and bool(np.isfinite(scores).all()) else None


def _boxes_of(
    name: str, scores: np.ndarray | None, reference: Mapping[str, np.ndarray], kinds: Mapping[str, str]
) -> bool:
    """Whether output `name` is (N, A, K ≥ 4) floats of `scores`' anchors, read dense: their box regressions."""
    values, kind = np.asarray(reference[name]), kinds.get(name)
    if scores is None or kind not in READ_AS or (kind is not None and is_typed(kind)):
        return False
    shaped = values.ndim == 3 and values.shape[:2] == scores.shape and values.shape[2] >= BOX_CHANNELS
    return shaped and np.issubdtype(values.dtype, np.floating)


def anchor_channel_metrics(
    kind: str, reference: np.ndarray, candidate: np.ndarray, entries: AnchorEntries
) -> dict[str, Any]:
    """`channel_metrics` of an anchor head's output (anchors along axis 1) over its firing anchors, each worst named by
    its own anchor; a score output's other anchors judged as quiet channels, in score units (module docstring)."""
    firing = np.flatnonzero(entries.firing)
    record = channel_metrics(kind, reference[:, firing], candidate[:, firing], entries.threshold)
    for axis_key, entry_key in ENTRY_KEYS:
        if record.get(axis_key) == 1 and record.get(entry_key) is not None:
            record[entry_key] = int(firing[record[entry_key]])
    record.update(anchors_judged=int(firing.size), judged_at=entries.where())
    if entries.is_scores:
        _never_firing(record, reference, candidate, entries)
    return record


def _never_firing(record: dict[str, Any], reference: np.ndarray, candidate: np.ndarray, entries: AnchorEntries) -> None:
    """A score output's anchors that never fire, judged as quiet channels on their scores (logits through a sigmoid):
    INT8 turning one on at the threshold, and their largest error; each named by its own anchor."""
    never = np.flatnonzero(~entries.firing)
    rows = reference.reshape(reference.shape[:2])[:, never], candidate.reshape(candidate.shape[:2])[:, never]
    ref, new = (_sigmoid(values) if entries.logits else values.astype(np.float64) for values in rows)
    record.pop("quiet_channels", None)  # the firing anchors' own reading: none of them is quiet
    quiet_channels(record, ref, new, 1, math.inf, entries.threshold)  # every one of them is quiet
    for key in ("quiet_error_worst_channel", "quiet_fired_channel"):
        if record.get(key) is not None:
            record[key] = int(never[record[key]])
    record["quiet_cut"] = entries.cut


def _sigmoid(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-values.astype(np.float64)))  # type: ignore[no-any-return]


def _logit(score: float) -> float:
    """A score's logit; −inf at 0 (--label-threshold 0: every anchor fires, none is left out)."""
    return math.log(score / (1.0 - score)) if score > 0.0 else -math.inf

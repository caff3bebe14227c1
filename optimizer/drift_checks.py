"""Which metric of each output kind is judged against which limit of the drift budget (`optimizer.drift_budget`),
and the violations and slack that rank candidates and refuse a build.


Judged by (`BUDGETED`): classification — top-1 agreement and, with labels, accuracy drop; multilabel — the
share of samples whose set of classes on (score ≥ --label-threshold, 0.5; logits at its logit) is unchanged, its
decisions FP32 leaves within 0.02 of the threshold left out (against the top-1 budget, `optimizer.label_sets`);
multitask (never inferred) — its worst task's share of decisions unchanged at --label-threshold, near-ties so too
(against the top-1 budget; the label sets recorded beside it, `optimizer.task_outputs`);
embedding — cosine mean and worst; token_classification — per-token top-1
agreement over the real tokens (against the top-1 budget) and, with token labels, accuracy drop, and two or more
of them over the same tokens also by the share of tokens where all agree (`optimizer.joint_tokens`);
token_embedding — per-token cosine mean and worst; sequence — decoded-sequence agreement; ids — share of
samples whose values are all unchanged (against the top-1 agreement budget); mask — share of values unchanged
(against the same budget) and worst class IoU; soft_mask — the IoU of each sample's map cut at --label-threshold,
FP32 against INT8, mean and worst, and, where fewer than three samples' masks could be judged so (none: a map all
under the cut), as a dense map too (`optimizer.soft_masks.unjudged_words`); image — each sample's PSNR against
FP32 over its pixel range, mean and worst (`optimizer.image_outputs`); box_list — the F1 of FP32's and INT8's boxes
at score ≥ --label-threshold (0.25 where not given) matched by class at IoU ≥ 0.5, and the matched boxes' mean IoU
(`optimizer.box_lists`); detection and dense — worst channel correlation and worst channel error (RMS error over
the channel's FP32 standard deviation: correlation alone passes a channel shifted by a constant or rescaled; a
detection head of pixel boxes beside [0, 1] scores also by its decoded boxes, as a box list's, its channels judged
where its decoder reads them: `optimizer.decoded_heads`), and a
dense yes/no flag (one score in [0, 1] per sample, most near 0 or 1; or its raw logit, at the threshold's logit:
`decision_metrics.is_flag_logit`) also by the share of its decisions at --label-threshold unchanged, and a dense
probability (one such score spread over the range, FP32 on both sides of the threshold) by the share of its
decisions unchanged on the rows farther than 0.02 from it, each also on the side of the threshold where it agrees
least, as FP32 decides (all against the top-1 budget, `optimizer.decision_metrics`); a dense output of scores
also by its quiet channels (`optimizer.drift_metrics`: never on in FP32, plainly off) — the largest absolute error
among them, and, with no slack at all, INT8 turning one on — and, over many positions (per-anchor scores, a
probability map), by the share of its clear positives kept and not invented at a decoder's thresholds, and by its
positions turned on from nothing or off to nothing there, each counted a detection whole, per sample (both against
the box-agreement budget,
`optimizer.anchor_scores`); a dense or multilabel output of one score per sample or token given 0/1
labels also by its accuracy drop at --label-threshold (`optimizer.sigmoid_outputs.score_accuracy`), as evaluate's
headline judges it (a build optimize shipped was failed by evaluate for the same drop). Every other metric (the
channel figures of the other kinds, relative error, neighbour agreement, whole-tensor cosine, abs differences) is
recorded as information.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from optimizer.box_lists import box_words
from optimizer.class_agreement import lost_classes, lost_where
from optimizer.decision_metrics import DECISION_METRICS, SIDE_METRIC, decision_words, side_words, worse_side
from optimizer.drift_budget import DriftBudget
from optimizer.heatmap_peaks import peak_words
from optimizer.image_outputs import psnr_words
from optimizer.label_sets import tie_words
from optimizer.soft_masks import cut_words, mask_cut_words
from optimizer.split_box_lists import JUDGED_WITH
from optimizer.task_outputs import TASK_METRIC, TASKS_KIND, task_where
from optimizer.token_values import POSITIONS, TOKENS, unit_of
from quantserve.metrics import beyond, on_its_side

# metric key -> (words in a message, budget field, higher is better)
CHECKS: dict[str, tuple[str, str, bool]] = {
    "top1_agreement": ("top-1 agreement", "min_top1_agreement", True),
    "label_set_agreement": ("label-set agreement", "min_top1_agreement", True),
    TASK_METRIC: ("worst task's decision agreement", "min_top1_agreement", True),  # `optimizer.task_outputs`
    "accuracy_drop_points": ("accuracy drop (points)", "max_accuracy_drop_points", False),
    "cosine_mean": ("cosine mean", "min_cosine_mean", True),
    "cosine_worst": ("worst cosine", "min_cosine_worst", True),
    "sequence_agreement": ("decoded-sequence agreement", "min_sequence_agreement", True),
    # ... with each symbol's run where FP32 has it: an inferred sequence only (`sequence_verdicts.sequence_in_place`)
    "located_agreement": ("decoded-sequence agreement, each symbol in place", "min_sequence_agreement", True),
    "token_agreement": ("per-token top-1 agreement", "min_top1_agreement", True),
    "id_agreement": ("id agreement", "min_top1_agreement", True),
    "first_id_agreement": ("first-ranked id agreement", "min_top1_agreement", True),  # `optimizer.ranked_ids`
    "value_agreement": ("share of values unchanged", "min_top1_agreement", True),
    "class_iou_worst": ("worst class IoU", "min_class_iou", True),
    "mask_iou_mean": ("mean per-sample mask IoU", "min_mask_iou_mean", True),
    "mask_iou_worst": ("worst sample's mask IoU", "min_mask_iou_worst", True),
    "psnr_mean": ("mean PSNR to FP32", "min_psnr_mean", True),
    "psnr_worst": ("worst sample's PSNR to FP32", "min_psnr_worst", True),
    "box_agreement": ("box agreement (F1 at IoU 0.5)", "min_box_agreement", True),
    "box_iou_mean": ("mean IoU of matched boxes", "min_box_iou", True),
    "channel_correlation_worst": ("worst channel correlation", "min_channel_correlation", True),
    "channel_error_worst": ("worst channel error (RMS / FP32 std)", "max_channel_error", False),
    "channel_gain_worst": ("worst channel gain error (|slope - 1|)", "max_channel_gain", False),
    "flag_agreement": ("share of flag decisions unchanged", "min_top1_agreement", True),
    "decision_agreement": ("share of clear decisions unchanged", "min_top1_agreement", True),
    SIDE_METRIC: ("share of decisions unchanged on one side of the threshold", "min_top1_agreement", True),
    "quiet_error_worst": ("worst absolute error of a channel never on in FP32", "max_quiet_error", False),
    # a map's or an anchor set's clear decisions at a decoder's threshold (`optimizer.anchor_scores`)
    "anchor_decision_agreement": ("share of clear positives agreed", "min_box_agreement", True),
    # ... and its positions turned on from nothing or off to nothing, each a detection whole, per sample
    "anchor_far_agreement": (
        "1 - positions turned on from nothing or off to nothing per sample",
        "min_box_agreement",
        True,
    ),
    "class_agreement": ("top-1 agreement on one class", "min_top1_agreement", True),  # `class_agreement.lost_classes`
    # a keypoint heatmap's confident argmax cells (`optimizer.heatmap_peaks`)
    "peak_agreement": ("share of confident peaks within one cell of FP32's", "min_top1_agreement", True),
}
# which metrics each kind is judged by (the others are recorded as information)
BUDGETED: dict[str, tuple[str, ...]] = {
    # and, used at a confidence threshold (--label-threshold given), its answers there (`decision_metrics`)
    "classification": ("top1_agreement", "accuracy_drop_points", "decision_agreement"),
    "multilabel": ("label_set_agreement", "accuracy_drop_points"),
    # independent yes/no tasks (--output-kind NAME=multitask, never inferred): each task on its own, the worst judged
    TASKS_KIND: (TASK_METRIC,),
    "embedding": ("cosine_mean", "cosine_worst"),
    "sequence": ("sequence_agreement", "located_agreement"),
    # a decoded raw head's boxes too (`optimizer.decoded_heads`), its channels where its decoder reads them
    "detection": (
        "box_agreement",
        "box_iou_mean",
        "channel_correlation_worst",
        "channel_error_worst",
        "channel_gain_worst",
        "anchor_decision_agreement",  # a raw head's score channels, where no decoder's boxes are read
        "anchor_far_agreement",
    ),
    "box_list": ("box_agreement", "box_iou_mean"),  # an end-to-end detector's sorted detections (`optimizer.box_lists`)
    # a flag's or a probability's decisions: where it is one (`optimizer.decision_metrics`); quiet channels': where
    # the output is scores (`optimizer.drift_metrics`)
    "dense": (
        "channel_correlation_worst",
        "channel_error_worst",
        "channel_gain_worst",
        "flag_agreement",
        "decision_agreement",
        "anchor_decision_agreement",
        "anchor_far_agreement",
        "quiet_error_worst",
        "accuracy_drop_points",  # one score per sample or token with 0/1 labels, at --label-threshold
        "peak_agreement",  # a keypoint heatmap's argmax cells (`optimizer.heatmap_peaks`)
    ),
    # a dense output said to be a regression (--output-kind NAME=regression, never inferred): its values, no decisions
    "regression": ("channel_correlation_worst", "channel_error_worst", "channel_gain_worst", "quiet_error_worst"),
    # an angle in radians (--output-kind NAME=angle, never inferred): a regression once INT8's value is taken to the
    # turn FP32's is on (`optimizer.drift_metrics.same_turn`): π − ε and −π + ε are 2ε apart, not 2π
    "angle": ("channel_correlation_worst", "channel_error_worst", "channel_gain_worst", "quiet_error_worst"),
    # an id per sample; per real token where the ids are one per token; a TopK's first index (`optimizer.ranked_ids`)
    "ids": ("id_agreement", "token_agreement", "first_id_agreement", "accuracy_drop_points"),
    "mask": ("value_agreement", "class_iou_worst"),
    # a sigmoid foreground (`optimizer.soft_masks`); a dense map's figures where too few samples' masks were judged
    "soft_mask": (
        "mask_iou_mean",
        "mask_iou_worst",
        "channel_correlation_worst",
        "channel_error_worst",
        "quiet_error_worst",
    ),
    # per-position class probabilities (N, C, H, W): the answer map (argmax) as a mask, and the maps as dense ones
    "class_map": ("value_agreement", "class_iou_worst", "channel_correlation_worst", "channel_error_worst"),
    "image": ("psnr_mean", "psnr_worst"),  # a picture (`optimizer.image_outputs`)
    "token_classification": ("token_agreement", "accuracy_drop_points"),
    "token_embedding": ("cosine_mean", "cosine_worst"),
    "token_joint": ("token_agreement",),  # every per-token top-1 output over the same tokens (`optimizer.joint_tokens`)
}


# the kinds whose answer classes are each judged too (`class_agreement.lost_classes`), and what their answers are: a
# tagger's per-token agreement pooled over a background class hides a class it loses (a splice-site tagger's calls
# all moved 7 positions agreed on 0.9925 of positions, session 52)
CLASS_JUDGED = {"classification": "rows", "token_classification": "tokens", "ids": "tokens"}


# an id output's record: the relative error of the scores an ArgMax/TopK in the graph made it from, on probe rows
SCORES_ERROR = "scores_relative_error"


@dataclass(frozen=True)
class Violation:
    """One metric of one output beyond its budget."""

    output: str
    metric: str
    value: float
    budget: float
    higher_is_better: bool = True
    scope: str = "output"
    hint: str = ""  # how the output's kind was read, where it may be misread (`kind_doubt`), and the override
    where: str = ""  # where in the output the worst value lies, where more than one axis was judged ("axis 3, entry 1")
    unit: str = TOKENS  # what a per-token metric's positions are (`token_values.position_unit`)

    def line(self, kind: str = "") -> str:
        """E.g. "output 'scores': worst channel correlation 0.12 < budget 0.98"; with the output's `kind`,
        "output 'scores' (dense): …" — how it was judged, which `--output-kind` can change."""
        where = f"{self.scope} '{self.output}'" + (f" ({kind})" if kind else "")
        if self.metric == "nonfinite_values":
            at = f" ({self.where})" if self.where else ""  # the node making them (`nan_outputs.nonfinite_origins`)
            return f"{where}: {self.value:.0f} values NaN or infinite where FP32 is finite{at}"
        if self.metric == "quiet_fired":
            return f"{where}: INT8 turns on a channel FP32 never does ({self.where}): {self.value:.0f} values"
        words = check_words(self.metric, self.unit)
        op = "<" if self.higher_is_better else ">"
        hint = f" ({self.hint})" if self.hint else ""
        at = f" ({self.where})" if self.where else ""
        return f"{where}: {words}{at} {_beside(self.value, self.budget)} {op} budget {self.budget:g}{hint}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "line": self.line()}


@dataclass
class DriftReport:
    """Per-output kind and metrics, and every budget violation (none: the budget holds)."""

    outputs: dict[str, dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    slacks: list[float] = field(default_factory=list)  # normalized slack of every check made
    output_margins: dict[str, float] = field(default_factory=dict)  # each output's worst slack (and a joint reading's)
    user_metric: dict[str, Any] | None = None  # --metric: FP32 and INT8 scores side by side
    advice: list[str] = field(default_factory=list)  # a miss's measured way out, said by its refusal (`gate_advice`)

    @property
    def holds(self) -> bool:
        return not self.violations

    def rank(self) -> None:
        """Order the violations by output, the worst first (`severity`), so that a line naming the first names the
        output that misses most: XFeat's
        refusal named its descriptors' worst channel correlation 0.9738 (against 0.98) while its keypoints' was
        0.8623, the output whose task broke (session 40)."""
        worst: dict[tuple[str, str], float] = {}
        for violation in self.violations:
            key = (violation.scope, violation.output)
            worst[key] = min(worst.get(key, math.inf), severity(violation))
        # by output, worst output first; each output's own violations in the order its checks made them
        self.violations.sort(key=lambda violation: worst[(violation.scope, violation.output)])

    def margin(self) -> float:
        """Worst normalized slack over all checks (1.0: no drift; ≥ 0 iff the budget holds); ranks candidates."""
        return min(self.slacks, default=1.0)

    def error(self) -> float:
        """Mean relative error over the outputs (ids: that of the scores they were made from, where measured
        (`optimizer.answer_scores`), else the share of values changed): a continuous drift figure that still moves
        where a discrete metric (top-1 or sequence agreement on a few probe rows) does not."""
        errors = [
            _output_error(o)
            for o in self.outputs.values()
            if o.get("kind") != "token_joint" and JUDGED_WITH not in o  # read together: no figure of their own
        ]
        return float(np.mean(errors)) if errors else 0.0

    def scores_lead(self) -> bool:
        """The output with the least slack is an id per sample whose scores were measured: its judged figure moves a
        whole row at a time, the scores behind it continuously (the INT8 search then ranks its probes by them)."""
        worst = min(self.output_margins, key=self.output_margins.__getitem__, default=None)
        if worst is None or self.output_margins[worst] > self.margin():  # a --metric misses most
            return False
        return SCORES_ERROR in self.outputs.get(worst, {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "margin": self.margin(),
            "outputs": self.outputs,
            "violations": [v.to_dict() for v in self.violations],
            "metric": self.user_metric,
            **({"advice": self.advice} if self.advice else {}),
        }


def check_words(metric: str, unit: str = TOKENS) -> str:
    """`metric`'s words in a message (CHECKS'), a per-token figure said per position where the positions are no
    token ids' (`unit`: `token_values.position_unit`)."""
    words = CHECKS[metric][0] if metric in CHECKS else metric
    return words.replace("per-token", "per-position") if unit == POSITIONS else words


def _output_error(output: Mapping[str, Any]) -> float:
    """One output's continuous drift figure (`DriftReport.error`)."""
    for key in ("relative_error", SCORES_ERROR):
        if key in output:
            return float(output[key])
    return _changed_share(output)


def _changed_share(output: Mapping[str, Any]) -> float:
    size = int(np.prod(output.get("shape") or [0]))
    return float(output.get("values_changed", 0)) / size if size else 0.0


def _beside(value: float, budget: float) -> str:
    """`value` to 4 significant digits, or as many more as it takes not to read as equal to, or on the other side
    of, `budget` (a cosine mean of 0.99996 against a budget of 0.99999 read "1 < budget 1")."""
    return on_its_side(value, budget, 4, "g")


def judge(output: str, record: Mapping[str, Any], budget: DriftBudget) -> tuple[list[Violation], list[float]]:
    """The budgeted metrics of one output's record: its violations and the normalized slack of each check."""
    violations, slacks = [], []
    for metric in BUDGETED[record["kind"]]:
        value = record.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        _, budget_field, higher = CHECKS[metric]
        limit = float(getattr(budget, budget_field))
        slacks.append(normalized_slack(float(value), limit, higher))
        if beyond(float(value), limit, higher):
            where = _where(metric, record)
            violations.append(Violation(output, metric, float(value), limit, higher, where=where, unit=unit_of(record)))
    side = worse_side(record) if set(DECISION_METRICS) & set(BUDGETED[record["kind"]]) else None
    if side is not None:  # a rare side hides in the pooled share; named where the pooled share holds
        slacks.append(normalized_slack(side["agreement"], budget.min_top1_agreement, True))
        pooled = any(violation.metric in DECISION_METRICS for violation in violations)
        if beyond(side["agreement"], budget.min_top1_agreement, True) and not pooled:
            where = side_words(record, side, unit_of(record) if "tokens_judged" in record else "rows")
            violations.append(Violation(output, SIDE_METRIC, side["agreement"], budget.min_top1_agreement, where=where))
    lost = lost_classes(record, budget.min_top1_agreement) if record["kind"] in CLASS_JUDGED else []
    if lost:  # classes INT8 answers otherwise beyond chance, hidden in the pooled agreement: the worst named
        _, rows, agreeing = lost[0]
        judged = CLASS_JUDGED[record["kind"]].replace(TOKENS, unit_of(record))
        where = lost_where(lost, judged, budget.min_top1_agreement)
        violations.append(Violation(output, "class_agreement", agreeing / rows, budget.min_top1_agreement, where=where))
        slacks.append(normalized_slack(agreeing / rows, budget.min_top1_agreement, True))
    fired = int(record.get("quiet_fired") or 0)
    if fired:  # a channel FP32 never turns on, on in INT8: a false detection, refused whatever its size
        cut = record.get("box_threshold", budget.label_threshold)  # a decoded head's: where its boxes are read
        named = "score" if "box_threshold" in record else "--label-threshold"
        where = f"{_where('quiet_fired', record)}, at {named} {cut:g}"
        violations.insert(0, Violation(output, "quiet_fired", float(fired), 0.0, False, where=where))
        slacks.append(-1.0 - math.log10(fired))
    return violations, slacks


# a channel metric -> the record's keys of the axis and the entry its worst value lies at
WORST_AT = {
    "channel_correlation_worst": ("channel_worst_axis", "channel_worst"),
    "channel_error_worst": ("channel_error_worst_axis", "channel_error_worst_channel"),
    "channel_gain_worst": ("channel_gain_worst_axis", "channel_gain_worst_channel"),
    "quiet_error_worst": ("quiet_error_worst_axis", "quiet_error_worst_channel"),
    "quiet_fired": ("quiet_fired_axis", "quiet_fired_channel"),
}
QUIET_METRICS = ("quiet_error_worst", "quiet_fired")  # named wherever they lie: one axis or more


def _where(metric: str, record: Mapping[str, Any]) -> str:
    """E.g. "axis 3, entry 1" for a channel metric of an output judged along more than one axis (`channel_axes`): an
    NHWC map's collapsed channel lies on its last axis, not on the rows of axis 1; "at --label-threshold 0.5" for a
    soft mask's IoU, where its maps were cut, and for a multilabel output's label-set agreement; why a soft mask's
    channel figures were judged (`optimizer.soft_masks.unjudged_words`) before where they lie; "" otherwise."""
    if metric in ("mask_iou_mean", "mask_iou_worst"):
        return mask_cut_words(record)
    if metric in ("psnr_mean", "psnr_worst"):
        return psnr_words(metric, record)
    if metric in ("box_agreement", "box_iou_mean"):
        return box_words(record)
    if metric in ("anchor_decision_agreement", "anchor_far_agreement"):
        return str(record.get(metric.replace("agreement", "at")) or "")
    if metric == "peak_agreement":
        return peak_words(record)
    if record.get("judged_at"):  # a heatmap-gated map's positions (`optimizer.gated_maps`), then where
        rest = {key: value for key, value in record.items() if key != "judged_at"}
        return "; ".join(words for words in (str(record["judged_at"]), _where(metric, rest)) if words)
    if record.get("mask_unjudged"):  # a soft mask judged as a dense map: why, then where
        rest = {key: value for key, value in record.items() if key != "mask_unjudged"}
        return "; ".join(words for words in (str(record["mask_unjudged"]), _where(metric, rest)) if words)
    if metric in ("value_agreement", "class_iou_worst") and record.get("label_threshold") is not None:  # a class map
        return f"at --label-threshold {record['label_threshold']:g}, unsure where no class reaches it"
    if metric == "decision_agreement" and record.get("label_threshold") is not None:  # a probability's (dense)
        return decision_words(record)
    if metric == "flag_agreement" and record.get("flag_cut") is not None:  # a flag logit's, at the threshold's logit
        return decision_words(record)
    if metric == TASK_METRIC and record.get("task_worst") is not None:  # which task, the cut, its near-ties
        return task_where(record) + tie_words(record)
    if metric == "label_set_agreement" and record.get("label_threshold") is not None:  # the cut the sets were read at
        cut = cut_words(record["label_threshold"], record.get("label_cut"), bool(record.get("label_logits")))
        return cut + tie_words(record)  # and the near-ties left out (`optimizer.label_sets`)
    if metric not in WORST_AT or (len(record.get("channel_axes") or ()) < 2 and metric not in QUIET_METRICS):
        return ""
    axis, entry = (record.get(key) for key in WORST_AT[metric])
    return "" if axis is None or entry is None else f"axis {axis}, entry {entry}"


def severity(violation: Violation) -> float:
    """How far past its budget a violation lies, lower worse: values turned NaN and channels INT8 turns on first
    (no slack measures them), then the user's task metric (what users judge by), then the normalized slack."""
    if violation.metric in ("nonfinite_values", "quiet_fired"):
        return -math.inf
    if violation.scope == "metric":
        return -1e300
    return normalized_slack(violation.value, violation.budget, violation.higher_is_better)


def normalized_slack(value: float, limit: float, higher_is_better: bool) -> float:
    """Distance to the budget as a share of the room it allows: 0 at the budget, 1 at no drift (for ≤ 1 metrics). A
    floor above 1 is a PSNR's, in dB (every other floor is a share): its slack is that of the RMS error it allows,
    0.5 at 6 dB over it, -1 at 6 dB under, as a channel error's is."""
    if higher_is_better and limit > 1.0:
        return 1.0 - 10.0 ** ((limit - value) / 20.0)
    if higher_is_better:
        room = 1.0 - limit if limit < 1.0 else 1.0
        return (value - limit) / room
    return (limit - value) / (limit if limit > 0 else 1.0)

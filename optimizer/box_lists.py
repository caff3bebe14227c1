"""An end-to-end detector's box list, judged as boxes: (N, K, 5..7) rows of its top K detections sorted by score,
NMS inside the graph (YOLOv10, YOLO26 — ultralytics ≥ 8.4's default export —, RT-DETR exports).

Its rows are ranks, not anchors: below the few real detections, the tail's near-zero-score boxes reorder, move and
change class under any noise, so a row-by-row (per-channel) measure means nothing there. isbnx's YOLO26n,
(N, 300, 6), read as a raw detection head, refused FP32 itself at channel correlation 0.12 on inputs moved by
0.5/255 (its detections identical: F1 1.0, IoU 0.9996). Here each sample's boxes at a score threshold are
matched FP32 → INT8 and the agreement of the two sets judged (`box_list_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError

BOX_LIST_COLUMNS = (5, 6, 7)  # score + 4 box [+ class [+ batch index]]
BOX_LIST_MIN_ROWS = 10
BOX_MATCH_IOU = 0.5
BOX_SCORE_THRESHOLD = 0.25  # YOLO's default confidence: the boxes' cut where --label-threshold is not given
SORT_SLACK = 1e-6  # a score may rise by this much down the rows and still read as sorted (ties allowed)
Boxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # one sample's corners (B, 4), classes (B,), scores (B,)


@dataclass(frozen=True)
class BoxColumns:
    """Which column of a box list holds what: the score, the class (None with 5 columns), the four box values
    in their order, and whether those are corners (x1, y1, x2, y2) or a centre and a size (cx, cy, w, h)."""

    score: int
    label: int | None
    box: tuple[int, int, int, int]
    corners: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def box_columns(values: np.ndarray) -> BoxColumns | None:
    """The columns of a box list, read from its values (not their positions), or None where it is none.

    A float (N, K ≥ 10, 5..7) output is a box list where one column lies in [0, 1], varies and never rises down
    the K rows in any sample (the score, ties allowed); with 6 or 7 columns, the others hold one or two columns of
    whole numbers, negative only on padding rows (score ≤ 0: class -1 is a common pad) (the class; of two, the batch
    index is the first that is constant in every sample) and four columns of box values (corners where the third and
    fourth never fall below the first and second, else a centre and size). A raw YOLO head (N, 4 + C, A) has more
    columns, its anchors unsorted; DETR's (N, Q, 4) boxes too few; its (N, Q, C) logits are not sorted by any column.

    With at most one box per image every column is "sorted" (a value, then the pads' zeros), so of the sorted
    columns that leave a box list, the score is one that leaves the box as corners: a box clipped at the edge
    (x2 = 1.0) outspans the scores, but taking x2 leaves x1, y1, y2 and the score, no two corner pairs (y2 ≥ x1
    and score ≥ y1 in every row); where none leaves corners (a centre and size), the widest."""
    if values.ndim != 3 or values.shape[2] not in BOX_LIST_COLUMNS or values.shape[1] < BOX_LIST_MIN_ROWS:
        return None
    if not np.issubdtype(values.dtype, np.floating) or not values.size or not np.isfinite(values).all():
        return None
    columns = np.moveaxis(values.astype(np.float64), 2, 0)  # (columns, N, K)
    readings = [_reading(columns, c) for c in range(len(columns)) if sorted_score(columns[c])]
    found = [reading for reading in readings if reading is not None]
    if not found:
        return None
    return max(found, key=lambda reading: (reading.corners, float(np.ptp(columns[reading.score]))))


def _reading(columns: np.ndarray, score: int) -> BoxColumns | None:
    """The box list's columns with `score` the score column, or None where the others hold no class and box."""
    live = columns[score] > 0.0  # rows with a detection; the others pad
    whole = [c for c in range(len(columns)) if c != score and _whole_numbers(columns[c], live)]
    if len(whole) != len(columns) - 5:
        return None  # 5 columns: no class; 6: one class column; 7: a batch index and the class
    label = _class_column(columns, whole)
    box = tuple(c for c in range(len(columns)) if c != score and c not in whole)
    if len(box) != 4 or all(np.ptp(columns[c]) == 0 for c in box):
        return None
    x1, y1, x2, y2 = (columns[c] for c in box)
    return BoxColumns(score, label, box, bool((x2 >= x1).all() and (y2 >= y1).all()))  # type: ignore[arg-type]


def is_box_list(values: np.ndarray) -> bool:
    """Whether `values` is an end-to-end detector's box list (`box_columns`)."""
    return box_columns(values) is not None


def sorted_score(column: np.ndarray) -> bool:
    """(N, K) values in [0, 1], not all equal, that never rise along K in any sample: scores sorted high to low."""
    if column.min() < 0.0 or column.max() > 1.0 or np.ptp(column) == 0:
        return False
    return bool((np.diff(column, axis=1) <= SORT_SLACK).all())


def _whole_numbers(column: np.ndarray, live: np.ndarray) -> bool:
    """Whole numbers, not negative on the `live` rows (a padding row's class may be -1)."""
    return bool((column == np.round(column)).all() and (column[live] >= 0.0).all())


def _class_column(columns: np.ndarray, whole: list[int]) -> int | None:
    """The class among the whole-number columns: the only one, or of two the one that is not a batch index (the
    first constant within every sample; the second where both are)."""
    if len(whole) < 2:
        return whole[0] if whole else None
    constant = [c for c in whole if (columns[c] == columns[c][:, :1]).all()]
    return whole[1] if constant and constant[0] == whole[0] else whole[0]


def named_box_list(name: str, values: np.ndarray) -> None:
    """A one-line refusal where the user named an output a box list (`--output-kind NAME=box_list`) that is none."""
    if box_columns(values) is None:
        raise QuantserveError(
            f"--output-kind {name}=box_list: output '{name}' ({values.dtype}, shape {values.shape}) is no box list: "
            f"(samples, >= {BOX_LIST_MIN_ROWS} rows, 5-7 columns) sorted down the rows by a score in [0, 1], with four "
            "box columns and, with 6 or 7, a class of whole numbers"
        )


def box_list_metrics(
    reference: np.ndarray, candidate: np.ndarray, threshold: float, columns: BoxColumns | None = None
) -> dict[str, Any]:
    """Each sample's boxes with score ≥ `threshold` (`_boxes`), FP32's matched to INT8's (`box_set_metrics`), and the
    columns they were read from (`columns`, where known: a split box list's assembled rows,
    `optimizer.split_box_lists`)."""
    columns = columns or box_columns(reference)
    if columns is None:
        raise QuantserveError(f"output of shape {reference.shape} is no box list (see optimizer.box_lists)")
    samples = (
        (_boxes(fp32, columns, threshold), _boxes(int8, columns, threshold))
        for fp32, int8 in zip(reference, candidate, strict=True)
    )
    return {**box_set_metrics(samples, threshold), "box_columns": columns.to_dict()}


def box_set_metrics(samples: Iterable[tuple[Boxes, Boxes]], threshold: float) -> dict[str, Any]:
    """FP32's boxes of each sample (corners, classes, scores: highest score first) matched greedily, highest score
    first, to the INT8 box of the same class with the highest IoU ≥ BOX_MATCH_IOU not yet taken (`matched_boxes`).
    `box_agreement`: F1 over all samples, 2·matched / (FP32 boxes + INT8 boxes), 1.0 where neither has one;
    `box_iou_mean`: the matched boxes' mean IoU (F1 at IoU 0.5 passes every box moved by a third of its width); as
    information the counts, the matched boxes' mean absolute score change, the worst sample's F1, and a relative
    error (1 − F1 × mean IoU) that ranks candidates. Shared by a box list and a decoded raw head
    (`optimizer.decoded_heads`)."""
    counts_rows: list[tuple[int, int, int]] = []  # FP32 boxes, INT8 boxes, matched
    ious: list[float] = []
    score_errors: list[float] = []
    for ref, new in samples:
        matched = matched_boxes(ref, new)
        counts_rows.append((len(ref[0]), len(new[0]), len(matched)))
        ious += [iou for iou, _ in matched]
        score_errors += [error for _, error in matched]
    counts = np.array(counts_rows, dtype=np.int64).reshape(-1, 3)
    fp32_boxes, int8_boxes, matched_count = (int(total) for total in counts.sum(axis=0))
    shown = counts[:, 0] + counts[:, 1]
    f1 = np.where(shown > 0, 2 * counts[:, 2] / np.maximum(shown, 1), 1.0)
    agreement = 2 * matched_count / (fp32_boxes + int8_boxes) if fp32_boxes + int8_boxes else 1.0
    iou_mean = float(np.mean(ious)) if ious else None
    return {
        "box_agreement": float(agreement),
        "box_iou_mean": iou_mean,
        "box_threshold": float(threshold),
        "boxes_fp32": fp32_boxes,
        "boxes_int8": int8_boxes,
        "boxes_matched": matched_count,
        "box_score_error_mean": float(np.mean(score_errors)) if score_errors else None,
        "box_agreement_worst_sample": float(f1.min()) if len(f1) else 1.0,
        "box_worst_sample": int(f1.argmin()) if len(f1) else None,
        "relative_error": 1.0 - float(agreement) * (iou_mean if iou_mean is not None else 1.0),
    }


def box_words(record: Mapping[str, Any]) -> str:
    """Where a box agreement was read: "score >= 0.25: 58 boxes in FP32, 54 in INT8, 50 matched"; a decoded raw
    head's, after its NMS (`optimizer.decoded_heads`): "score >= 0.25, class-aware NMS at IoU 0.7: …"."""
    nms = f", class-aware NMS at IoU {record['box_nms_iou']:g}" if record.get("box_nms_iou") is not None else ""
    return (
        f"score >= {record['box_threshold']:g}{nms}: {record['boxes_fp32']} boxes in FP32, {record['boxes_int8']} in "
        f"INT8, {record['boxes_matched']} matched"
    )


def _boxes(rows: np.ndarray, columns: BoxColumns, threshold: float) -> Boxes:
    """One sample's boxes at `threshold` or above, highest score first: corners (B, 4), classes (B,), scores (B,).
    Padding rows (score ≤ 0) hold no box, even at threshold 0."""
    rows = rows.astype(np.float64)
    kept = rows[(rows[:, columns.score] >= threshold) & (rows[:, columns.score] > 0.0)]
    kept = kept[np.argsort(-kept[:, columns.score], kind="stable")]
    box = kept[:, list(columns.box)]
    if not columns.corners:  # centre and size -> corners
        box = np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
    labels = kept[:, columns.label] if columns.label is not None else np.zeros(len(kept))
    return box, labels, kept[:, columns.score]


def matched_boxes(ref: Boxes, new: Boxes) -> list[tuple[float, float]]:
    """Each FP32 box matched to an INT8 one (`box_set_metrics`: greedy, highest FP32 score first): the pair's IoU
    and absolute score change."""
    iou = np.where(ref[1][:, None] == new[1][None, :], corner_iou(ref[0], new[0]), 0.0)
    matched = []
    for row, score in zip(iou, ref[2], strict=True):  # FP32's boxes in score order
        best = int(np.argmax(row)) if row.size else -1
        if best >= 0 and row[best] >= BOX_MATCH_IOU:
            matched.append((float(row[best]), abs(float(new[2][best]) - float(score))))
            iou[:, best] = 0.0  # taken
    return matched


def corner_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of corner boxes (A, 4) and (B, 4); 0 where the union is empty."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=2)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=1)  # type: ignore[no-any-return]

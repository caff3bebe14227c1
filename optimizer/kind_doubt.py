"""The doubt on how an output's rows were read (`optimizer.row_kinds`): a classification read off raw values that
may be coordinates or an embedding's features, an embedding that may be a classifier's logits, sigmoid scores that
may be ReLU features, raw multi-label logits that may be features or values in a unit, unit-length rows judged per
value for pointing all one way. Each doubt is one line naming the override (or the --metric that judges the output
as its task does); `optimizer.drift` records it with the output's drift.
"""

from __future__ import annotations

import numpy as np

from optimizer.row_kinds import (
    SIGMOID_MAX_ZERO_SHARE,
    cosines_to_mean,
    embedding_width,
    independent_scores,
    peaked_softmax,
    row_form,
    top_answer_share,
    tuple_correlations,
    usable_labels,
)
from optimizer.typed_kinds import is_typed
from quantserve.metrics import probabilities

MAX_COORDINATES = 4096  # values a sample beyond which a "classification" output is not doubted (a face mesh: 1 404)
DOUBT_ROWS = 512  # rows the doubt is read from
# median cosine of the rows, each less its own mean, to their mean row, above which "logits" may be coordinates
ALIKE_LOGIT_ROWS = 0.95
# the median row's gap between its two largest values over the row's std, below which "logits" may be coordinates
NEAR_TIE_GAP = 0.1
# at an embedding's width, one feature the largest on this share of rows or more, yet read as logits: doubted
DOUBTED_ANSWER_SHARE = 0.25
# an "embedding" whose columns at one place of a k-tuple correlate this much, and this much more than the others
TUPLE_DOUBT_CORRELATION = 0.1


def zeros_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Why scores read off saturated rows with more than SIGMOID_MAX_ZERO_SHARE exact zeros (`independent_scores`)
    may be a misreading, with the override; "" otherwise. A ReLU's features, cut into [0, 1], could look so."""
    if kind not in ("classification", "multilabel") or values.ndim != 2 or not len(values):
        return ""
    rows = values[:DOUBT_ROWS].astype(np.float64)
    zeros = float(np.mean(rows == 0.0))
    if zeros <= SIGMOID_MAX_ZERO_SHARE or not independent_scores(rows):
        return ""
    return (
        f"read as per-class sigmoid scores although {zeros * 100:.0f} % of its values are exactly 0, as a ReLU's "
        f"features are (ONNX Runtime's Sigmoid gives 0 below -17.5): if they are features, pass --output-kind "
        f"{name}=embedding"
    )


def kind_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Why a classification read off raw values may be a misreading, with the override; "" where it is not in doubt.

    Raw values whose softmax commits to a class read as logits whatever their unit: MediaPipe's hand landmarks
    (63 coordinates in pixels) and iris contours (213) were judged by the "top-1 agreement" of their largest
    coordinate and refused for it (6 of 300 rows had their two largest within 1 px). Two signs, either enough:
    logits mean the same shifted by a constant, so a classifier's rows, each less its own mean, point different ways
    (its answers differ); coordinates near a fixed layout point where their mean row does (median cosine 0.965 and
    0.993 for those two). And a classifier's top class stands clear of the next: the median row's gap between its two
    largest values is 1.65 of the row's std on magika's 214 logits (0.23-1.75 on synthetic 10- to 1000-way logits,
    pure noise included), while coordinates crowd there: 0.037 on MediaPipe's pose landmarks (195 values in pixels,
    median cosine 0.941; a 0.5 px jitter of FP32 moves its "top-1" on 7.5 % of rows), 0.066 on the iris contours.
    Judging them as classification stays (a classifier mistaken for a dense map could ship with rare answers
    flipped under a correlation that barely moves); the line names the doubt and how to say what the output is.
    Coordinates whose columns move together by their place in a tuple (every x, every y: a hand moving) are read as
    dense before any of this (`row_kinds.coordinate_tuples`, session 67): the hand model's landmarks on photos with
    no hand committed the softmax to the wrist's y and passed at top-1 1.0 with no doubt said.
    Signed rows at an embedding's width are doubted both ways where one feature is the largest on many rows
    (`outlier_feature`, `_width_doubt`); scores in [0, 1] with many exact zeros, as ReLU features (`zeros_doubt`);
    raw values read as multi-label logits, as features could be (`logits_doubt`); an embedding whose columns move
    together by their place in a tuple, as weakly moving coordinates do (`tuple_doubt`); unit-length rows read as
    regressions for pointing all one way, why they were not judged by cosine (`alike_unit_doubt`)."""
    if (
        doubt := zeros_doubt(name, kind, values)
        or logits_doubt(name, kind, values)
        or alike_unit_doubt(name, kind, values)
    ):
        return doubt
    if kind not in ("classification", "embedding") or values.ndim != 2 or len(values) < 2:
        return ""
    if kind == "embedding":
        return _width_doubt(name, kind, values) or tuple_doubt(name, values)
    if not 3 <= values.shape[1] <= MAX_COORDINATES:
        return _width_doubt(name, kind, values)  # wider rows are a vocabulary's or a class list's, never coordinates
    rows = values[:DOUBT_ROWS].astype(np.float64)  # measured on every candidate: its first rows say it
    if row_form(rows) != "raw":
        return ""
    centred = rows - rows.mean(axis=1, keepdims=True)
    if np.median(cosines_to_mean(centred)) >= ALIKE_LOGIT_ROWS:
        sign = "its rows all sit near one pattern"
    elif (gap := top_two_gap(rows)) < NEAR_TIE_GAP:
        sign = (
            f"its two largest values lie {gap:.2g} of a row's std apart on the median row (a classifier's stand clear)"
        )
    else:
        return _width_doubt(name, kind, values)
    override = f"if they are regressions, pass --output-kind {name}=dense"
    return f"judged as a classifier's logits; {sign}, as coordinates do: {override}"


def alike_unit_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Why unit-length rows read as regressions (`row_kinds.classification_or_embedding`: all pointing near their
    mean row) were judged per value and not as an embedding, with what judges a neighbour search; "" otherwise or
    where the user typed the kind. human-models' mobilefacenet (faces 0.001 apart by cosine) was refused on "worst
    channel correlation -0.7064" with no word of why a face embedding was judged per value (session 69)."""
    if kind != "dense" or is_typed(kind) or values.ndim != 2 or len(values) < 2:
        return ""
    rows = values[:DOUBT_ROWS].astype(np.float64)
    if not np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-2):
        return ""
    alike = float(np.median(cosines_to_mean(rows)))
    return (
        f"judged per value, not by a row's cosine: its unit-length rows all point near their mean row (median cosine "
        f"{alike:.5f}), so a cosine near 1 leaves room to move a row farther than the rows lie from one another; if "
        f"it serves a neighbour search, judge it by that search: --metric package.module:function"
    )


def _width_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Signed rows at an embedding's width whose softmax commits, one feature the largest on DOUBTED_ANSWER_SHARE of
    the rows or more: judged as logits (labels of its classes given, or that feature short of OUTLIER_ANSWER_SHARE),
    they may be an embedding's features; judged as an embedding, they may be a classifier's logits on rows that
    mostly answer one class. "" otherwise."""
    if not embedding_width(values.shape[1]) or values.shape[1] > MAX_COORDINATES:
        return ""
    rows = values[:DOUBT_ROWS].astype(np.float64)
    share = top_answer_share(rows)
    if rows.min() >= 0.0 or share < DOUBTED_ANSWER_SHARE or not peaked_softmax(rows):
        return ""
    sign = (
        f"its {rows.shape[1]} values are an embedding's width and one of them is the largest on {share * 100:.0f} % "
        "of rows"
    )
    if kind == "classification":
        return f"judged as a classifier's logits; {sign}: if it is an embedding, pass --output-kind {name}=embedding"
    return (
        f"judged as an embedding; {sign}, as a feature of large scale is: if they are class logits, pass "
        f"--output-kind {name}=classification (or labels of its classes)"
    )


def tuple_doubt(name: str, values: np.ndarray) -> str:
    """Why rows read as an embedding may be coordinates, with the override; "" otherwise. BlazePose's world
    landmarks (N, 117) = 39 × (x, y, z) in metres about the hips were read as an embedding and refused on a cosine
    of -0.16 with no word of `dense`: their same-coordinate columns correlate 0.19 over the rows, under
    `coordinate_tuples`' 0.4 that reads them dense outright. An embedding's features have no period (the two medians
    agree within a few hundredths), so a gap of TUPLE_DOUBT_CORRELATION is said, and the reading stays."""
    rows = values[:DOUBT_ROWS].astype(np.float64)
    for size, within, across in tuple_correlations(rows):
        if within >= TUPLE_DOUBT_CORRELATION and within - across >= TUPLE_DOUBT_CORRELATION:
            return (
                f"judged as an embedding; its columns {size} apart move together (median correlation {within:.2f} "
                f"against {across:.2f} for the others), as interleaved coordinates do: if they are coordinates or "
                f"values in a unit, pass --output-kind {name}=dense"
            )
    return ""


def top_two_gap(rows: np.ndarray) -> float:
    """Median over rows that vary of (largest - second largest) / the row's std (`kind_doubt`; inf: none vary)."""
    spread = rows.std(axis=1)
    varied = rows[spread > 0]
    if not len(varied):
        return float("inf")
    top = np.sort(varied, axis=1)[:, -2:]
    return float(np.median((top[:, 1] - top[:, 0]) / spread[spread > 0]))


def logits_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """How a multilabel output of raw values (not scores in [0, 1]) was read, with the override; "" otherwise."""
    if kind != "multilabel" or values.ndim != 2 or not values.size or probabilities(values):
        return ""
    override = (  # a (N, 96) forecast in °C, crossing 0 at midday, read as tags and advised `embedding`
        f"if they are features, pass --output-kind {name}=embedding; if values in a unit (a forecast), "
        f"--output-kind {name}=dense"
    )
    return f"read as raw multi-label logits, a class on at logit 0: {override}"


def unlabelled_width_doubt(name: str, kind: str, values: np.ndarray, labels: np.ndarray | None, failed: bool) -> str:
    """A classifier's logits read off signed rows at an embedding's width, with no labels of their classes, that
    missed the budget: they may be an embedding's features, whose largest feature means nothing. human-models'
    mobileface (256 signed values a face) was refused on the "top-1 agreement" 0.9633 of its largest value, no word
    of `embedding`; judged as one, with a retrieval --metric, it held 0.690 → 0.687 (session 69). The reading
    stays (an unlabelled 256-way classifier reads alike); the line names the override. Not for a kind the user
    typed."""
    if not failed or kind != "classification" or is_typed(kind) or values.ndim != 2 or not len(values):
        return ""
    if not embedding_width(values.shape[1]) or usable_labels(labels, values) or values.min() >= 0.0:
        return ""
    return (
        f"judged as a classifier's logits with no labels of its classes; its {values.shape[1]} signed values are an "
        f"embedding's width: if it is an embedding, pass --output-kind {name}=embedding"
    )

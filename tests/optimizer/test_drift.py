"""Per-output drift: kinds inferred from FP32 values, the metrics of each kind, the budget's verdict."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.box_lists import box_words
from optimizer.drift import measure_drift
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.drift_checks import Violation
from optimizer.drift_evidence import (
    evidence_refusal,
    evidence_rows,
    evidence_shortfall,
    rows_to_show,
    thin_evidence,
    thin_evidence_line,
)
from optimizer.output_kinds import infer_output_kinds, parse_output_kinds
from optimizer.user_metric import UserMetric, add_user_metric
from quantserve.errors import QuantserveError

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Each test draws from the same seed whatever ran before it (alone, `-k`, or another worker's share)."""
    global RNG
    RNG = np.random.default_rng(0)


def _detection(anchors_last: bool = True) -> np.ndarray:
    """YOLO-style head: 4 box rows (0–320) + 3 class-score rows (0–1) over 200 anchors."""
    boxes = RNG.uniform(0, 320, (6, 4, 200))
    scores = RNG.uniform(0, 1, (6, 3, 200))
    head = np.concatenate([boxes, scores], axis=1).astype(np.float32)
    return head if anchors_last else head.transpose(0, 2, 1)


def _raw_detection() -> np.ndarray:
    """A raw YOLOX head (N, anchors, 4 + 1 + 1): box regressions of a few units either side of 0, sigmoid scores."""
    boxes = RNG.normal(0, 1.2, (6, 500, 4))
    scores = 1 / (1 + np.exp(-RNG.normal(-2, 2, (6, 500, 2))))
    return np.concatenate([boxes, scores], axis=2).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _unit_rows(n: int, d: int) -> np.ndarray:
    x = RNG.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pitch_bins(n: int, bins: int = 360) -> np.ndarray:
    """torchcrepe-like sigmoid scores: one pitch bin per row near 1, its neighbours blurred, the rest near 0."""
    distance = np.arange(bins)[None, :] - RNG.integers(20, bins - 20, size=(n, 1))
    return 1 / (1 + np.exp(-(3.0 - 11.0 * (1 - np.exp(-(distance**2) / 8.0)))))


def _tags(n: int, classes: int = 40) -> np.ndarray:
    """A tagger's sigmoid scores: about 3 of 40 tags on per row, scattered, one of them clearly the strongest."""
    logits = RNG.normal(-4.0, 1.0, size=(n, classes))
    for row in logits:
        on = RNG.choice(classes, size=3, replace=False)
        row[on] = [4.0, 1.0, 0.6]
    return 1 / (1 + np.exp(-logits))


def _committed(logits: np.ndarray) -> np.ndarray:
    """Logits whose softmax puts most of the mass on one class at each position."""
    top = RNG.integers(0, logits.shape[-1], size=logits.shape[:-1])
    np.put_along_axis(logits, top[..., None], np.take_along_axis(logits, top[..., None], -1) + 8.0, axis=-1)
    return logits


def test_each_kind_is_inferred_from_shape_and_values() -> None:
    reference = {
        "logits": RNG.normal(size=(16, 10)) * 5,  # a trained classifier commits: its softmax is peaked
        "box_deltas": RNG.normal(size=(16, 4)) * 0.1,  # regressions: no class stands out
        "landmarks": RNG.uniform(0.2, 0.8, size=(16, 10)),
        "probabilities": np.full((16, 200), 1 / 200),
        "sentence": RNG.normal(size=(16, 384)),
        "imagenet_logits": _committed(RNG.normal(size=(16, 1000))),  # a trained head of 1000 classes commits
        "pooled_relu": np.maximum(RNG.normal(size=(16, 512)), 0.0) * 3 + _committed(np.zeros((16, 512))),
        "unit": _unit_rows(16, 8),
        "ctc": _committed(RNG.normal(size=(16, 40, 97))),  # a trained CTC head commits at each position
        "hidden_states": RNG.normal(size=(16, 40, 97)),  # a vector per frame: no class takes the mass
        "forecast": RNG.normal(size=(16, 24, 7)),  # 7 features over 24 future steps: regressions, no class
        "yolo": _detection(),
        "yolo_t": _detection(anchors_last=False),
        "yolox_raw": _raw_detection(),
        "ctc_probabilities": _softmax(RNG.normal(size=(16, 40, 6))),
        "ctc_log_probabilities": np.log(_softmax(RNG.normal(size=(16, 40, 6)))),
        "anchor_scores": RNG.uniform(size=(2, 1200, 10)),  # sigmoid class scores per anchor
        "pitch_bins": _pitch_bins(16),  # independent sigmoid scores per class, one of them standing out
        "tags": _tags(16),  # several classes on per row, scattered: a tagger
        "relu_features": np.maximum(RNG.normal(size=(16, 512)), 0.0) / 10,  # in [0, 1], half of it zeros
        "anchor_box_bins": RNG.normal(size=(2, 1200, 32)),  # raw box-distribution logits per anchor
        "depth": RNG.normal(size=(16, 1, 8, 8)),
        "score": RNG.normal(size=(16,)),
        "label": RNG.integers(0, 10, size=16),
        "mask": RNG.normal(size=(16, 8)) > 0,
        "segmentation": RNG.integers(0, 4, size=(4, 1, 8, 8)),
    }
    assert infer_output_kinds(reference) == {
        "logits": "classification",
        "box_deltas": "dense",
        "landmarks": "dense",
        "probabilities": "classification",
        "sentence": "embedding",
        "imagenet_logits": "classification",
        "pooled_relu": "embedding",  # unsigned: features, however peaked
        "unit": "embedding",
        "ctc": "sequence",
        "hidden_states": "token_embedding",
        "forecast": "dense",
        "yolo": "detection",
        "yolo_t": "detection",
        "yolox_raw": "detection",
        "ctc_probabilities": "sequence",
        "ctc_log_probabilities": "sequence",
        "anchor_scores": "dense",
        "pitch_bins": "classification",
        "tags": "multilabel",
        "relu_features": "embedding",
        "anchor_box_bins": "dense",
        "depth": "dense",
        "score": "dense",
        "label": "ids",
        "mask": "ids",
        "segmentation": "mask",
    }


def test_a_per_anchor_dense_map_is_judged_per_class_channel() -> None:
    scores = RNG.uniform(size=(4, 1200, 10))
    candidate = scores.copy()
    candidate[..., 3] = 0.0  # one class's scores collapsed
    report = measure_drift({"scores": scores}, {"scores": candidate}, {"scores": "dense"}, DriftBudget())
    assert report.outputs["scores"]["channels"] == 10 and report.outputs["scores"]["channel_worst"] == 3
    assert [v.metric for v in report.violations] == [
        "channel_correlation_worst",
        "channel_error_worst",
        "anchor_decision_agreement",  # its clear positives lost too (`optimizer.anchor_scores`, session 44)
        "anchor_far_agreement",  # to nothing: each a detection lost whole
    ]
    assert "channel 3 of axis 2: INT8 keeps 0 at" in report.violations[2].where


def test_integer_outputs_are_judged_by_unchanged_ids() -> None:
    reference = RNG.integers(0, 10, size=(100, 3))
    candidate = reference.copy()
    candidate[:2, 1] += 1  # two samples with one changed id each
    report = measure_drift(
        {"ids": reference}, {"ids": candidate}, infer_output_kinds({"ids": reference}), DriftBudget()
    )
    assert report.outputs["ids"]["id_agreement"] == pytest.approx(0.98)
    assert report.outputs["ids"]["values_changed"] == 2
    assert [v.line() for v in report.violations] == ["output 'ids': id agreement 0.98 < budget 0.99"]
    assert measure_drift({"ids": reference}, {"ids": reference.copy()}, {"ids": "ids"}, DriftBudget()).holds


def test_labels_that_match_the_argmax_make_a_wide_output_a_classifier() -> None:
    logits = RNG.normal(size=(32, 1000))
    assert infer_output_kinds({"out": logits}) == {"out": "embedding"}
    labels = logits.argmax(axis=1)
    assert infer_output_kinds({"out": logits}, labels=labels) == {"out": "classification"}


def test_overrides_win_and_bad_ones_are_one_line() -> None:
    reference = {"out": RNG.normal(size=(8, 10))}
    assert infer_output_kinds(reference, {"out": "dense"}) == {"out": "dense"}
    with pytest.raises(QuantserveError, match=r"--output-kind other=dense: no output 'other' \(outputs: out\)"):
        infer_output_kinds(reference, {"other": "dense"})
    with pytest.raises(QuantserveError, match="unknown kind; choose one of: classification, multilabel, embedding"):
        infer_output_kinds(reference, {"out": "boxes"})
    assert parse_output_kinds(["a=dense", "b=sequence"]) == {"a": "dense", "b": "sequence"}
    assert parse_output_kinds("a=dense,b=sequence") == {"a": "dense", "b": "sequence"}  # QUANTSERVE_OUTPUT_KIND
    with pytest.raises(QuantserveError, match="--output-kind 'a': expected NAME=KIND"):
        parse_output_kinds(["a"])


def test_a_collapsed_score_channel_fails_although_whole_tensor_cosine_is_near_one() -> None:
    reference = _detection()
    candidate = reference.copy()
    candidate[:, 5, :] = 0.0  # one class's scores all zero, as one shared UINT8 scale does
    report = measure_drift({"output0": reference}, {"output0": candidate}, {}, DriftBudget())
    record = report.outputs["output0"]
    assert record["kind"] == "detection"
    assert record["cosine_mean"] > 0.999 and record["max_abs_diff"] < 1.0  # the figures that hid it
    assert record["channel_correlation_worst"] == 0.0 and record["channel_worst"] == 5
    assert not report.holds and report.margin() < 0
    # pixel boxes beside [0, 1] scores: its decoded boxes too, its channels where read (`optimizer.decoded_heads`)
    where, boxes = record["judged_at"], box_words(record)
    assert where.startswith("box channels at the ") and "score channels at the 1200 where" in where
    assert [v.line() for v in report.violations] == [
        f"output 'output0': box agreement (F1 at IoU 0.5) ({boxes}) {record['box_agreement']:.4g} < budget 0.95",
        f"output 'output0': worst channel correlation ({where}) 0 < budget 0.98",
        f"output 'output0': worst channel error (RMS / FP32 std) ({where}) {record['channel_error_worst']:.4g} > "
        "budget 0.25",
    ]
    assert "class-aware NMS at IoU 0.7" in boxes
    assert record["channel_error_worst"] > 1 and record["channel_error_worst_channel"] == 5


def test_a_faithful_model_holds_every_kind() -> None:
    reference = {
        "logits": RNG.normal(size=(16, 10)) * 5,  # a trained classifier commits: its softmax is peaked
        "box_deltas": RNG.normal(size=(16, 4)) * 0.1,  # regressions: no class stands out
        "landmarks": RNG.uniform(0.2, 0.8, size=(16, 10)),
        "sentence": _unit_rows(16, 64),
        "ctc": _committed(RNG.normal(size=(16, 20, 12))),
        "yolo": _detection(),
    }
    candidate = {name: value * 1.0001 for name, value in reference.items()}
    report = measure_drift(reference, candidate, infer_output_kinds(reference), DriftBudget())
    assert report.holds and report.violations == []
    assert 0.9 < report.margin() <= 1.0
    assert report.outputs["ctc"]["sequence_agreement"] == 1.0
    assert report.outputs["sentence"]["neighbours_unchanged"] == 1.0
    assert report.to_dict()["holds"] is True


def test_classification_with_labels_is_judged_by_agreement_and_accuracy_drop() -> None:
    reference = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] + 0.01
    candidate = reference.copy()
    candidate[0] = [0.0, 1.0, 0.0, 0.0]  # one sample flips from its (right) class 0 to 1
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    report = measure_drift({"p": reference}, {"p": candidate}, {"p": "classification"}, DriftBudget(), labels)
    record = report.outputs["p"]
    assert (record["top1_agreement"], record["fp32_accuracy"], record["accuracy"]) == (0.9, 1.0, 0.9)
    assert record["accuracy_drop_points"] == pytest.approx(10.0)
    assert [v.metric for v in report.violations] == ["top1_agreement", "accuracy_drop_points"]
    assert report.violations[1].line() == "output 'p': accuracy drop (points) 10 > budget 1"


def test_embedding_budget_reads_cosine_mean_and_worst() -> None:
    reference = _unit_rows(20, 64)
    candidate = reference.copy()
    candidate[3] = _unit_rows(1, 64)[0]  # one sample's vector replaced
    report = measure_drift({"e": reference}, {"e": candidate}, {"e": "embedding"}, DriftBudget())
    assert [v.metric for v in report.violations][-1] == "cosine_worst"
    assert report.outputs["e"]["cosine_worst"] < 0.5


def test_many_coordinates_near_fixed_points_are_regressions_not_an_embedding() -> None:
    """98 landmarks' (x, y) in [0, 1]: every row points where the mean face does, so a row's cosine to FP32 reads
    0.998 with one coordinate zeroed and another stuck; judged per value, the output is refused."""
    mean_face = RNG.uniform(0.2, 0.8, size=196)
    landmarks = mean_face + 0.03 * RNG.normal(size=(256, 196))
    features = np.maximum(RNG.normal(size=(256, 196)), 0.0)  # ReLU features: rows of their own directions
    assert infer_output_kinds({"marks": landmarks, "features": features}) == {
        "marks": "dense",
        "features": "embedding",
    }
    candidate = landmarks + 0.002 * RNG.normal(size=landmarks.shape)
    assert measure_drift({"m": landmarks}, {"m": candidate}, {}, DriftBudget()).holds
    candidate[:, 7], candidate[:, 8] = mean_face[7], 0.0
    report = measure_drift({"m": landmarks}, {"m": candidate}, {}, DriftBudget())
    assert report.outputs["m"]["cosine_mean"] > 0.99, "whole-row cosine cannot see it"
    assert report.outputs["m"]["channel_worst"] in (7, 8) and report.violations[0].metric == "channel_correlation_worst"


def test_values_of_fixed_different_scales_are_regressions_whatever_their_argmax() -> None:
    """A forecast's pressure (hPa) dwarfs its temperature and a box's x2/y2 its x1/y1: the softmax commits, the
    argmax never changes, and judged by that argmax a zeroed temperature or a halved y1 passed."""
    rows = 128
    forecast = np.stack(
        [
            20 + 5 * RNG.normal(size=(rows, 24)),
            60 + 10 * RNG.normal(size=(rows, 24)),
            1000 + 5 * RNG.normal(size=(rows, 24)),
        ],
        axis=-1,
    )
    x1, y1 = RNG.uniform(0, 100, rows), RNG.uniform(0, 100, rows)
    boxes = np.stack([x1, y1, x1 + RNG.uniform(20, 80, rows), y1 + RNG.uniform(20, 80, rows)], axis=1)
    logits = RNG.normal(size=(rows, 5)) * 3.0  # a classifier's: the argmax goes everywhere
    kinds = infer_output_kinds({"forecast": forecast, "boxes": boxes, "logits": logits})
    assert kinds == {"forecast": "dense", "boxes": "dense", "logits": "classification"}
    broken_forecast, broken_boxes = forecast.copy(), boxes.copy()
    broken_forecast[..., 0], broken_boxes[:, 1] = 0.0, boxes[:, 1] * 0.5
    report = measure_drift(
        {"forecast": forecast, "boxes": boxes},
        {"forecast": broken_forecast, "boxes": broken_boxes},
        kinds,
        DriftBudget(),
    )
    assert {v.output for v in report.violations} == {"forecast", "boxes"}


def test_sequence_budget_reads_decoded_agreement() -> None:
    reference = RNG.normal(size=(10, 15, 6))
    candidate = reference.copy()
    candidate[0, 3] = -reference[0, 3]  # one position of one sample gets another argmax
    report = measure_drift({"ctc": reference}, {"ctc": candidate}, {"ctc": "sequence"}, DriftBudget())
    assert report.outputs["ctc"]["sequence_agreement"] == pytest.approx(0.9)
    assert report.outputs["ctc"]["located_agreement"] == pytest.approx(0.9)  # read off the values: in place too
    (violation,) = report.violations  # ... not named again where the text already missed
    assert violation == Violation("ctc", "sequence_agreement", violation.value, 0.98, hint=violation.hint)
    assert violation.line().startswith("output 'ctc': decoded-sequence agreement 0.9 < budget 0.98 (read as CTC")


def test_a_channel_constant_in_fp32_is_skipped() -> None:
    reference = RNG.normal(size=(20, 3, 4, 4))
    reference[:, 2] = 0.5
    candidate = reference.copy()
    candidate[:, 2] = 0.25
    report = measure_drift({"m": reference}, {"m": candidate}, {}, DriftBudget())
    record = report.outputs["m"]
    assert (record["kind"], record["channels"], record["channels_constant"]) == ("dense", 3, 1)
    # judged along the columns too (channels may lie last), where the shift shows a little but holds
    assert report.holds and record["channel_worst_axis"] == 3


@pytest.mark.parametrize(
    ("shape", "channel_axis", "judged_axis"),
    [
        ((64, 128, 16), 1, 2),  # conv1d features (N, C, L), more channels than positions
        ((64, 16, 16, 8), 3, 1),  # a Keras export's (N, H, W, C) map
        ((64, 8, 16, 16), 1, 1),  # ONNX's own (N, C, H, W)
        ((64, 24, 6), 2, 2),  # a forecast's (N, horizon, features)
        ((64, 1, 20, 32), 3, 1),  # a melspectrogram's (N, 1, T, bands): a single map of features
        ((64, 1, 32, 20), 2, 1),  # the same, bands first
        ((64, 16, 12, 1), 2, 1),  # a Keras single map (N, H, W, 1): a column collapsed
    ],
)
def test_a_collapsed_channel_shows_whichever_axis_holds_the_channels(
    shape: tuple[int, ...], channel_axis: int, judged_axis: int
) -> None:
    scales = RNG.uniform(0.5, 3.0, size=shape[channel_axis])
    offsets = RNG.uniform(-2.0, 2.0, size=shape[channel_axis])
    broadcast = [1] * len(shape)
    broadcast[channel_axis] = shape[channel_axis]
    reference = RNG.normal(size=shape) * scales.reshape(broadcast) + offsets.reshape(broadcast)
    candidate = reference + 0.01 * RNG.normal(size=shape)
    dense = {"f": "dense"}  # named: what is judged here, not how the kind is inferred
    faithful = measure_drift({"f": reference}, {"f": candidate}, dense, DriftBudget())
    assert faithful.holds, [v.line() for v in faithful.violations]
    wide = [axis for axis in range(1, len(shape)) if shape[axis] > 1]
    assert faithful.outputs["f"]["channel_worst_axis"] in (1, wide[0], wide[-1])
    index = [slice(None)] * len(shape)
    index[channel_axis] = 5
    candidate[tuple(index)] = 0.0
    report = measure_drift({"f": reference}, {"f": candidate}, dense, DriftBudget())
    record = report.outputs["f"]
    assert record["channels"] == shape[judged_axis]
    assert (record["channel_correlation_worst"], record["channel_worst"]) == (0.0, 5)
    assert record["channel_worst_axis"] == channel_axis
    # a column zeroed also rescales the rows across it that still follow FP32: their gain may be named too
    named = [v.metric for v in report.violations if v.metric != "channel_gain_worst"]
    assert named == ["channel_correlation_worst", "channel_error_worst"]


def test_a_single_map_is_judged_by_rows_and_columns_and_a_still_border_is_not_judged() -> None:
    reference = np.zeros((32, 1, 24, 24))
    reference[:, :, 4:20, 4:20] = RNG.uniform(size=(32, 1, 16, 16))  # a map whose border is always background
    candidate = reference + 0.005 * RNG.normal(size=reference.shape)
    report = measure_drift({"map": reference}, {"map": candidate}, {}, DriftBudget())
    record = report.outputs["map"]
    assert report.holds and record["channels"] == 1 and record["channel_axes"] == {"1": 1, "2": 24, "3": 24}
    assert record["channel_correlation_worst"] > 0.99
    features = np.zeros((32, 6, 24))
    features[:, :, 2:22] = RNG.normal(size=(32, 6, 20))  # two still positions at each end of every channel
    noisy = features + 0.005 * RNG.normal(size=features.shape)
    record = measure_drift({"f": features}, {"f": noisy}, {}, DriftBudget()).outputs["f"]
    assert record["channel_correlation_worst"] > 0.99 and record["channel_error_worst"] < 0.01


def test_budget_values_are_checked() -> None:
    with pytest.raises(QuantserveError, match=r"--min-cosine-mean 1.5: expected a number in \[0, 1\]"):
        DriftBudget(min_cosine_mean=1.5)
    assert BudgetExceeded("x").exit_code == 1


def test_user_metric_compared_side_by_side() -> None:
    labels = np.array([0, 1, 1, 0])
    reference = {"logits": np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])}
    candidate = {"logits": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])}

    def accuracy(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
        return float(np.mean(outputs["logits"].argmax(axis=1) == labels))

    report = measure_drift(reference, candidate, {"logits": "dense"}, DriftBudget(min_channel_correlation=0.0))
    add_user_metric(report, UserMetric("tests:accuracy", accuracy), reference, candidate, labels, DriftBudget())
    assert report.user_metric is not None
    assert (report.user_metric["fp32"], report.user_metric["int8"]) == (1.0, 0.75)
    assert report.user_metric["relative_drop"] == pytest.approx(0.25)
    # the task metric the user named leads the refusal line: it is what users judge by (session 40)
    assert report.violations[0].line() == "metric 'tests:accuracy': relative drop 0.25 > budget 0.01"


def test_a_refusal_line_never_rounds_a_value_onto_its_budget() -> None:
    line = Violation("y", "cosine_mean", 0.999962, 0.99999).line()
    assert line == "output 'y': cosine mean 0.99996 < budget 0.99999", line
    assert Violation("y", "cosine_mean", 0.9983, 0.99995).line().endswith("0.9983 < budget 0.99995")
    assert Violation("s", "channel_correlation_worst", -0.26059, 0.98).line().endswith("-0.2606 < budget 0.98")


def test_an_agreement_that_holds_on_too_few_rows_says_how_many_would_show_it() -> None:
    reference = RNG.normal(size=(32, 10)) * 5
    report = measure_drift({"p": reference}, {"p": reference.copy()}, {"p": "classification"}, DriftBudget())
    assert report.holds
    (entry,) = thin_evidence(report, DriftBudget(), rows=32)
    assert (entry["output"], entry["metric"], entry["value"], entry["rows"]) == ("p", "top1_agreement", 1.0, 32)
    assert entry["lower_bound"] == pytest.approx(0.922, abs=1e-3)  # Wilson, one-sided 95 %: 32 of 32
    assert entry["rows_needed"] == 268  # n / (n + 1.645²) ≥ 0.99
    assert thin_evidence_line(entry) == (
        "output 'p': top-1 agreement 1 over 32 held-out rows shows only ≥ 0.922 (95 % lower bound), "
        "not the budget's 0.99; about 268 rows would (--eval)"
    )
    many = np.tile(reference, (10, 1))
    report = measure_drift({"p": many}, {"p": many.copy()}, {"p": "classification"}, DriftBudget())
    assert thin_evidence(report, DriftBudget(), rows=len(many)) == []  # 320 of 320 show ≥ 0.99


def test_a_budget_too_few_rows_cannot_show_is_known_from_the_kinds_alone() -> None:
    """Full agreement on n rows shows n / (n + 1.645²): 0.99 needs 268 rows, 0.98 needs 133; a floor of 0 needs
    none and a floor of 1 no count can show (judged on the rows seen). Maps and embeddings need no count."""
    assert (rows_to_show(0.99), rows_to_show(0.98), rows_to_show(0.0), rows_to_show(1.0)) == (268, 133, 0, 0)
    assert evidence_rows(DriftBudget()) == 268 and evidence_rows(DriftBudget(min_top1_agreement=0.9)) == 133
    kinds = {"p": "classification", "s": "sequence", "e": "embedding", "m": "dense", "i": "ids"}
    short = evidence_shortfall(kinds, DriftBudget(), rows=200)  # enough for the sequence's 133, not for 268
    assert [(e["output"], e["metric"], e["rows_needed"]) for e in short] == [
        ("p", "top1_agreement", 268),
        ("i", "id_agreement", 268),
    ]
    assert evidence_shortfall(kinds, DriftBudget(), rows=268) == []
    assert evidence_shortfall({"e": "embedding", "m": "dense"}, DriftBudget(), rows=2) == []
    assert evidence_refusal(evidence_shortfall({"s": "sequence"}, DriftBudget(), rows=32)) == (
        "too few held-out rows to show the drift budget: output 's': decoded-sequence agreement ≥ 0.98 needs at "
        "least 133 held-out rows (95 % lower bound, every row agreeing), 32 given; nothing written: pass --eval "
        "with more rows, or lower the budget (or --allow-thin-evidence to judge the rate seen)"
    )


def test_a_shifted_or_rescaled_map_is_refused_though_its_correlation_is_one() -> None:
    """Correlation is blind to an offset (an INT8 bias shift) and to a rescaled channel; the channel error, RMS
    error over the FP32 standard deviation, is not, and leaves plain noise of correlation 0.995 alone."""
    reference = RNG.normal(size=(64, 3, 16, 16)).astype(np.float32)
    budget = DriftBudget()
    shifted, rescaled = ["channel_error_worst"], ["channel_error_worst", "channel_gain_worst"]  # slope 1.4
    for changed, error, missed in ((reference + 0.5, 0.5, shifted), (reference * 1.4, 0.4, rescaled)):
        report = measure_drift({"d": reference}, {"d": changed}, {"d": "dense"}, budget)
        record = report.outputs["d"]
        assert record["channel_correlation_worst"] == pytest.approx(1.0)
        assert record["channel_error_worst"] == pytest.approx(error, rel=0.05)
        assert [v.metric for v in report.violations] == missed
        assert report.violations[0].line().startswith("output 'd': worst channel error (RMS / FP32 std) (axis ")
    noisy = reference + 0.1 * RNG.normal(size=reference.shape).astype(np.float32)
    assert measure_drift({"d": reference}, {"d": noisy}, {"d": "dense"}, budget).holds
    constant = np.ones((8, 2, 4), np.float32)  # nothing varies: no channel error to judge
    assert (
        "channel_error_worst"
        not in measure_drift({"d": constant}, {"d": constant + 1}, {"d": "dense"}, budget).outputs["d"]
    )


@pytest.mark.parametrize("kind", ["embedding", "dense", "classification", "sequence"])
def test_values_nan_or_infinite_where_fp32_is_finite_are_named_first(kind: str) -> None:
    """An INT8 variance quantized to zero under a division gives inf or NaN; every metric over it reads NaN or
    0 by accident, so the refusal names the non-finite values themselves, whatever the output's kind."""
    shape = (40, 6, 12) if kind == "sequence" else (40, 12)
    reference = RNG.normal(size=shape).astype(np.float32)
    candidate = reference.copy()
    candidate[3, 1] = np.nan
    candidate[7, 2] = np.inf
    report = measure_drift({"y": reference}, {"y": candidate}, {"y": kind}, DriftBudget())  # no RuntimeWarning
    count = 2 * (shape[2] if kind == "sequence" else 1)
    assert report.outputs["y"]["nonfinite_values"] == count and not report.holds and report.margin() < -1
    assert report.violations[0].line() == f"output 'y': {count} values NaN or infinite where FP32 is finite"
    both = reference.copy()
    both[3, 1] = np.nan  # NaN in FP32 too: not INT8's doing
    with np.errstate(all="ignore"):
        assert (
            "nonfinite_values"
            not in measure_drift({"y": both}, {"y": both.copy()}, {"y": kind}, DriftBudget()).outputs["y"]
        )


def test_a_segmentation_mask_is_judged_per_value_and_per_class() -> None:
    """A label per pixel: one moved boundary pixel must not refuse it (whole-sample equality would), and a thin
    class that vanishes must, though 97 % of the values stay."""
    reference = RNG.integers(0, 3, size=(8, 64, 64))
    reference[:, :2, :] = 5  # a thin class: 2 rows of every image
    moved = reference.copy()
    moved[0, 10, 10] = (moved[0, 10, 10] + 1) % 3
    report = measure_drift({"m": reference}, {"m": moved}, {}, DriftBudget())
    record = report.outputs["m"]
    assert record["kind"] == "mask" and report.holds and record["values_changed"] == 1
    assert record["value_agreement"] == pytest.approx(1 - 1 / reference.size) and record["classes_judged"] == 4
    vanished = reference.copy()
    vanished[vanished == 5] = 0
    report = measure_drift({"m": reference}, {"m": vanished}, {}, DriftBudget())
    assert [v.line() for v in report.violations] == [
        "output 'm': share of values unchanged 0.9688 < budget 0.99",
        "output 'm': worst class IoU 0 < budget 0.9",
    ]
    assert report.outputs["m"]["class_iou_worst_class"] == 5
    assert measure_drift(
        {"m": reference}, {"m": vanished}, {}, DriftBudget(min_top1_agreement=0.9, min_class_iou=0)
    ).holds


def _face_map(logit: np.ndarray) -> np.ndarray:
    """(N, 2, H, W) softmax over a not-face/face pair of logits, as MTCNN's PNet answers."""
    pair = np.stack([-logit, logit], axis=1)
    exp = np.exp(pair - pair.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_a_per_position_class_map_is_judged_by_its_answer_map() -> None:
    """Face probabilities per position: noise that keeps the maps' channel correlation at 0.99 but moves which
    positions are faces (2.5 % of them) is refused; faithful noise holds."""
    logit = RNG.normal(0, 1.5, size=(64, 1, 24, 24))[:, 0] + np.linspace(-3, 3, 24)  # faces to the right
    reference = _face_map(logit)
    faithful = _face_map(logit + RNG.normal(0, 0.01, logit.shape))
    report = measure_drift({"prob": reference}, {"prob": faithful}, {}, DriftBudget())
    record = report.outputs["prob"]
    assert record["kind"] == "class_map" and report.holds, report.violations
    assert record["classes_judged"] == 2 and record["value_agreement"] > 0.99
    moved = _face_map(logit + RNG.normal(0, 0.2, logit.shape))
    report = measure_drift({"prob": reference}, {"prob": moved}, {}, DriftBudget())
    record = report.outputs["prob"]
    assert record["channel_correlation_worst"] > 0.99 and record["channel_error_worst"] < 0.2, "dense figures pass"
    assert [v.line() for v in report.violations] == [
        f"output 'prob': share of values unchanged {record['value_agreement']:.4g} < budget 0.99"  # as printed
    ]
    assert 0.95 < record["value_agreement"] < 0.985


def test_maps_that_are_not_distributions_stay_dense() -> None:
    raw = RNG.normal(size=(8, 3, 16, 16))  # features or regressions per position
    sigmoid = 1 / (1 + np.exp(-RNG.normal(size=(8, 1, 16, 16))))  # one probability per position: no argmax
    kinds = infer_output_kinds({"raw": raw, "sigmoid": sigmoid, "probs": _face_map(raw[:, 0])})
    assert kinds == {"raw": "dense", "sigmoid": "dense", "probs": "class_map"}


def test_a_tagger_is_judged_by_its_label_sets_not_its_top_class() -> None:
    """Tags that cross 0.5 while the strongest tag stays: top-1 agreement reads 1.0; the label sets do not."""
    reference = _tags(400)
    nudged = reference.copy()
    weak = np.argsort(reference, axis=1)[:, -3]  # the third tag on each row (score ≈ 0.65)
    nudged[np.arange(20), weak[:20]] = 0.45  # 5 % of the rows lose a tag; the top tag never moves
    report = measure_drift({"tags": reference}, {"tags": nudged}, {}, DriftBudget())
    record = report.outputs["tags"]
    assert record["kind"] == "multilabel" and record["top_class_agreement"] == 1.0
    assert record["label_set_agreement"] == pytest.approx(0.95)
    assert record["decision_agreement"] == pytest.approx(1 - 20 / reference.size)
    assert [v.line() for v in report.violations] == [
        "output 'tags': label-set agreement (at --label-threshold 0.5; 1 decision within 0.02 of it left out) 0.95 < "
        "budget 0.99 (each of its 40 labels holds on its own (worst 0.9925, label 1): if they are independent tasks "
        "rather than one label set, judge them each with --output-kind tags=multitask)"
        # its 20 lost tags spread over its 40 (`optimizer.task_outputs`)
    ]
    assert measure_drift({"tags": reference}, {"tags": reference * 0.999 + 0.0005}, {}, DriftBudget()).holds
    # raw multi-label logits look like a classifier's: named by the override, judged at logit 0
    logits = np.log(reference / (1 - reference))
    named = measure_drift({"t": logits}, {"t": np.log(nudged / (1 - nudged))}, {"t": "multilabel"}, DriftBudget())
    assert named.outputs["t"]["label_set_agreement"] == pytest.approx(0.95) and not named.holds
    # the rows it takes to show the budget, as for top-1
    assert evidence_shortfall({"tags": "multilabel"}, DriftBudget(), 100)[0]["rows_needed"] == 268


def test_a_tagger_used_at_another_threshold_is_judged_at_that_threshold() -> None:
    """Tags the user switches on at 0.3: scores that slip from 0.35 to 0.25 cross it, never 0.5."""
    reference = _tags(400)
    reference[:40, 0] = 0.35  # a weak tag on a tenth of the rows
    slipped = reference.copy()
    slipped[:40, 0] = 0.25
    at_half = measure_drift({"tags": reference}, {"tags": slipped}, {}, DriftBudget())
    assert at_half.holds and at_half.outputs["tags"]["label_threshold"] == 0.5
    at_03 = measure_drift({"tags": reference}, {"tags": slipped}, {}, DriftBudget(label_threshold=0.3))
    assert at_03.outputs["tags"]["label_set_agreement"] == pytest.approx(0.9) and not at_03.holds
    logits = {"t": np.log(reference / (1 - reference))}  # logits: judged at logit(0.3)
    moved = {"t": np.log(slipped / (1 - slipped))}
    assert not measure_drift(logits, moved, {"t": "multilabel"}, DriftBudget(label_threshold=0.3)).holds
    assert measure_drift(logits, moved, {"t": "multilabel"}, DriftBudget()).holds
    with pytest.raises(QuantserveError, match=r"--label-threshold 1\.5"):
        DriftBudget(label_threshold=1.5)


def _token_rows(samples: int = 300, length: int = 16, classes: int = 9) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A tagger's rows: token ids and an attention mask (each sample 4–16 real tokens, the rest padding), and
    peaked per-token logits (N, T, classes)."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(4, length + 1, samples)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(5, 1000, (samples, length)) * mask
    logits = rng.normal(0, 1, (samples, length, classes))
    logits[np.arange(samples)[:, None], np.arange(length)[None, :], rng.integers(0, classes, (samples, length))] += 6
    return {"input_ids": ids, "attention_mask": mask}, logits.astype(np.float32)


def test_a_taggers_padded_positions_are_not_judged_its_real_tokens_are() -> None:
    inputs, logits = _token_rows()
    real = inputs["attention_mask"] != 0
    assert infer_output_kinds({"logits": logits}, inputs=inputs) == {"logits": "token_classification"}
    assert infer_output_kinds({"logits": logits}) == {"logits": "sequence"}  # no token input: CTC logits, as before

    padding_scrambled = logits.copy()
    padding_scrambled[~real] = np.random.default_rng(4).normal(0, 5, padding_scrambled[~real].shape)
    kinds = {"logits": "token_classification"}
    report = measure_drift({"logits": logits}, {"logits": padding_scrambled}, kinds, DriftBudget(), inputs=inputs)
    record = report.outputs["logits"]
    assert report.holds, report.violations
    assert record["token_agreement"] == 1.0 and record["samples_unchanged"] == 1.0
    assert record["tokens_judged"] == int(real.sum())

    flipped = logits.copy()
    rows = np.arange(0, 300, 5)  # a fifth of the samples lose their first token's class
    flipped[rows, 0] = np.roll(flipped[rows, 0], 1, axis=-1)
    report = measure_drift({"logits": logits}, {"logits": flipped}, kinds, DriftBudget(), inputs=inputs)
    assert report.outputs["logits"]["samples_unchanged"] == pytest.approx(0.8)
    assert report.outputs["logits"]["token_agreement"] == pytest.approx(1 - len(rows) / real.sum())
    # 60 of about 3 000 tokens: 0.98 < 0.99 (and the class that lost most of them, beyond chance: session 53)
    assert [v.metric for v in report.violations] in (["token_agreement"], ["token_agreement", "class_agreement"])
    assert "per-token top-1 agreement" in report.violations[0].line()


def test_a_taggers_token_labels_give_its_accuracy_drop_over_the_labelled_tokens() -> None:
    inputs, logits = _token_rows()
    labels = logits.argmax(axis=2)
    labels[:, 1::2] = -100  # Hugging Face: only each word's first piece is labelled
    worse = logits.copy()
    worse[:, 0] = np.roll(worse[:, 0], 1, axis=-1)  # every sample's first token (labelled) changes class
    report = measure_drift(
        {"logits": logits}, {"logits": worse}, {"logits": "token_classification"}, DriftBudget(), labels, inputs
    )
    record = report.outputs["logits"]
    scored = (inputs["attention_mask"] != 0) & (labels >= 0)
    assert record["fp32_accuracy"] == 1.0
    assert record["accuracy"] == pytest.approx(1 - 300 / scored.sum())
    assert "accuracy_drop_points" in {v.metric for v in report.violations}


def test_an_encoders_hidden_states_are_judged_by_cosine_over_real_tokens() -> None:
    inputs, _ = _token_rows(samples=40)
    hidden = np.random.default_rng(5).normal(0, 1, (40, 16, 96)).astype(np.float32)
    real = inputs["attention_mask"] != 0
    assert infer_output_kinds({"last_hidden_state": hidden}, inputs=inputs) == {"last_hidden_state": "token_embedding"}

    noisy = hidden + np.random.default_rng(6).normal(0, 0.05, hidden.shape).astype(np.float32)
    noisy[~real] = 0.0  # padded rows: whatever the model computes there, never read
    kinds = {"last_hidden_state": "token_embedding"}
    report = measure_drift(
        {"last_hidden_state": hidden}, {"last_hidden_state": noisy}, kinds, DriftBudget(), None, inputs
    )
    assert report.holds, report.violations
    assert report.outputs["last_hidden_state"]["cosine_worst"] > 0.99

    noisy[0, 0] = -hidden[0, 0]  # one real token turned around
    report = measure_drift(
        {"last_hidden_state": hidden}, {"last_hidden_state": noisy}, kinds, DriftBudget(), None, inputs
    )
    assert [v.metric for v in report.violations] == ["cosine_worst"]


def test_a_per_token_kind_needs_a_per_token_output() -> None:
    with pytest.raises(QuantserveError, match="needs \\(samples, tokens, values\\)"):
        infer_output_kinds({"logits": np.zeros((4, 3), np.float32)}, {"logits": "token_classification"})


def test_a_language_model_heads_logits_are_judged_by_per_token_top1_not_cosine() -> None:
    """A GPT-2-style decoder's logits (a channel per vocabulary entry, a flat softmax: its top token has ~0.26 of
    the mass) read as hidden states and passed at cosine 0.999 with 1.6 % of its next tokens changed."""
    inputs, _ = _token_rows(samples=300)  # ids 5..999
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 1, (300, 16, 1200)).astype(np.float32)
    assert infer_output_kinds({"logits": logits}, inputs=inputs) == {"logits": "token_classification"}
    hidden = rng.normal(0, 1, (300, 16, 384)).astype(np.float32)  # fewer channels than the ids seen: not a vocabulary
    assert infer_output_kinds({"last_hidden_state": hidden}, inputs=inputs) == {"last_hidden_state": "token_embedding"}

    flipped = logits.copy()
    real = np.argwhere(inputs["attention_mask"] != 0)[::50]  # 2 % of the real tokens: their top two swap
    for n, t in real:
        top = np.argsort(flipped[n, t])[-2:]
        flipped[n, t, top] = flipped[n, t, top[::-1]]
    kinds = {"logits": "token_classification"}
    report = measure_drift({"logits": logits}, {"logits": flipped}, kinds, DriftBudget(), None, inputs)
    assert [v.metric for v in report.violations] == ["token_agreement"]
    assert report.outputs["logits"]["cosine_worst"] > 0.99  # what judged it before, and passed


def test_a_wide_classifiers_logits_are_judged_by_top1_not_cosine() -> None:
    """1000 ImageNet-style logits were read as an embedding: INT8 passed at cosine 0.99+ with 2 % of the answers
    changed. Signed logits whose softmax commits to varying classes are a classifier's, whatever their width."""
    rng = np.random.default_rng(11)
    logits = rng.normal(0, 1, (400, 1000))
    top = rng.integers(0, 1000, 400)
    logits[np.arange(400), top] += 10.0  # committed: the top class takes most of the softmax
    rows, runner_up = np.arange(0, 400, 50), (top + 1) % 1000  # 2 % of the rows: a near tie, their top two swap
    logits[rows, runner_up[rows]] = logits[rows, top[rows]] - 0.2
    assert infer_output_kinds({"logits": logits}) == {"logits": "classification"}
    flipped = logits.copy()
    flipped[rows, top[rows]], flipped[rows, runner_up[rows]] = logits[rows, runner_up[rows]], logits[rows, top[rows]]
    report = measure_drift({"logits": logits}, {"logits": flipped}, {"logits": "classification"}, DriftBudget())
    assert [v.metric for v in report.violations] == ["top1_agreement"]
    assert report.outputs["logits"]["top1_agreement"] == pytest.approx(0.98)
    assert report.outputs["logits"]["cosine_worst"] > 0.99  # what judged it before, and passed


def test_one_hot_labels_are_named_not_dropped() -> None:
    """(N, C) labels beside an (N, C) classifier were unusable, so silently unused: no accuracy was judged."""
    logits = RNG.normal(size=(16, 10)) * 5
    one_hot = np.eye(10, dtype=np.int64)[RNG.integers(0, 10, 16)]
    with pytest.raises(QuantserveError, match=r"labels have shape \(16, 10\), the shape of output 'logits'"):
        infer_output_kinds({"logits": logits}, labels=one_hot)
    assert infer_output_kinds({"logits": logits}, labels=one_hot.argmax(axis=1)) == {"logits": "classification"}


def test_an_embedding_whose_neighbours_changed_holds_the_budget_with_a_note() -> None:
    """Rows alike (every pair near cosine 0.98): noise at cosine 0.998 holds the cosine budget and moves most rows'
    nearest row to clearly less similar ones, which a note says; tight clusters whose near-duplicates swap places
    under the same noise get none, though their nearest rows changed as often."""
    from optimizer.drift_evidence import neighbour_notes

    rng = np.random.default_rng(685)  # its own draw: these rows lie near the embedding/dense line

    def noisy(rows: np.ndarray) -> np.ndarray:
        scale = 0.06 * np.linalg.norm(rows, axis=1, keepdims=True) / np.sqrt(rows.shape[1])
        return rows + scale * rng.normal(size=rows.shape)

    alike = rng.normal(size=128) + 0.15 * rng.normal(size=(100, 128))
    report = measure_drift({"e": alike}, {"e": noisy(alike)}, {}, DriftBudget())
    record = report.outputs["e"]
    assert record["kind"] == "embedding" and report.holds and record["cosine_mean"] > 0.99
    assert record["nearest_changed"] > 0.4 and record["neighbour_regret"] > 0.05
    (note,) = neighbour_notes(report.outputs)
    assert note.startswith(f"output 'e': judged by cosine (mean {record['cosine_mean']:.4f}), yet the nearest ")
    assert note.endswith("judge it by that search: --metric package.module:function")
    clusters = (rng.normal(size=(5, 1, 64)) + 0.02 * rng.normal(size=(5, 40, 64))).reshape(200, 64)
    report = measure_drift({"e": clusters}, {"e": noisy(clusters)}, {}, DriftBudget())
    assert report.outputs["e"]["nearest_changed"] > 0.5 and report.outputs["e"]["neighbour_regret"] < 0.01
    assert neighbour_notes(report.outputs) == []


def _landmarks(rows: int, seed: int) -> np.ndarray:
    """21 points (x, y in pixels of a 224 crop, z signed) near one hand layout, as MediaPipe's hand landmarks."""
    rng = np.random.default_rng(seed)
    layout = rng.uniform(40, 190, size=(1, 21, 3))
    layout[..., 2] = rng.normal(0, 10, size=(1, 21))
    return (layout + rng.normal(0, 4, size=(rows, 21, 3))).reshape(rows, 63).astype(np.float32)


def test_coordinates_read_as_logits_are_judged_so_with_the_doubt_and_override_named() -> None:
    reference = {"Identity": _landmarks(300, 0)}
    kinds = infer_output_kinds(reference)
    assert kinds == {"Identity": "classification"}  # their softmax commits: read as logits (kept: the safe side)
    noisy = {"Identity": reference["Identity"] + np.random.default_rng(1).normal(0, 2.0, (300, 63)).astype(np.float32)}
    report = measure_drift(reference, noisy, kinds, DriftBudget())
    line = report.violations[0].line("classification")
    assert "top-1 agreement" in line and "--output-kind Identity=dense" in line and "coordinates" in line
    assert report.outputs["Identity"]["kind_doubt"]
    rescaled = measure_drift(reference, noisy, {"Identity": "dense"}, DriftBudget())
    assert "kind_doubt" not in rescaled.outputs["Identity"]  # named as dense: no doubt about a classifier


def test_a_classifiers_logits_raise_no_doubt_whatever_their_offset() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 32)) @ rng.normal(size=(32, 10)) + 40.0  # a common offset softmax ignores
    reference = {"logits": logits.astype(np.float32)}
    kinds = infer_output_kinds(reference)
    assert kinds == {"logits": "classification"}
    flipped = {"logits": reference["logits"][::-1].copy()}
    report = measure_drift(reference, flipped, kinds, DriftBudget())
    assert report.violations and "kind_doubt" not in report.outputs["logits"]
    assert "--output-kind" not in report.violations[0].line("classification")


def test_a_yes_no_flag_is_judged_by_its_decisions_not_correlation_alone() -> None:
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 4, size=(400, 1))
    presence = 1 / (1 + np.exp(-logit))
    drifted = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.6, size=(400, 1)))))  # correlation still ≥ 0.98
    report = measure_drift({"presence": presence}, {"presence": drifted}, {"presence": "dense"}, DriftBudget())
    record = report.outputs["presence"]
    assert record["channel_correlation_worst"] >= 0.98  # correlation alone would have passed it
    assert record["flag_agreement"] < 0.99
    assert [v.metric for v in report.violations] == ["flag_agreement"]
    assert "share of flag decisions unchanged" in report.violations[0].line("dense")
    spread = rng.uniform(0.2, 0.8, size=(400, 1))  # a regression in [0, 1], not a yes/no: no decisions judged
    record = measure_drift({"y": spread}, {"y": spread + 0.001}, {"y": "dense"}, DriftBudget()).outputs["y"]
    assert "flag_agreement" not in record


def test_a_float_map_named_a_mask_is_refused_in_one_line() -> None:
    """A selfie segmentation's sigmoid map passed as `--output-kind segment_back=mask` was compared value for value:
    a candidate within 1e-4 of FP32 read 0.49 of its values changed and a worst class IoU of 0."""
    probabilities = np.linspace(0.0, 1.0, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    with pytest.raises(QuantserveError) as refused:
        infer_output_kinds({"segment_back": probabilities}, {"segment_back": "mask"})
    assert str(refused.value).startswith(
        "--output-kind segment_back=mask: output 'segment_back' holds floats (float32); mask is compared value for "
        "value, for integer labels: a probability map is dense"
    )
    labels = (probabilities > 0.5).astype(np.int64)
    assert infer_output_kinds({"segment_back": labels}, {"segment_back": "mask"}) == {"segment_back": "mask"}

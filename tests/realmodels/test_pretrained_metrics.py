"""The task metrics and label encodings of examples.pretrained, on outputs whose answer is known."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from examples import pretrained, pretrained_bench
from examples import pretrained_data as data

# serial: it judges rates, latencies, time or memory, so it runs alone after the parallel part (make test)
pytestmark = pytest.mark.serial


def test_text_labels_round_trip_as_code_points():
    strings = data.text_strings(20, seed=3)
    labels = data.encode_text(strings)
    assert labels.dtype == np.int32 and labels.shape == (20, data.MAX_TEXT)
    assert data.decode_labels(labels) == strings
    assert data.text_strings(20, seed=3) == strings  # deterministic by seed


def test_edit_distance():
    assert pretrained.edit_distance("kitten", "sitting") == 3
    assert pretrained.edit_distance("", "abc") == 3
    assert pretrained.edit_distance("same", "same") == 0


def test_paraphrase_retrieval_finds_partners_and_misses_when_swapped():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    embeddings = np.repeat(centres, 2, axis=0) + 0.01 * rng.normal(size=(8, 16))
    labels = np.arange(8) ^ 1
    assert pretrained.paraphrase_retrieval({"e": embeddings}, labels) == 1.0
    assert pretrained.paraphrase_retrieval({"e": embeddings}, np.roll(labels, 2)) == 0.0


def test_text_mask_iou_thresholds_like_rapidocr():
    truth = np.zeros((1, 4, 4), dtype=np.uint8)
    truth[0, :2] = 1
    probs = np.full((1, 1, 4, 4), 0.1, dtype=np.float32)
    probs[0, 0, :1] = 0.9  # half of the true region found, nothing else
    assert pretrained.text_mask_iou({"map": probs}, truth) == pytest.approx(0.5)


def test_detector_drift_shows_a_collapsed_score_row():
    rng = np.random.default_rng(1)
    fp32 = rng.random((2, 6, 50)).astype(np.float32)
    int8 = fp32.copy()
    int8[:, 5] = 0.0  # one class's scores zeroed, as one shared Q/DQ scale does
    drift = pretrained_bench.detector_drift({"o": fp32}, {"o": int8}, None)
    assert drift["score_channel_correlation_worst"] == 0.0
    assert pretrained_bench.broken_metrics(drift) == ["score_channel_correlation_worst 0 < 0.98"]


def _pixel_head(rng: np.random.Generator) -> np.ndarray:
    """A YOLOv8-style (2, 4 + 2, 300) head: random background boxes in pixels at scores near 0, two objects an image
    each seen by 5 anchors within a pixel, at 0.5-0.9 (class 0 and 1)."""
    head = np.concatenate([rng.uniform(10, 300, (2, 4, 300)), rng.uniform(0, 0.01, (2, 2, 300))], axis=1)
    for image in range(2):
        for number, box in enumerate(([80, 80, 60, 40], [200, 150, 50, 90])):
            seen = slice(10 * number, 10 * number + 5)
            head[image, :4, seen] = np.array(box)[:, None] + rng.normal(0, 0.5, (4, 5))
            head[image, 4 + number, seen] = rng.uniform(0.5, 0.9, 5)
    return head.astype(np.float32)


def test_detector_drift_judges_a_pixel_head_by_its_decoded_boxes():
    """Background noise no decoder reads is information; a box set moved by 30 % of its width is broken."""
    rng = np.random.default_rng(2)
    fp32 = _pixel_head(rng)
    noisy = fp32.copy()
    noisy[:, :4, 20:] += rng.normal(0, 60, (2, 4, 280)).astype(np.float32)  # background anchors' boxes only
    drift = pretrained_bench.detector_drift({"o": fp32}, {"o": noisy}, None)
    assert drift["box_f1"] == 1.0 and drift["boxes_fp32"] == 4 and drift["box_row_correlation_worst"] < 0.98
    assert pretrained_bench.broken_metrics(drift) == []
    moved = fp32.copy()
    moved[:, 0, :20] += 0.3 * fp32[:, 2, :20]
    drift = pretrained_bench.detector_drift({"o": fp32}, {"o": moved}, None)
    assert pretrained_bench.broken_metrics(drift) == [f"box_iou_mean {drift['box_iou_mean']:.4g} < 0.9"]


def test_refusal_lines_are_recognised():
    drift = (
        "quantserve: error: INT8 misses the drift budget: output 'x': worst cosine 0.91 < budget 0.97; nothing written"
    )
    assert pretrained_bench.REFUSAL.search(drift)
    assert pretrained_bench.REFUSAL.search(drift.replace("output 'x':", "output 'x' (token_embedding):"))
    assert pretrained_bench.REFUSAL.search("quantserve: error: INT8 is 0.68× FP32 here; deploy fp32")
    busy = "INT8 is 0.90× FP32 here; deploy fp32 (or pass --allow-slower); timed on a busy machine (other …)"
    assert pretrained_bench.REFUSAL.search(f"quantserve: error: {busy}")
    unsettled = "INT8's speedup is uncertain: its 6 timing rounds spread 0.90-1.55× FP32 (median 1.14×, …)"
    assert pretrained_bench.REFUSAL.search(f"quantserve: error: {unsettled}")
    nothing = "no INT8 model to ship: every compute node is kept FP32 (3 nodes excluded: graph outputs …)"
    assert pretrained_bench.REFUSAL.search(f"quantserve: error: {nothing}")
    late = "the INT8 search ran out of time: 306 s of its 300 s budget spent before any INT8 model was verified …"
    assert pretrained_bench.REFUSAL.search(f"quantserve: error: {late}")
    assert not pretrained_bench.REFUSAL.search("quantserve: error: calibration failed")


@pytest.mark.skipif(importlib.util.find_spec("rapidocr_onnxruntime") is None, reason="needs rapidocr-onnxruntime")
def test_ocr_metrics_decode_with_rapidocrs_own_dictionary():
    decoder = pretrained._ctc_decoder()
    truth = ["Cafe 12.50", "ABC-123"]
    steps = np.zeros((2, 30, len(decoder.character)), dtype=np.float32)
    for row, text in enumerate(truth):
        for t, char in enumerate(text):  # a blank between characters keeps repeats apart
            steps[row, 2 * t, decoder.dict[char]] = 1.0
        steps[row, 2 * len(text) :, 0] = 1.0
        steps[row, 1 : 2 * len(text) : 2, 0] = 1.0
    labels = data.encode_text(truth)
    assert pretrained.ctc_texts({"p": steps}) == truth
    assert pretrained.ocr_exact_match({"p": steps}, labels) == 1.0
    assert pretrained.ocr_char_accuracy({"p": steps}, data.encode_text(["Cafe 12.5", "ABC-124"])) < 1.0


def test_a_refusal_with_extra_stderr_lines_is_not_one_line():
    refusal = (
        "quantserve: error: INT8 misses the drift budget: output 'o': worst cosine 0.5 < budget 0.97; nothing written"
    )
    quiet = pretrained_bench.OptimizeRun([], 1, [refusal], "", 1.0, 100.0)
    noisy = pretrained_bench.OptimizeRun(
        [], 1, ["WARNING:root:Please consider pre-processing", refusal], "", 1.0, 100.0
    )
    crashed = pretrained_bench.OptimizeRun([], 2, ["quantserve: error: invalid model"], "", 1.0, 100.0)
    assert pretrained_bench.outcome_of(quiet) == ("refused", refusal)
    assert pretrained_bench.outcome_of(noisy)[0] == "noisy refusal"
    assert pretrained_bench.outcome_of(crashed)[0] == "failed"


def test_the_tools_own_notes_before_a_refusal_are_not_noise():
    refusal = "quantserve: error: INT8 is 0.68× FP32 here; deploy fp32 (or pass --allow-slower)"
    note = "quantserve: note: ONNX Runtime's shape pre-processing did not run; quantized without it"
    run = pretrained_bench.OptimizeRun([], 1, [note, refusal], "", 1.0, 100.0)
    assert pretrained_bench.outcome_of(run) == ("refused", refusal)

"""A single-channel sigmoid map that is a mask (a selfie segmentation's person, a DB text detector's text) is judged
by each sample's IoU at --label-threshold, not as a dense map: MediaPipe's selfie segmentation (N, 144, 256, 1) was
refused at a channel correlation while its INT8 person masks had IoU 0.75, and a mask whose boundaries all moved
passed the dense budget. Maps of values (heatmaps, depth, posteriorgrams) stay dense."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_kind, infer_output_kinds
from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve.cli import main
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

SIDE = 32
LAYOUTS = {"nhwc": (SIDE, SIDE, 1), "nchw": (1, SIDE, SIDE), "nhw": (SIDE, SIDE)}


def _blobs(samples: int, seed: int = 0) -> np.ndarray:
    """(samples, SIDE, SIDE) fields of three Gaussian blobs each, in [0, ~1.5]: what a mask is cut from."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    field = np.zeros((samples, SIDE, SIDE))
    for _ in range(3):
        cy, cx = rng.uniform(4, SIDE - 4, size=(2, samples, 1, 1))
        radius = rng.uniform(3, 7, size=(samples, 1, 1))
        field += np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * radius**2))
    return field


def _mask_model(path: Path, layout: str, edge: float) -> Path:
    """field (N, SIDE, SIDE) → Sigmoid(30 · (field - edge)) reshaped to `layout`: a foreground mask whose boundary
    lies where the field crosses `edge` (the candidate moves it a little, as INT8 drift of its logits would)."""
    nodes = [
        helper.make_node("Sub", ["field", "edge"], ["centred"]),
        helper.make_node("Mul", ["centred", "slope"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
        helper.make_node("Reshape", ["probability", "shape"], ["mask"]),
    ]
    constants = [
        numpy_helper.from_array(np.array(edge, np.float32), "edge"),
        numpy_helper.from_array(np.array(30.0, np.float32), "slope"),
        numpy_helper.from_array(np.array((-1, *LAYOUTS[layout]), np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "sigmoid_mask",
        [helper.make_tensor_value_info("field", TensorProto.FLOAT, ["N", SIDE, SIDE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", *LAYOUTS[layout]])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, path)
    return path


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_sigmoid_mask_is_judged_by_its_iou_per_sample(tmp_path: Path, layout: str) -> None:
    data = TensorData({"field": _blobs(300).astype(np.float32)})
    reference = _mask_model(tmp_path / "fp32.onnx", layout, 0.5)
    candidate = _mask_model(tmp_path / "int8.onnx", layout, 0.54)  # every boundary moved inwards
    record = VerifyAgainstReference(reference, data, "blobs.npz").measure(candidate)
    output = record["outputs"]["mask"]
    assert output["kind"] == "soft_mask" and output["mask_threshold"] == 0.5
    assert output["mask_iou_mean"] < DriftBudget().min_mask_iou_mean and record["holds"] is False
    assert {v["metric"] for v in record["violations"]} <= {"mask_iou_mean", "mask_iou_worst"}
    line = drift_refusal(record)
    mean = f"{output['mask_iou_mean']:.4g} < budget 0.95"
    assert f"output 'mask' (soft_mask): mean per-sample mask IoU (at --label-threshold 0.5) {mean}" in line, line
    fp32, int8 = (VerifyAgainstReference(reference, data, "").outputs(path)["mask"] for path in (reference, candidate))
    as_map = measure_drift({"mask": fp32}, {"mask": int8}, {"mask": "dense"}, DriftBudget())
    # judged as a dense map by its channel figures alone these moved masks shipped (session 22); its clear decisions
    # at a decoder's thresholds now refuse them there too (`optimizer.anchor_scores`, session 44)
    assert [v.metric for v in as_map.violations] == ["anchor_decision_agreement"]
    same = VerifyAgainstReference(reference, data, "blobs.npz").measure(reference)
    assert same["holds"] and same["outputs"]["mask"]["mask_iou_worst"] == 1.0


def _sharp_masks(samples: int) -> np.ndarray:
    return 1 / (1 + np.exp(-30 * (_blobs(samples) - 0.5)))


def test_one_vanished_mask_is_the_worst_sample() -> None:
    masks = _sharp_masks(50)[..., None]
    moved = masks.copy()
    moved[17] = 0.0  # one sample's foreground gone; the other 49 exact
    report = measure_drift({"m": masks}, {"m": moved}, {}, DriftBudget())
    record = report.outputs["m"]
    assert record["kind"] == "soft_mask" and record["mask_samples_judged"] == 50
    assert (record["mask_iou_worst"], record["mask_iou_worst_sample"]) == (0.0, 17)
    assert record["mask_iou_mean"] == pytest.approx(49 / 50)
    assert [v.metric for v in report.violations] == ["mask_iou_worst"]
    loose = measure_drift({"m": masks}, {"m": moved}, {}, DriftBudget(min_mask_iou_worst=0.0))
    assert loose.holds  # --min-mask-iou-worst sets it


def test_maps_of_values_stay_dense_and_text_maps_are_masks() -> None:
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:48, 0:48]
    centres = rng.uniform(8, 40, size=(2, 16, 1, 1))
    heatmap = np.exp(-((rows - centres[0]) ** 2 + (cols - centres[1]) ** 2) / (2 * 3.0**2))  # a keypoint's peak
    text = np.zeros((16, 1, 48, 48))
    for sample, top in enumerate(rng.integers(2, 30, size=16)):
        text[sample, 0, top : top + 6, 4:44] = 1.0  # a text line's region, edges one pixel soft
        text[sample, 0, top - 1, 4:44] = text[sample, 0, top + 6, 4:44] = 0.4
    reference = {
        "heatmap": heatmap[:, None],
        "depth": rng.uniform(0.0, 1.0, size=(16, 48, 48, 1)),
        "notes": rng.uniform(0.0, 0.6, size=(16, 172, 88)) ** 3,  # a posteriorgram, mostly low, none plainly on
        "text": text,
        "selfie": _sharp_masks(16)[..., None],
    }
    assert infer_output_kinds(reference) == {
        "heatmap": "dense",
        "depth": "dense",
        "notes": "dense",
        "text": "soft_mask",
        "selfie": "soft_mask",
    }


def test_the_cut_is_stated_and_moves_with_the_label_threshold() -> None:
    logits = 30 * (_blobs(40) - 0.5)[:, None]  # an (N, 1, H, W) logit map, named a soft mask
    moved = logits - 9.0
    report = measure_drift({"seg": logits}, {"seg": moved}, {"seg": "soft_mask"}, DriftBudget())
    record = report.outputs["seg"]
    assert record["mask_logits"] and record["mask_cut"] == 0.0
    assert "(at logit 0: --label-threshold 0.5)" in report.violations[0].line("soft_mask")
    scores = 1 / (1 + np.exp(-logits))
    at = measure_drift({"seg": scores}, {"seg": scores}, {}, DriftBudget(label_threshold=0.3)).outputs["seg"]
    assert (at["kind"], at["mask_threshold"], at["mask_logits"]) == ("soft_mask", 0.3, False)


def test_a_borderline_reading_names_its_doubt_and_override() -> None:
    soft = 1 / (1 + np.exp(-12 * (_blobs(64) - 0.5)))[..., None]  # blurred edges: 78 % committed, 53 % solid
    assert infer_kind(soft, None) == "soft_mask"
    report = measure_drift({"m": soft}, {"m": soft * 0.5}, {}, DriftBudget())
    doubt = report.outputs["m"]["kind_doubt"]
    assert doubt.startswith("read as a mask: 78 % of its values lie within 0.1 of 0 or 1") and doubt.endswith(
        "--output-kind m=dense"
    )
    assert "--output-kind m=dense" in report.violations[0].line("soft_mask")
    blurred = 1 / (1 + np.exp(-10 * (_blobs(64) - 0.5)))[..., None]  # 74 % committed, 47 % solid
    assert infer_kind(blurred, None) == "dense"
    doubt = measure_drift({"m": blurred}, {"m": blurred}, {}, DriftBudget()).outputs["m"]["kind_doubt"]
    assert doubt.startswith("read as a dense map: ") and doubt.endswith("--output-kind m=soft_mask")
    assert "kind_doubt" not in measure_drift({"m": soft}, {"m": soft}, {"m": "dense"}, DriftBudget()).outputs["m"]


def test_a_float_map_named_a_mask_points_to_soft_mask(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(QuantserveError, match=r"soft_mask \(one foreground score per pixel, judged by the IoU of its"):
        infer_output_kinds({"segment_back": _sharp_masks(2)}, {"segment_back": "mask"})
    with pytest.raises(QuantserveError, match=r"labels; soft_mask cuts a float score map at --label-threshold, labels"):
        infer_output_kinds({"seg": _sharp_masks(2) > 0.5}, {"seg": "soft_mask"})
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    assert "--min-mask-iou-mean" in capsys.readouterr().out

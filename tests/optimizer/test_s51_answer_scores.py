"""The INT8 search ranks its probes by the scores behind an id per sample (optimizer.answer_scores; session 51).

CREPE exported with TopK(5) only was refused at 1.05×: its first ids moved by one of 32 probe rows either way, the
search ranked the groups by those single rows, and kept the 69 ms conv2 FP32. Ranked by the relative error of the
sigmoid scores the TopK reads, it kept the classifier, conv3 and conv4 and shipped (first-id agreement 0.9926, 2.52×).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from test_int8_search import mlp

from optimizer.answer_scores import answer_scores, with_scores
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import SCORES_ERROR, DriftReport
from optimizer.export import manifest_from_onnx
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.sensitivity import Attempt, MixedPrecisionSearch
from optimizer.transformer import run_model
from quantserve.artifact import Artifact
from quantserve.data import TensorData

VNNI = frozenset({"avx2", "avx512_vnni"})


def _answers(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model`'s output `y` (N, C) made an ArgMax cast to int32 and reshaped (N,), and a TopK(3)'s values and
    indices; `y` itself no longer an output."""
    nodes = [
        helper.make_node("ArgMax", ["y"], ["arg"], axis=1, keepdims=1),
        helper.make_node("Cast", ["arg"], ["arg32"], to=TensorProto.INT32),
        helper.make_node("Reshape", ["arg32", "flat"], ["class_id"]),
        helper.make_node("TopK", ["y", "k"], ["top_values", "top_ids"], axis=1),
    ]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
            numpy_helper.from_array(np.array([3], np.int64), "k"),
        ]
    )
    del model.graph.output[:]
    model.graph.output.extend(
        [
            helper.make_tensor_value_info("class_id", TensorProto.INT32, ["batch"]),
            helper.make_tensor_value_info("top_values", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("top_ids", TensorProto.INT64, ["batch", 3]),
        ]
    )
    return model


def test_the_scores_behind_an_argmax_and_a_top_k_s_indices_are_found(tmp_path: Path) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    model = _answers(onnx.load(str(art.path)))
    assert answer_scores(model, ["class_id", "top_ids", "top_values"]) == {"class_id": "y", "top_ids": "y"}
    onnx.save(model, str(tmp_path / "answers.onnx"))
    copy = with_scores(tmp_path / "answers.onnx", ["class_id", "top_ids"], tmp_path / "answers-scores.onnx")
    assert copy is not None and copy[1] == {"class_id": "y", "top_ids": "y"}
    x = np.random.default_rng(0).standard_normal((6, 16)).astype(np.float32)
    got = run_model(copy[0], TensorData({"x": x}))
    assert (
        np.array_equal(got["class_id"], got["y"].argmax(axis=1))
        and got["top_ids"][:, 0].tolist() == got["class_id"].tolist()
    )
    # scores that are an output already are read from the model itself: no copy
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info("y"))
    onnx.save(model, str(tmp_path / "both.onnx"))
    both = with_scores(tmp_path / "both.onnx", ["class_id"], tmp_path / "both-scores.onnx")
    assert both == (tmp_path / "both.onnx", {"class_id": "y"}) and not (tmp_path / "both-scores.onnx").exists()
    # a model whose outputs are not made from scores in its graph has no copy made
    assert with_scores(art.path, ["y"], tmp_path / "plain-scores.onnx") is None
    assert not (tmp_path / "plain-scores.onnx").exists()


def test_the_probe_margin_set_by_ids_with_scores_measured_leads_by_them() -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 10, 32)
    changed = ids.copy()
    changed[0] = (changed[0] + 1) % 10
    report = measure_drift({"class_id": ids}, {"class_id": changed}, {"class_id": "ids"}, DriftBudget())
    assert not report.scores_lead()  # no scores measured: its changed share is its error
    assert report.error() == 1 / 32
    report.outputs["class_id"][SCORES_ERROR] = 0.0125
    assert report.scores_lead() and report.error() == 0.0125


def _report(margin: float, error: float, lead: bool) -> DriftReport:
    report = DriftReport({"class_id": {"kind": "ids", SCORES_ERROR: error}}, slacks=[margin])
    report.output_margins["class_id"] = margin if lead else margin + 1
    return report


def test_groups_are_ranked_by_the_scores_error_they_remove_when_ids_lead(tmp_path: Path) -> None:
    """Group `flip` wins one probe row back but leaves the scores as they were; `scores` loses one row while it
    halves the scores' error: by the scores, `scores` is kept FP32 first."""
    reports = {
        "none": (-1.0, 0.02),
        "flip": (-0.5, 0.02),
        "scores": (-1.5, 0.01),
    }

    def build(kept: list[str]) -> Path:
        return tmp_path / "-".join(kept or ["none"])

    for lead, first in ((True, "scores"), (False, "flip")):

        def measure(path: Path, lead: bool = lead) -> DriftReport:
            return _report(*reports.get(path.name, (-0.2, 0.015)), lead=lead)

        search = MixedPrecisionSearch(
            build, measure, measure, time.monotonic() + 60, max_probes=2, scores_lead=DriftReport.scores_lead
        )
        result = search.run(Attempt([], tmp_path / "none", measure(tmp_path / "none")), ["flip", "scores"], {})
        assert result.steps[0]["kept_fp32"] == [first], (lead, result.steps)
        assert result.ranked_by == ("scores behind the ids" if lead else "margin")


def test_a_search_on_an_argmax_classifier_ranks_by_its_scores(tmp_path: Path) -> None:
    """End to end through SearchInt8: an MLP with an ArgMax as its only output, calibrated on rows smaller than the
    held-out ones: the static start misses on its ids."""
    art = mlp(tmp_path / "mlp.onnx")
    model = _answers(onnx.load(str(art.path)))
    del model.graph.output[1:]
    onnx.save(model, str(tmp_path / "argmax.onnx"))
    fused = Artifact(tmp_path / "argmax.onnx", manifest_from_onnx(model, "argmax"))
    rng = np.random.default_rng(2)
    calib = TensorData({"x": (rng.standard_normal((64, 16)) * 0.3).astype(np.float32)})
    held = TensorData({"x": (rng.standard_normal((128, 16)) * 2.0).astype(np.float32)})
    search = SearchSettings(max_search_s=60, timing_repeats=1, probe_samples=32, max_probes=3)
    built = SearchInt8(
        calib,
        held,
        target="tensorrt",  # static Q/DQ only: no dynamic candidate to hold where static clips
        budget=DriftBudget(min_top1_agreement=0.999),
        search=search,
        keep_failing=True,
        allow_thin_evidence=True,
        cpu_flags=VNNI,
    )(fused, tmp_path / "out" / "int8.onnx")
    mixed = built.manifest.stages[-1]["mixed_precision"]
    assert mixed["ranked_by"] == "scores behind the ids", mixed
    errors = [probe["error_removed"] for probe in mixed["probes"]]
    assert len(errors) == 3 and any(error % (1 / 32) > 1e-9 for error in errors), errors  # no whole probe rows
    assert not list((tmp_path / "out").rglob("*-scores.onnx"))

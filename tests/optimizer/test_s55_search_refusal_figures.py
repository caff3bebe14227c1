"""An INT8 search refusal shows its closest candidate's figures (session 55): a low-light enhancer was refused with
"mean PSNR to FP32 40.66 < 45 … deploy fp32" and nothing on stdout, while its own --metric (PSNR to the true images)
had held, 15.50 → 15.46 dB. The closest model's verification table now comes before the line (and in --json), and the
line names each missed check's flag, the samples a worst-sample check misses, and the --metric that held."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.refusal_figures import metric_held_words, miss_words, samples_under, side_by_side
from quantserve.cli import main

ROWS = 32
METRIC = "s55_truth_metric"
METRIC_CODE = """
import numpy as np

def psnr_truth(outputs, truth):
    error = np.mean((outputs["enhanced"].astype(np.float64) - truth) ** 2)
    return float(10 * np.log10(1.0 / error))
"""


def _enhancer(path: Path) -> Path:
    """A picture in, a picture out: one 3×3 convolution and a sigmoid, (N, 3, 8, 8) in [0, 1]."""
    rng = np.random.default_rng(55)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (3, 3, 3, 3)).astype(np.float32), "w")
    conv = helper.make_node("Conv", ["image", "w"], ["lit"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [conv, helper.make_node("Sigmoid", ["lit"], ["enhanced"])],
        "enhancer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _data(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.2, 0.8, (ROWS, 3, 8, 8)).astype(np.float32)  # the well-lit pictures
    np.savez(path, image=rng.uniform(0, 1, (ROWS, 3, 8, 8)).astype(np.float32), labels=truth)
    return path


def _refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> int:
    """optimize --precision int8 with a --metric that holds and a worst-sample PSNR floor no INT8 model reaches."""
    (tmp_path / f"{METRIC}.py").write_text(METRIC_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, METRIC, raising=False)
    argv = ["optimize", str(_enhancer(tmp_path / "enhancer.onnx")), "--precision", "int8"]
    argv += ["--calib", str(_data(tmp_path / "calib.npz", 1)), "--eval", str(_data(tmp_path / "heldout.npz", 2))]
    argv += ["--output-kind", "enhanced=image", "--metric", f"{METRIC}:psnr_truth", "--max-metric-drop", "0.5"]
    argv += ["--min-psnr-mean", "0", "--min-psnr-worst", "99", "--out", str(tmp_path / "built"), *flags]
    return main(argv)


def test_a_search_refusal_prints_its_closest_models_table_and_names_what_missed_and_what_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _refused(tmp_path, monkeypatch) == 1
    captured = capsys.readouterr()
    assert "verification vs FP32 (the search's held-out rows, closest INT8 model: " in captured.out, captured.out
    assert "budget MISSED" in captured.out and "psnr_worst" in captured.out
    assert f"{METRIC}:psnr_truth" in captured.out and " → " in captured.out  # the --metric row: FP32 beside INT8
    line = captured.err.splitlines()[-1]
    assert line.startswith("quantserve: error: no INT8 model"), line
    assert f"missed: --min-psnr-worst 99 ({ROWS} of {ROWS} samples under 99 dB)" in line, line
    assert f"your --metric {METRIC}:psnr_truth held: " in line and "within --max-metric-drop 0.5 (50 %)" in line, line
    assert not (tmp_path / "built").exists()


def test_the_search_refusals_json_carries_the_closest_models_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _refused(tmp_path, monkeypatch, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    verification = document["verification"]
    assert verification["samples"] == ROWS and verification["holds"] is False
    enhanced = verification["outputs"]["enhanced"]
    assert enhanced["kind"] == "image" and len(enhanced["psnr_lowest"]) == ROWS
    assert verification["metric"]["spec"] == f"{METRIC}:psnr_truth"
    assert "missed: --min-psnr-worst 99" in document["reason"]


LOW_LIGHT = {  # the probe's 8-bit run (session 55): one budget missed, by 11 of 128 samples, the --metric held
    "outputs": {
        "enhanced": {
            "kind": "image",
            "psnr_mean": 45.47,
            "psnr_worst": 38.35,
            "psnr_samples": 128,
            "psnr_lowest": [38.35, 38.6, 39.1, 39.2, 39.4, 39.5, 39.7, 39.8, 39.85, 39.9, 39.95, 40.0, 40.3, 41.0],
        },
        "curve_params": {"kind": "dense"},
    },
    "violations": [{"output": "enhanced", "metric": "psnr_worst", "value": 38.35, "budget": 40.0, "scope": "output"}],
    "metric": {
        "spec": "lowlight_metric:psnr_truth",
        "fp32": 15.4972,
        "int8": 15.4607,
        "relative_drop": 0.00236,
        "max_relative_drop": 0.01,
    },
}


def test_the_words_name_the_flag_count_the_samples_and_say_the_metric_held() -> None:
    assert miss_words(LOW_LIGHT) == (
        "missed: --min-psnr-worst 40 (output 'enhanced': 11 of 128 samples under 40 dB); your --metric "
        "lowlight_metric:psnr_truth held: 15.50 → 15.46, a drop of 0.24 %, within --max-metric-drop 0.01 (1 %)"
    )
    assert miss_words({**LOW_LIGHT, "violations": []}) == ""  # nothing missed: nothing to add


def test_a_missed_metric_is_named_by_its_flag_not_said_to_hold() -> None:
    missed = {**LOW_LIGHT["metric"], "int8": 14.0, "relative_drop": 0.0966}
    violation = {"output": "lowlight_metric:psnr_truth", "metric": "relative drop", "value": 0.0966, "budget": 0.01}
    words = miss_words({"outputs": {}, "violations": [{**violation, "scope": "metric"}], "metric": missed})
    assert words == "missed: --max-metric-drop 0.01"
    assert metric_held_words(None) == ""


def test_samples_under_a_floor_where_every_one_kept_misses_says_at_least() -> None:
    record = {"psnr_samples": 512, "psnr_lowest": [30.0] * 128}
    assert samples_under(record, 40.0) == "at least 128 of 512 samples under 40 dB"
    assert samples_under({"psnr_samples": 128, "psnr_lowest": [30.0] * 128}, 40.0) == "128 of 128 samples under 40 dB"
    assert samples_under({}, 40.0) == ""  # recorded before the lowest were kept
    assert side_by_side(0.87341, 0.87019) == "0.8734 → 0.8702" and side_by_side(0.0, 0.0) == "0 → 0"
    assert side_by_side(15.4582, 15.4597) == "15.458 → 15.460"  # two that differ never read alike
    assert side_by_side(1.0, 0.9994) == "1.0000 → 0.9994"  # nagisa's metric (session 60): not a drop of 0.001
    assert side_by_side(15.50, 15.46) == "15.50 → 15.46"


def test_a_closest_model_running_nothing_in_int8_gives_way_to_the_nearest_that_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from optimizer.drift_budget import DriftBudget
    from optimizer.drift_checks import DriftReport, Violation
    from optimizer.int8_verdict import SearchVerdict

    def candidate(scheme: str, worst: float, int8: bool) -> SimpleNamespace:
        violation = Violation("enhanced", "psnr_worst", worst, 40.0)
        outputs = {"enhanced": {"kind": "image", "psnr_worst": worst}}
        return SimpleNamespace(
            scheme=scheme, excluded=[], int8=int8, speedup=1.5, drift=DriftReport(outputs, [violation], [worst])
        )

    # no model here to read FP32's own PSNR under 8-bit inputs by (`optimizer.image_scale`, session 56's test)
    monkeypatch.setattr("optimizer.int8_verdict.with_fp32_scale", lambda verification, *_: verification)
    run = SearchVerdict.__new__(SearchVerdict)
    run.fused, run.reference, run.verify_batch = SimpleNamespace(path=None), {}, 1  # type: ignore[assignment]
    run.stage = SimpleNamespace(budget=DriftBudget(), held_out=range(128))  # type: ignore[assignment]
    run.exclusions = []
    run._quantizes_anything = lambda c: c.int8  # type: ignore[method-assign]
    all_fp32 = candidate("static_qdq", 39.0, int8=False)  # every compute node kept FP32
    tried = [candidate("static_qdq", 21.4, int8=True), candidate("static_qdq_compute", 30.1, int8=True)]
    figures = run._closest_figures(all_fp32, tried)["verification"]  # type: ignore[arg-type]
    assert figures["data"] == "the search's held-out rows, closest INT8 model: static_qdq_compute"
    assert figures["outputs"]["enhanced"]["psnr_worst"] == 30.1 and figures["samples"] == 128
    assert figures["budget"]["min_psnr_worst"] == 40.0 and figures["holds"] is False
    assert run._closest_figures(all_fp32, [all_fp32]) == {}  # nothing in INT8 to show  # type: ignore[arg-type]

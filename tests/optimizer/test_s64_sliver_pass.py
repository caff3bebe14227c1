"""A noisy pass of the speed gate on an INT8 sliver is refused (session 64): @vladmandic/human's faceres shipped
static_qdq_matmul_only with 0.046 % of its multiply-adds in INT8 at "1.104× (454 → 419 ms)" timed while others took
86 % of the cores. Amdahl caps such a build near 1.0005× whatever each INT8 op gains, so the clock's figure is noise:
the share is read whenever INT8 is timed, and a build that cannot reach --min-speedup is refused with the sliver
reason and the measured figure called noise; --allow-slower ships it, its speed row saying so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer import speed
from optimizer.speed import Block, SpeedRecord, SpeedSettings, compare_speed
from optimizer.speed_share import GENEROUS_INT8_GAIN, amdahl_ceiling
from quantserve.cli.optimize_tables import _details, _speed_row

RNG = np.random.default_rng(64)


def _convs_then_matmul(path: Path, int8_matmul: bool) -> Path:
    """x (N, 8, 32, 32) -> Conv(32, 3×3) -> Conv(32, 3×3) -> pool -> MatMul(32 -> 2); `int8_matmul`: the MatMul's
    weight dequantized from INT8 (the one node a matmul-only scheme quantizes), the convolutions FP32."""
    weights = {
        "w1": RNG.normal(0, 0.1, (32, 8, 3, 3)).astype(np.float32),
        "w2": RNG.normal(0, 0.1, (32, 32, 3, 3)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flat"),
    ]
    head = RNG.normal(0, 0.1, (32, 2)).astype(np.float32)
    if int8_matmul:
        weights.update(w3_q=np.round(head / 0.01).astype(np.int8), w3_scale=np.float32(0.01), w3_zero=np.int8(0))
        nodes.append(helper.make_node("DequantizeLinear", ["w3_q", "w3_scale", "w3_zero"], ["w3"], name="w3_dq"))
    else:
        weights["w3"] = head
    nodes.append(helper.make_node("MatMul", ["flat", "w3"], ["y"], name="head"))
    graph = helper.make_graph(
        nodes,
        "convs_then_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(np.asarray(a), name) for name, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def noisy_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every timing block says INT8 is 1.3× faster, as a busy machine's luck can."""
    monkeypatch.setattr(speed, "time_pair", lambda *args, **kwargs: Block(454.0, 349.0, 1.3, 0.86, 5))


def _timed(tmp_path: Path, settings: SpeedSettings) -> SpeedRecord:
    fp32 = _convs_then_matmul(tmp_path / "fp32.onnx", int8_matmul=False)
    int8 = _convs_then_matmul(tmp_path / "int8.onnx", int8_matmul=True)
    batch = {"x": RNG.normal(0, 1, (8, 8, 32, 32)).astype(np.float32)}
    return compare_speed(fp32, int8, batch, settings)


def test_a_sliver_timed_faster_is_refused_as_timing_noise(tmp_path: Path, noisy_pass: None) -> None:
    record = _timed(tmp_path, SpeedSettings())
    assert record.int8_mac_share is not None and record.int8_mac_share < 0.001  # read though the clock said faster
    assert record.fp32_compute == {"Conv": 2}
    assert not record.holds
    line = str(record.line(drift_holds=True))
    share = f"{100 * record.int8_mac_share:.2g}"
    assert line.startswith(f"the 1.30× measured is timing noise: only {share} % of multiply-adds are INT8 (Conv ×2 ")
    assert "at most 1.00× FP32 even if every INT8 op ran" in line and "deploy fp32 (or pass --allow-slower)" in line
    assert record.to_dict()["holds"] is False and record.to_dict()["int8_ceiling"] < 1.001


def test_allow_slower_ships_it_and_the_speed_row_says_fp32_but_a_sliver(tmp_path: Path, noisy_pass: None) -> None:
    record = _timed(tmp_path, SpeedSettings(allow_slower=True))
    row = _speed_row(record.to_dict())
    assert row[1].startswith("1.30× (454 → 349 ms)")
    assert "timing noise: FP32 in all but 0.0" in row[1] and "% of MACs, at most 1.00×" in row[1]


def test_a_share_that_can_reach_the_bar_is_judged_by_the_clock_as_before() -> None:
    assert amdahl_ceiling(1.0) == pytest.approx(GENEROUS_INT8_GAIN)
    assert amdahl_ceiling(0.0) == 1.0 and amdahl_ceiling(0.5) > 1.1
    clear = SpeedRecord(10.0, 7.7, 1.3, 1.1, 8, 2, "a CPU", round_speedups=(1.3, 1.3, 1.3), int8_mac_share=0.5)
    assert clear.holds
    sliver = SpeedRecord(10.0, 7.7, 1.3, 1.1, 8, 2, "a CPU", round_speedups=(1.3, 1.3, 1.3), int8_mac_share=0.02)
    assert not sliver.holds


CALIBRATE = {
    "stage": "calibrate",
    "scheme": "static_qdq_matmul_only",
    "method": "minmax",
    "activation_type": "QUInt8",
    "weight_type": "QInt8",
    "samples": 200,
    "cache": "miss",
    "kept_fp32": ["gender_pred/Sigmoid", "age_pred/Softmax", "age_pred/BiasAdd/_mm"],
    "int8_nodes": 2,
    "int8_mac_share": 0.00046,
}


def test_the_calibrate_row_counts_the_compute_nodes_the_scheme_left_fp32() -> None:
    record = {**CALIBRATE, "fp32_compute": {"Conv": 27, "MatMul": 1}, "fp32_compute_kept": 1}
    assert _details(record).endswith(
        "0.046% of MACs in INT8, 28 compute nodes FP32 (Conv ×27, MatMul ×1): 27 left FP32 by "
        "static_qdq_matmul_only, 1 kept FP32"
    )
    assert _details(CALIBRATE).endswith("0.046% of MACs in INT8, 3 nodes FP32")  # an older manifest reads as before


def test_optimize_records_every_compute_node_left_fp32(tmp_path: Path) -> None:
    import json
    import re

    from quantserve import cli

    model = _convs_then_matmul(tmp_path / "model.onnx", int8_matmul=False)
    rows = tmp_path / "rows.npz"
    np.savez(rows, x=RNG.normal(0, 1, (48, 8, 32, 32)).astype(np.float32))
    out = tmp_path / "build"
    args = ["optimize", str(model), "--calib", str(rows), "--out", str(out), "--skip-timing", "--keep-failing"]
    assert cli.main([*args, "--allow-slower"]) in (0, 1)
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    calibrate = next(s for s in stages if s.get("stage") == "calibrate")
    fp32 = calibrate["fp32_compute"]
    assert sum(fp32.values()) == 3 - calibrate["int8_nodes"]  # two Conv and one MatMul, less those in INT8
    assert re.search(rf", {sum(fp32.values())} compute nodes? FP32", _details(calibrate))


def test_a_sliver_timed_slower_is_not_called_timing_noise() -> None:
    """MediaPipe's full-range face detector shipped under --allow-slower at 0.44×, INT8 in 3.7 % of its MACs: every
    round slower, a real loss (the conversions around FP32 ops), not the clock's luck the row called it."""
    slow = SpeedRecord(10.0, 22.7, 0.44, 1.1, 8, 2, "a CPU", round_speedups=(0.44, 0.45, 0.43), int8_mac_share=0.037)
    row = _speed_row(slow.to_dict())
    assert "timing noise" not in row[1] and "FP32 in all but 3.7% of MACs, at most 1.03×" in row[1], row[1]

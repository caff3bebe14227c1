"""What `optimize` says when it refuses: one JSON document on stdout under --json (it printed nothing), the other
violations named, the calibration methods that clip outliers suggested, a speed refusal where INT8 covers a
sliver of the multiply-adds, a search that ended past its time budget, and the --min-speedup rule in --help."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.compute_share import int8_compute_share
from optimizer.drift_budget import BudgetExceeded
from optimizer.search_budget import SearchBudget, overrun_note
from optimizer.speed import SpeedRecord
from optimizer.verify import drift_refusal
from quantserve.cli import main


def test_a_drift_refusal_under_json_prints_one_document(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build" / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--skip-timing", "--json"]
    assert main([*argv, "--output-kind", "logits=dense", "--min-channel-correlation", "1.0"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["verdict"] == "refused" and document["exit_code"] == 1 and document["refused_for"] == "drift"
    assert document["violations"][0]["metric"] == "channel_correlation_worst"
    assert document["candidates"] and all("scheme" in c for c in document["candidates"])
    line = captured.err.strip()
    assert line == f"quantserve: error: {document['reason']}" and line.count("\n") == 0
    # calibrated with minmax, the default: the advice the search measured (this model's activations hold no outliers)
    assert line.endswith(f"calibrated with --method minmax: {document['method_hint']}")
    assert "unlikely to hold it: deploy fp32" in document["method_hint"]
    assert not out.exists()


def test_a_speed_refusal_under_json_prints_one_document(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--min-speedup", "1000"]
    assert main([*argv, "--json"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["verdict"] == "refused" and document["refused_for"] == "speed"
    speed = document["speed"]
    assert speed["holds"] is False and speed["min_speedup"] == 1000.0 and speed["int8_mac_share"] > 0.5
    assert "multiply-adds" not in document["reason"] and "--method" not in document["reason"]


def test_the_refusal_line_names_every_other_violation_and_carries_the_record() -> None:
    violations = [
        {"output": "feature", "metric": "cosine_mean", "value": 0.6759, "budget": 0.99, "scope": "output"},
        {"output": "feature", "metric": "cosine_worst", "value": 0.4123, "budget": 0.97, "scope": "output"},
    ]
    record = {"outputs": {"feature": {"kind": "embedding"}}, "violations": violations}
    line = drift_refusal(record)
    assert line == (
        "INT8 misses the drift budget: output 'feature' (embedding): cosine mean 0.6759 < budget 0.99 (and 1 more: "
        "output 'feature' worst cosine 0.4123); nothing written (pass --keep-failing to ship anyway)"
    )
    refusal = BudgetExceeded(line)
    assert refusal.record["refused_for"] == "drift" and refusal.record["violations"] == violations
    assert BudgetExceeded("a plain line").record == {}


def _lstm_then_matmul(path: Path) -> Path:
    """x (T, N, 8) → LSTM (hidden 16) → its last state · V (16, 4): an LSTM and a MatMul."""
    rng = np.random.default_rng(0)
    weights = {
        "W": rng.normal(size=(1, 64, 8)).astype(np.float32),
        "R": rng.normal(size=(1, 64, 16)).astype(np.float32),
        "V": rng.normal(size=(16, 4)).astype(np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("LSTM", ["x", "W", "R"], ["", "h"], name="lstm", hidden_size=16),
            helper.make_node("MatMul", ["h", "V"], ["y"], name="head"),
        ],
        "lstm_head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "N", 4])],
        [numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_int8_covering_a_sliver_is_refused_for_what_stays_fp32_not_for_the_load(tmp_path: Path) -> None:
    model = _lstm_then_matmul(tmp_path / "lstm.onnx")
    sample = {"x": np.ones((5, 2, 8), np.float32)}
    assert int8_compute_share(model, model, sample) == (0.0, {"LSTM": 1, "MatMul": 1})  # nothing quantized
    record = SpeedRecord(400.0, 480.0, 0.83, 1.1, 8, 2, "a CPU", others_share=0.92)
    assert record.line(drift_holds=True).endswith("time again when idle")  # no share read: the load is all it knows
    sliver = SpeedRecord(**{**record.__dict__, "int8_mac_share": 0.0003, "fp32_compute": {"LSTM": 3}})
    assert sliver.line(drift_holds=True) == (
        "INT8 is 0.83× FP32 here, below --min-speedup 1.1: only 0.03 % of multiply-adds are INT8 (LSTM ×3 stays "
        "FP32: ONNX Runtime has no INT8 LSTM kernel in static Q/DQ); INT8 cannot be faster here; deploy fp32 (or "
        "pass --allow-slower); its drift is within the budget"
    )
    assert sliver.line().record["speed"]["int8_mac_share"] == 0.0003


def test_a_search_past_its_budget_records_it_and_says_so() -> None:
    now = [0.0]
    budget = SearchBudget(300.0, clock=lambda: now[0])
    with budget.spend("candidate"):
        now[0] = 531.75  # one candidate started in time and ran past the end (CRAFT: 317 s each)
    record = budget.record()
    assert record["ran_out"] is True and record["overran_s"] == 231.75 and record["left_undone"] == []
    assert overrun_note(record) == (
        "the INT8 search took 532 s of its 300 s budget (--max-search-s): a unit started within it ran 232 s past "
        "it (its longest unit, a candidate, took 532 s)"
    )
    assert overrun_note(SearchBudget(300.0, clock=lambda: 10.0).record()) == ""


def test_help_states_the_speed_rule_and_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "INT8 slower than FP32" not in text
    assert "under --min-speedup × FP32's speed (1.1 by default)" in text and "(default 1.1)" in text


def test_the_shipped_builds_notes_say_what_the_speed_and_the_search_time_mean() -> None:
    from quantserve.cli.commands.optimize import search_overrun_note, speed_notes

    speed = SpeedRecord(400.0, 480.0, 0.83, 1.1, 8, 2, "a CPU", others_share=0.92).to_dict()
    assert speed_notes(speed)[0].endswith("time again when the machine is idle")  # --allow-slower, share not read
    sliver = {**speed, "int8_mac_share": 0.0003, "fp32_compute": {"LSTM": 3}}
    assert speed_notes(sliver) == [
        "INT8 was timed at 0.83× FP32: only 0.03 % of multiply-adds are INT8 (LSTM ×3 stays FP32: ONNX Runtime has "
        "no INT8 LSTM kernel in static Q/DQ); it cannot be faster here"
    ]
    spent = {"max_search_s": 300.0, "spent_s": 531.75, "overran_s": 231.75, "unit_s": {"candidate": 317.0}}
    assert search_overrun_note({"stage": "calibrate", "time_budget": spent}).startswith(
        "the INT8 search took 532 s of its 300 s budget (--max-search-s)"
    )
    assert search_overrun_note({"stage": "fuse"}) == ""

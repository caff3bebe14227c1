"""A recurrent state output is carried, not read as an answer (session 69): Robust Video Matting's r1o..r4o (human-
models' rvm, probe 68) were judged row by row as answers beside fgr and pha, their misses filled the refusal line,
and r4o was noted as an [N,16,H,W] map to pass `--output-kind r4o=class_map`. A state is judged by its effect: the
answers of the closed loop, each model fed its own state. Its row-by-row figures are recorded, marked not judged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from test_state_loop import _save

from optimizer.state_loop import StatePair
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData

ROWS = 48
PAIRS = [StatePair("r1o", "r1i"), StatePair("r2o", "r2i")]
MAP = [4, 6, 8]  # (N, 4, 6, 8): a map whose 4 channels would be noted as class scores if it were an answer


def _model(path: Path, flipped: bool) -> Path:
    """fgr = 2x (the answer); r1o = r1i/2 + x and r2o = r2i/2 + 1 (the states), negated in the `flipped` build: its
    states' raw figures miss any budget (cosine -1), while its answer is FP32's fed any state."""
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["fgr"]),
        helper.make_node("Mul", ["r1i", "half"], ["r1h"]),
        helper.make_node("Add", ["r1h", "x"], ["r1s"]),
        helper.make_node("Mul", ["r2i", "half"], ["r2h"]),
        helper.make_node("Add", ["r2h", "one"], ["r2s"]),
    ]
    nodes += [helper.make_node("Neg" if flipped else "Identity", [f"r{i}s"], [f"r{i}o"]) for i in (1, 2)]
    inputs = [("x", ["N", 8]), ("r1i", ["N", 8]), ("r2i", ["N", *MAP])]
    outputs = [("fgr", ["N", 8]), ("r1o", ["N", 8]), ("r2o", ["N", *MAP])]
    weights = {"two": np.array(2.0), "half": np.array(0.5), "one": np.array(1.0)}
    return _save(path, nodes, inputs, outputs, weights)


def _stream() -> TensorData:
    """One FP32 stream: each row's states FP32's state outputs of the row before."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 8)).astype(np.float32)
    r1, r2 = np.zeros((ROWS, 8), np.float32), np.zeros((ROWS, *MAP), np.float32)
    r2[0] = rng.random(MAP)
    for t in range(1, ROWS):
        r1[t], r2[t] = r1[t - 1] / 2 + x[t - 1], r2[t - 1] / 2 + 1
    return TensorData({"x": x, "r1i": r1, "r2i": r2})


@pytest.fixture()
def models(tmp_path: Path) -> tuple[Path, Path]:
    return _model(tmp_path / "fp32.onnx", False), _model(tmp_path / "drifted.onnx", True)


def test_state_outputs_are_not_judged_as_answers(models: tuple[Path, Path]) -> None:
    reference, candidate = models
    record = VerifyAgainstReference(reference, _stream(), "eval", state_pairs=PAIRS).measure(candidate)
    assert [v["output"] for v in record["violations"]] == []
    assert record["holds"] and record["closed_loop"]["holds"]
    assert set(record["outputs"]) == {"fgr"}
    for pair in PAIRS:  # recorded, marked not judged, with figures that show the drift
        state = record["states"][pair.output]
        assert state["input"] == pair.input and state["judged"] is False
        assert state["cosine_worst"] < 0
    assert not [note for note in record["notes"] if "r1o" in note or "r2o" in note or "class_map" in note]


def test_a_kind_given_for_a_state_is_said_to_be_a_state(models: tuple[Path, Path]) -> None:
    reference, candidate = models
    verify = VerifyAgainstReference(reference, _stream(), "eval", output_kinds={"r2o": "class_map"}, state_pairs=PAIRS)
    record = verify.measure(candidate)
    said = [note for note in record["notes"] if "r2o" in note]
    assert len(said) == 1 and "recurrent state" in said[0] and "r2i" in said[0] and "not applied" in said[0]
    assert record["holds"]


def test_answers_missing_in_the_closed_loop_still_refuse(tmp_path: Path) -> None:
    """The answer reads the state (fgr = 2x + r1i): the flipped state moves it only fed its own state."""
    reference, candidate = (_model(tmp_path / f"{n}.onnx", flipped) for n, flipped in (("a", False), ("b", True)))
    for path in (reference, candidate):
        model = onnx.load(str(path))
        model.graph.node[0].output[0] = "fgr2"
        model.graph.node.append(helper.make_node("Add", ["fgr2", "r1i"], ["fgr"]))
        onnx.save(model, str(path))
    record = VerifyAgainstReference(reference, _stream(), "eval", state_pairs=PAIRS).measure(candidate)
    assert not record["holds"] and not record["closed_loop"]["holds"]
    assert {v["output"] for v in record["closed_loop"]["violations"]} == {"fgr"}
    assert {v["output"] for v in record["violations"]} <= {"fgr"}


def test_the_search_judges_the_answers_not_the_states(models: tuple[Path, Path]) -> None:
    """The INT8 search measured every output, states included: a state's miss refused each candidate and filled the
    search's refusal line (verification already left them out). Its held-out drift now judges the answers alone."""
    from types import SimpleNamespace

    from optimizer.drift_budget import DriftBudget
    from optimizer.int8_measure import HeldOutDrift
    from optimizer.token_axes import TokenAxes
    from optimizer.transformer import run_model

    reference_path, candidate_path = models
    held = _stream()
    reference, got = run_model(reference_path, held, 16), run_model(candidate_path, held, 16)
    kinds = {"fgr": "dense", "r1o": "dense", "r2o": "dense"}
    stage = SimpleNamespace(budget=DriftBudget(), user_metric=None)
    run = SimpleNamespace(reference=reference, kinds=kinds, stage=stage, labels=None, axes=TokenAxes())
    run._measuring = lambda done, total, name: None
    for pairs, judged in ((PAIRS, {"fgr"}), ((), {"fgr", "r1o", "r2o"})):
        run.state_pairs = pairs
        run._answers = lambda outputs: HeldOutDrift._answers(run, outputs)  # type: ignore[arg-type]
        report = HeldOutDrift._held_out_report(run, held, got)  # type: ignore[arg-type]
        assert set(report.outputs) == judged
        assert report.holds == (judged == {"fgr"})  # the states' misses alone refuse where they are judged

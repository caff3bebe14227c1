"""A per-token output named token_classification on a model that takes no token ids (an image in, a per-step token
softmax out) is counted for evidence by the positions it is judged over, not by its rows: SLANet-plus's (N, 1024, 50)
structure softmax was refused "per-token top-1 agreement ≥ 0.99 needs at least 268 held-out real tokens …, 72 given"
with 72 held-out rows of 1024 steps each (probe 65D)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import evidence_refusal, evidence_shortfall
from optimizer.early_evidence import early_evidence_refusal
from quantserve.data import TensorData

STEPS, TOKENS = 40, 5
KINDS = {"structure": "token_classification"}


def _step_softmax_model(path: Path) -> Path:
    """x (N, 4) → (N, STEPS, TOKENS) softmax over the last axis, as a decoder's per-step token scores."""
    weights = np.random.default_rng(0).normal(size=(4, STEPS * TOKENS)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["flat"]),
            helper.make_node("Reshape", ["flat", "shape"], ["steps"]),
            helper.make_node("Softmax", ["steps"], ["structure"], axis=-1),
        ],
        "steps",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("structure", TensorProto.FLOAT, ["N", STEPS, TOKENS])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([-1, STEPS, TOKENS]), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def test_held_out_rows_of_many_steps_are_not_refused_as_that_many_tokens(tmp_path: Path) -> None:
    model = _step_softmax_model(tmp_path / "steps.onnx")
    held = TensorData({"x": np.random.default_rng(1).normal(size=(72, 4)).astype(np.float32)})
    # 72 rows × 40 steps: 2880 positions judged, more than the 268 a 0.99 budget needs
    assert early_evidence_refusal(model, held, DriftBudget(), KINDS) is None


def test_too_few_positions_are_refused_counted_as_positions() -> None:
    expected = {"structure": np.full((3, STEPS, TOKENS), 0.2, dtype=np.float32)}
    inputs = {"x": np.zeros((3, 4), dtype=np.float32)}
    short = evidence_shortfall(KINDS, DriftBudget(), 3, inputs, expected=expected)
    assert [(e["rows"], e["units"]) for e in short] == [(120, "positions")]
    assert str(evidence_refusal(short)).startswith(
        "too few held-out rows to show the drift budget: output 'structure': per-position top-1 agreement ≥ 0.99 "
        "needs at least 268 held-out positions (95 % lower bound, every position agreeing), 120 given; "
    )
    assert evidence_shortfall(KINDS, DriftBudget(), 7, inputs, expected=expected) == []  # 280 positions
    assert evidence_shortfall(KINDS, DriftBudget(), 200)[0]["rows"] == 200  # no answers given: by rows, as before


def test_positions_all_zero_are_padding_judged_nowhere() -> None:
    """A decoder padded past its end: its padding (all 0) counted as positions, and agreeing 0 = 0 there, would dilute
    every real step's disagreement (SLANet-plus padded to 1024 steps held ~40 real ones a row, probe 65D)."""
    from optimizer.drift_metrics import output_metrics

    rng = np.random.default_rng(2)
    reference = np.zeros((10, STEPS, TOKENS), dtype=np.float32)
    reference[:, :4] = rng.dirichlet(np.ones(TOKENS), size=(10, 4))  # 4 real steps a row, the rest padding
    candidate = reference.copy()
    candidate[:, :4] = np.roll(reference[:, :4], 1, axis=-1)  # every real step's argmax moved
    record = output_metrics("token_classification", reference, candidate)
    assert record["tokens_judged"] == 40 and record["token_agreement"] == 0.0, record  # not 360 of 400 (padding)
    expected = {"structure": reference}
    short = evidence_shortfall(KINDS, DriftBudget(), 10, {"x": np.zeros((10, 4))}, expected=expected)
    assert [(e["rows"], e["units"]) for e in short] == [(40, "positions")]

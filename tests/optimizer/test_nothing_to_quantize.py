"""INT8 of an `.onnx` with no Conv, MatMul or Gemm is refused from its graph alone, before any stage runs.

A CatBoost tree ensemble was refused only after the data was read, exported, row-checked and fused: 43 s on
a busy machine for what the graph's op types say. The refusal (exit 1) now comes before the first stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from optimizer.drift_budget import BudgetExceeded
from optimizer.pipeline import OptimizeOptions, optimize

REFUSAL = (
    "nothing to quantize: the model has no Conv, MatMul or Gemm (its ops: TreeEnsembleRegressor); "
    "optimize it with --precision fp32 and deploy that build"
)


def _trees(path: Path) -> Path:
    """A one-stump tree ensemble regressor (ai.onnx.ml alone, as CatBoost and onnxmltools write them)."""
    stump = helper.make_node(
        "TreeEnsembleRegressor",
        ["x"],
        ["y"],
        domain="ai.onnx.ml",
        n_targets=1,
        nodes_treeids=[0, 0, 0],
        nodes_nodeids=[0, 1, 2],
        nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_values=[0.0, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0],
        target_treeids=[0, 0],
        target_nodeids=[1, 2],
        target_ids=[0, 0],
        target_weights=[-1.0, 1.0],
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    model = helper.make_model(
        helper.make_graph([stump], "trees", [x], [y]), opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_int8_of_a_tree_ensemble_is_refused_before_any_stage(tmp_path: Path) -> None:
    stages: list[str] = []
    np.savez(tmp_path / "calib.npz", x=np.zeros((40, 2), np.float32))
    options = OptimizeOptions(
        _trees(tmp_path / "trees.onnx"),
        tmp_path / "calib.npz",
        "int8",
        "embedded",
        tmp_path / "out",
        on_stage=stages.append,
    )
    with pytest.raises(BudgetExceeded) as caught:
        optimize(options)
    assert (str(caught.value), caught.value.exit_code) == (REFUSAL, 1)
    assert stages == []  # neither exported nor fused: the graph's op types alone decide
    assert not (tmp_path / "out").exists()


def test_the_refusal_comes_before_the_data_is_read(tmp_path: Path) -> None:
    options = OptimizeOptions(
        _trees(tmp_path / "trees.onnx"), tmp_path / "absent.npz", "int8", "embedded", tmp_path / "o"
    )
    with pytest.raises(BudgetExceeded, match=r"^nothing to quantize"):
        optimize(options)


def test_what_the_graph_cannot_say_is_left_to_the_stages(tmp_path: Path) -> None:
    from optimizer.quant_exclusions import source_no_compute_refusal

    (tmp_path / "damaged.onnx").write_bytes(b"\x08\x07garbage")
    assert source_no_compute_refusal(tmp_path / "damaged.onnx") is None  # the export stage refuses it in one line
    assert source_no_compute_refusal(tmp_path / "missing.onnx") is None
    assert source_no_compute_refusal("examples.digits:build") is None  # a PyTorch factory: judged after export
    quantized = helper.make_graph([helper.make_node("ConvInteger", ["x", "w"], ["y"])], "q", [], [])
    onnx.save(helper.make_model(quantized), str(tmp_path / "int8.onnx"))
    assert source_no_compute_refusal(tmp_path / "int8.onnx") is None  # "already quantized", said by the export
    assert source_no_compute_refusal(_trees(tmp_path / "trees.onnx")) == REFUSAL

"""optimize accepts NaN in an input where the FP32 model answers it finitely (a tree ensemble's "missing"), records
it in the build's manifest, and refuses it where the FP32 model answers NaN, or for INT8 (session 55).

atspm-detector's LightGBM export (ai.onnx.ml tree ensembles) takes NaN as missing: 1763 NaN in 68 of its real rows,
answered finitely by ONNX Runtime and by Triton alike, while 0 in its place moved a score by up to 1.016. optimize
refused the data ("inputs must be finite"), as it must for a model that does not take NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift_budget import BudgetExceeded
from optimizer.nan_inputs import NAN_INPUTS
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Manifest
from quantserve.errors import QuantserveError

UNTIMED = SpeedSettings(enabled=False)


def missing_trees(path: Path) -> Path:
    """y = a LightGBM-like tree ensemble of x (N, 4): feature 0's NaN takes the true branch (missing_value_tracks_
    true), feature 1's the false one, as ONNX Runtime runs ai.onnx.ml opset 3."""
    trees = helper.make_node(
        "TreeEnsembleRegressor",
        ["x"],
        ["y"],
        domain="ai.onnx.ml",
        n_targets=1,
        nodes_treeids=[0, 0, 0, 0, 0],
        nodes_nodeids=[0, 1, 2, 3, 4],
        nodes_featureids=[0, 0, 1, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
        nodes_values=[0.0, 0.0, 0.5, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 3, 0, 0],
        nodes_falsenodeids=[2, 0, 4, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0],
        target_treeids=[0, 0, 0],
        target_nodeids=[1, 3, 4],
        target_ids=[0, 0, 0],
        target_weights=[-1.0, 0.5, 2.0],
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    opsets = [helper.make_opsetid("ai.onnx.ml", 3), helper.make_opsetid("", 17)]
    return _save(helper.make_model(helper.make_graph([trees], "trees", [x], [y]), opset_imports=opsets), path)


def projection(path: Path, fill_nan: bool = False) -> Path:
    """y = x·W (N, 4) -> (N, 3): NaN in, NaN out; with `fill_nan`, NaN is first set to 0 (IsNaN, Where)."""
    weights = numpy_helper.from_array(np.random.default_rng(3).normal(0, 1, (4, 3)).astype(np.float32), "W")
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    nodes = [helper.make_node("MatMul", ["filled" if fill_nan else "x", "W"], ["y"])]
    if fill_nan:
        isnan = helper.make_node("IsNaN", ["x"], ["missing"])
        nodes[:0] = [isnan, helper.make_node("Where", ["missing", "zero", "x"], ["filled"])]
    graph = helper.make_graph(
        nodes,
        "projection",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [weights, zero],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def rows_with_nan(path: Path, rows: int = 300) -> Path:
    """x (rows, 4) normal, NaN in feature 0 of every 7th row and in feature 1 of every 11th from row 3."""
    x = np.random.default_rng(0).normal(size=(rows, 4)).astype(np.float32)
    x[::7, 0] = np.nan
    x[3::11, 1] = np.nan
    np.savez(path, x=x)
    return path


def _options(model: Path, data: Path, precision: str, out: Path, **more: object) -> OptimizeOptions:
    return OptimizeOptions(model, data, precision, "embedded", out, speed=UNTIMED, **more)  # type: ignore[arg-type]


def test_fp32_of_a_tree_ensemble_ships_with_its_nan_inputs_recorded(tmp_path: Path) -> None:
    data = rows_with_nan(tmp_path / "d.npz")
    held_out = rows_with_nan(tmp_path / "eval.npz", rows=40)
    x, x_eval = np.load(data)["x"], np.load(held_out)["x"]
    artifact = optimize(
        _options(missing_trees(tmp_path / "t.onnx"), data, "fp32", tmp_path / "out", eval_path=held_out)
    )
    assert artifact.manifest.verification["holds"]
    nan_rows = int(np.isnan(x).any(axis=1).sum() + np.isnan(x_eval).any(axis=1).sum())
    record = {"values": int(np.isnan(x).sum() + np.isnan(x_eval).sum()), "rows": nan_rows}
    assert Manifest.load(tmp_path / "out").extra[NAN_INPUTS] == {"x": {**record, "read_by": ["TreeEnsembleRegressor"]}}


def test_a_model_answering_nan_for_nan_is_refused_naming_the_row(tmp_path: Path) -> None:
    data = rows_with_nan(tmp_path / "d.npz")
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(projection(tmp_path / "p.onnx"), data, "fp32", tmp_path / "out"))
    assert str(refused.value) == (
        f"{data}: input 'x' has 70 NaN value(s), in 66 row(s) (first: row 0), and the FP32 model answers NaN for "
        "them (output 'y', row 0): optimize accepts NaN in an input only where the FP32 model answers it finitely "
        "(a model that takes NaN as a missing value, as tree ensembles do); inputs must be finite"
    )
    assert not (tmp_path / "out").exists()


def test_an_infinity_is_refused_before_any_model_runs(tmp_path: Path) -> None:
    data = rows_with_nan(tmp_path / "d.npz")
    x = np.load(data)["x"]
    x[5, 2] = np.inf
    np.savez(data, x=x)
    with pytest.raises(QuantserveError) as refused:
        optimize(_options(missing_trees(tmp_path / "t.onnx"), data, "fp32", tmp_path / "out"))
    assert str(refused.value) == (
        f"{data}: input 'x' has 1 infinite value(s), in 1 row(s) (first: row 5); inputs must be finite (NaN only "
        "where the model takes it as a missing value; an infinity never)"
    )


def test_int8_of_data_carrying_nan_is_refused_in_one_line(tmp_path: Path) -> None:
    """Calibration would take a NaN range of x: refused, not calibrated (a tree-only graph is refused before, by its
    op types: nothing to quantize, optimize it with --precision fp32, which the test above ships)."""
    data = rows_with_nan(tmp_path / "d.npz")
    stages: list[str] = []
    model = projection(tmp_path / "p.onnx", fill_nan=True)
    with pytest.raises(BudgetExceeded) as refused:
        optimize(_options(model, data, "int8", tmp_path / "out", on_stage=stages.append))
    assert str(refused.value) == (
        "input 'x' carries NaN (missing values) in 66 row(s) of the data, which the FP32 model answers finitely, "
        "read by IsNaN; INT8 calibration cannot take a range of NaN: build it with --precision fp32, which accepts it"
    )
    assert "calibrate" not in stages and not (tmp_path / "out").exists()
    with pytest.raises(BudgetExceeded, match=r"^nothing to quantize: .*TreeEnsembleRegressor.*deploy that build$"):
        optimize(_options(missing_trees(tmp_path / "t.onnx"), data, "int8", tmp_path / "out"))


def test_optimize_says_which_inputs_it_took_nan_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The atspm trees shipped without a word on the NaN they took: the command names each input, its rows and values
    and what reads them."""
    from quantserve.cli import main

    data = rows_with_nan(tmp_path / "d.npz")
    x = np.load(data)["x"]
    args = [str(missing_trees(tmp_path / "t.onnx")), "--calib", str(data), "--precision", "fp32"]
    assert main(["optimize", *args, "--out", str(tmp_path / "out"), "--skip-timing"]) == 0
    assert (
        f"quantserve: note: input 'x' carries NaN in {int(np.isnan(x).any(axis=1).sum())} row(s) of the data "
        f"({int(np.isnan(x).sum())} value(s)), which the FP32 model answers finitely (read by TreeEnsembleRegressor): "
        "taken as missing values; deploy records it, and infer, evaluate and loadtest accept NaN in this input (an "
        "infinity never)"
    ) in capsys.readouterr().err

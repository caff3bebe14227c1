"""INT8 on unusual graphs: inputs passed through to outputs, no compute op, a newer opset than ORT quantizes at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.compute_share import compute_macs
from optimizer.drift_budget import BudgetExceeded
from optimizer.export import export_onnx
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.quant_exclusions import output_side_exclusions, run_with_tensors
from optimizer.source import load_source
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

D, C = 16, 4


def _mlp(outputs: list[onnx.ValueInfoProto], extra: list[onnx.NodeProto], opset: int = 17) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(D, D)).astype(np.float32), "W1"),
        numpy_helper.from_array(rng.normal(size=(D, C)).astype(np.float32), "W2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["m1"], name="mm1"),
        helper.make_node("Relu", ["m1"], ["h"], name="relu"),
        helper.make_node("MatMul", ["h", "W2"], ["logits"], name="mm2"),
        *extra,
    ]
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", C])
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])], [logits, *outputs], weights
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def _quantized(model: onnx.ModelProto, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """The INT8 model of `model` (output side excluded, as the search does) and rows 3x beyond the calibrated range."""
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    artifact = export_onnx(load_source(path), tmp_path / "exported.onnx")
    excluded = tuple(e.node for e in output_side_exclusions(onnx.load(str(artifact.path))))
    calib = TensorData({"x": np.random.default_rng(1).uniform(-1, 1, (32, D)).astype(np.float32)})
    int8 = CalibrateInt8(calib, CalibrationSettings(nodes_to_exclude=excluded))(artifact, tmp_path / "int8.onnx")
    return int8.path, np.random.default_rng(2).uniform(-3, 3, (8, D)).astype(np.float32)


def _run(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    with OnnxRuntimeRunner(path) as runner:
        return dict(runner.infer({"x": x}))


def _producers(path: Path) -> dict[str, str]:
    return {out: n.op_type for n in onnx.load(str(path)).graph.node for out in n.output}


def test_output_passing_an_input_through_stays_exact(tmp_path: Path) -> None:
    echo = helper.make_tensor_value_info("echo", TensorProto.FLOAT, ["N", D])
    path, x = _quantized(_mlp([echo], [helper.make_node("Identity", ["x"], ["echo"], name="echo")]), tmp_path)
    assert _producers(path)["echo"] == "Identity"
    assert "DequantizeLinear" in _producers(path).values()  # x itself is quantized for mm1
    np.testing.assert_array_equal(_run(path, x)["echo"], x)


def test_output_read_by_a_quantized_node_is_not_a_dequantize(tmp_path: Path) -> None:
    hidden = helper.make_tensor_value_info("h", TensorProto.FLOAT, ["N", D])
    model = _mlp([hidden], [helper.make_node("Identity", ["m2"], ["logits"], name="last")])
    model.graph.node[2].output[0] = "m2"  # mm2 not an output writer: it runs INT8 and quantizes `h`
    path, x = _quantized(model, tmp_path)
    assert "h_QuantizeLinear" in {n.name for n in onnx.load(str(path)).graph.node}
    assert _producers(path)["h"] != "DequantizeLinear"
    assert _run(path, x)["h"].min() >= 0.0  # the Relu's own output, not a copy rounded to a scale


def test_input_listed_as_output_passes_through(tmp_path: Path) -> None:
    model = _mlp([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])], [])
    path, x = _quantized(model, tmp_path)
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["logits", "x"]
    np.testing.assert_array_equal(_run(path, x)["x"], x)


def test_opset_newer_than_ort_quantizes_at_is_converted_down(tmp_path: Path) -> None:
    newest = onnx.defs.onnx_opset_version()
    path, x = _quantized(_mlp([], [], opset=newest), tmp_path)
    assert set(_producers(path).values()) >= {"QuantizeLinear", "DequantizeLinear"}
    assert _run(path, x)["logits"].shape == (8, C)


def _no_compute(tmp_path: Path) -> Path:
    bias = numpy_helper.from_array(np.ones(D, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["a"], name="add"), helper.make_node("Relu", ["a"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", D])],
        [bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "add.onnx"))
    return tmp_path / "add.onnx"


def test_no_tensors_wanted_yields_none(tmp_path: Path) -> None:
    path = _no_compute(tmp_path)
    sample = {"x": np.zeros((1, D), np.float32)}
    assert list(run_with_tensors(path, [sample, sample], [])) == [{}, {}]
    assert compute_macs(onnx.load(str(path)), path, sample) == {}


def test_int8_of_a_model_without_compute_ops_is_refused(tmp_path: Path) -> None:
    path = _no_compute(tmp_path)
    np.savez(tmp_path / "calib.npz", x=np.zeros((40, D), np.float32))
    options = OptimizeOptions(path, tmp_path / "calib.npz", "int8", "embedded", tmp_path / "out")
    with pytest.raises(BudgetExceeded) as caught:
        optimize(options)
    assert str(caught.value) == (
        "nothing to quantize: the model has no Conv, MatMul or Gemm (its ops: Add, Relu); "
        "optimize it with --precision fp32 and deploy that build"
    )
    assert caught.value.exit_code == 1
    assert not (tmp_path / "out").exists()


def test_a_model_whose_rows_depend_on_each_other_is_refused_before_calibration(tmp_path: Path) -> None:
    """Axis 0 pooled (each row minus the batch mean): a request's answer would depend on what Triton's dynamic
    batching put beside it. Refused at once, naming the output and the row, nothing written."""
    mean = helper.make_node("ReduceMean", ["logits"], ["batch_mean"], name="pool_rows", axes=[0], keepdims=1)
    centred = helper.make_node("Sub", ["logits", "batch_mean"], ["centred"], name="centre")
    model = _mlp([helper.make_tensor_value_info("centred", TensorProto.FLOAT, ["N", C])], [mean, centred])
    onnx.save(model, str(tmp_path / "pooled.onnx"))
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(3).normal(size=(40, D)).astype(np.float32))
    for precision in ("int8", "fp32"):
        options = OptimizeOptions(
            tmp_path / "pooled.onnx", tmp_path / "calib.npz", precision, "embedded", tmp_path / "o"
        )
        with pytest.raises(QuantserveError) as caught:
            optimize(options)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / 'pooled.onnx'}: rows along axis 0 are not independent: output ")
        assert "'centred' of row 0 run alone differs from the same row among 8 rows (by up to " in message
        assert "Triton's dynamic batching would change a request's answers" in message
        assert caught.value.exit_code == 2 and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("weight", "dependent"), [(1.0, True), (0.01, False)])
def test_rows_moving_within_kernel_noise_of_their_spread_are_independent(
    weight: float, dependent: bool, tmp_path: Path
) -> None:
    """A row alone may differ from itself in a batch by the kernels' numerics (magika's probabilities moved by 1.5 %
    of their spread and were refused): only a move beyond a tenth of the output's spread over the rows counts."""
    from optimizer.batch_axis import checking_session, dependent_rows

    share = numpy_helper.from_array(np.array(weight, np.float32), "share")
    nodes = [
        helper.make_node("ReduceMean", ["logits"], ["batch_mean"], name="pool_rows", axes=[0], keepdims=1),
        helper.make_node("Mul", ["batch_mean", "share"], ["shifted"], name="scale"),
        helper.make_node("Sub", ["logits", "shifted"], ["centred"], name="centre"),
    ]
    model = _mlp([helper.make_tensor_value_info("centred", TensorProto.FLOAT, ["N", C])], nodes)
    model.graph.initializer.append(share)
    onnx.save(model, str(tmp_path / "m.onnx"))
    rows = {"x": np.random.default_rng(4).normal(size=(8, D)).astype(np.float32)}
    found = dependent_rows(checking_session(tmp_path / "m.onnx", "m.onnx"), rows)
    assert bool(found) is dependent, found


def _fixed_time(tmp_path: Path) -> Path:
    """x [N, 'time', 4] through a Reshape whose target fixes time at 30, as the TorchScript exporter leaves one."""
    target = numpy_helper.from_array(np.array([0, 30, 4], np.int64), "target")
    weight = numpy_helper.from_array(np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "target"], ["r"], name="baked"),
            helper.make_node("MatMul", ["r", "W"], ["y"], name="mm"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "time", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 30, 3])],
        [target, weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    return tmp_path / "fixed.onnx"


def test_a_dynamic_axis_the_graph_fixed_is_said_and_data_at_another_size_is_one_line(tmp_path: Path) -> None:
    path = _fixed_time(tmp_path)
    rng = np.random.default_rng(6)
    np.savez(tmp_path / "t30.npz", x=rng.normal(size=(40, 30, 4)).astype(np.float32))
    artifact = optimize(OptimizeOptions(path, tmp_path / "t30.npz", "fp32", "embedded", tmp_path / "o30"))
    (note,) = next(s for s in artifact.manifest.stages if s.get("sizes_fixed"))["sizes_fixed"]["notes"]
    assert note.startswith("input 'x' axis 1 ('time') is declared dynamic, but the model does not run at 60 where it ")
    assert "Reshape node 'baked'" in note and note.endswith("or send only sizes it takes, such as 30")
    np.savez(tmp_path / "t40.npz", x=rng.normal(size=(40, 40, 4)).astype(np.float32))
    with pytest.raises(QuantserveError) as caught:
        optimize(OptimizeOptions(path, tmp_path / "t40.npz", "fp32", "embedded", tmp_path / "o40"))
    assert f"{path}: the model does not run on the data's rows (x [8, 40, 4]): Reshape node 'baked'" in str(
        caught.value
    )
    assert caught.value.exit_code == 2 and not (tmp_path / "o40").exists()


def test_a_model_of_ml_ops_alone_builds_without_an_opset_upgrade(tmp_path: Path) -> None:
    """onnxmltools writes an XGBoost model with ai.onnx.ml ops alone and no import of the standard domain: read as
    "opset 0", it was refused at every precision ("cannot upgrade opset 0 to 13"), though ONNX Runtime runs it."""
    coefficients = np.random.default_rng(0).normal(size=D).astype(np.float32)
    node = helper.make_node(
        "LinearRegressor", ["x"], ["y"], domain="ai.onnx.ml", coefficients=coefficients.tolist(), name="linear"
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "ml.onnx"))
    rows = np.random.default_rng(1).normal(size=(64, D)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=rows)
    options = OptimizeOptions(tmp_path / "ml.onnx", tmp_path / "calib.npz", "fp32", "embedded", tmp_path / "build")
    built = optimize(options)
    assert built.manifest.verification is not None and built.manifest.verification["holds"]
    got = _run(tmp_path / "build" / built.path.name, rows)["y"]
    np.testing.assert_allclose(got[:, 0], rows @ coefficients, rtol=1e-5, atol=1e-5)


def test_a_classifier_whose_held_out_rows_all_get_one_answer_is_refused_for_its_evidence(tmp_path: Path) -> None:
    """openWakeWord's timer head answered class 0 on all 300 background rows: top-1 agreement 1.0 there, shipped;
    0.987 on rows holding its wake words. One FP32 answer over the held-out rows shows nothing of the other classes."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array((0.1 * rng.normal(size=(D, C))).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.array([9.0, 0.0, 0.0, 0.0], np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["z"]),
        helper.make_node("Softmax", ["z"], ["logits"], axis=1),  # a distribution: read as classes whatever it answers
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "g", [value("x", TensorProto.FLOAT, ["N", D])], [value("logits", TensorProto.FLOAT, ["N", C])],
        [weights, bias],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "head.onnx"))
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(128, D)).astype(np.float32))
    np.savez(tmp_path / "held.npz", x=rng.normal(size=(300, D)).astype(np.float32))
    options = OptimizeOptions(
        tmp_path / "head.onnx", tmp_path / "calib.npz", "int8", "embedded", tmp_path / "build",
        eval_path=tmp_path / "held.npz",
    )  # fmt: skip
    with pytest.raises(BudgetExceeded) as refused:
        optimize(options)
    assert str(refused.value) == (
        "the held-out rows cannot show the drift budget: output 'logits' (classification): FP32 answers class 0 on all "
        "300 of them, so top-1 agreement says nothing of its other 3 classes; nothing written: pass --eval with rows "
        "FP32 answers with other classes (or --allow-thin-evidence to judge the rows given)"
    )
    assert refused.value.record["one_answer"] == [{"output": "logits", "class": 0, "classes": 4, "rows": 300}]
    assert not (tmp_path / "build").exists()

"""A ZipMap writing a graph output is removed: the output keeps its name as the [N, C] float tensor ZipMap read.

The graphs are built with onnx.helper the way the converters write them (skl2onnx is not in the environment):
skl2onnx's default (ZipMap after a Softmax, string or integer labels) and CatBoost's `save_model(format="onnx")`
(ai.onnx.ml ops alone, no standard opset: a TreeEnsembleClassifier's probability tensor through a ZipMap).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Artifact, Manifest

ML = helper.make_opsetid("ai.onnx.ml", 3)
ROWS = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)


def _seq_of_maps(key: int) -> onnx.TypeProto:
    value = helper.make_tensor_type_proto(TensorProto.FLOAT, None)
    return helper.make_sequence_type_proto(helper.make_map_type_proto(key, value))


def _zipmap(source: str, output: str, labels: list[int] | list[str]) -> onnx.NodeProto:
    attribute = "classlabels_strings" if isinstance(labels[0], str) else "classlabels_int64s"
    return helper.make_node("ZipMap", [source], [output], domain="ai.onnx.ml", **{attribute: labels})


def _logistic(path: Path, labels: list[int] | list[str], after_zipmap: bool = False) -> Path:
    """skl2onnx's LogisticRegression: MatMul+Add → Softmax (probabilities), ArgMax → label, ZipMap → output."""
    weight = np.random.default_rng(1).standard_normal((3, len(labels))).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
        _zipmap("probabilities", "zipped" if after_zipmap else "output_probability", labels),
    ]
    if after_zipmap:  # the sequence of maps reaches the output through another node
        nodes.append(helper.make_node("Identity", ["zipped"], ["output_probability"]))
    key = TensorProto.STRING if isinstance(labels[0], str) else TensorProto.INT64
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        helper.make_value_info("output_probability", _seq_of_maps(key)),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph(nodes, "lr", [x], outputs, [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), ML]), str(path))
    return path


def _catboost_like(path: Path) -> Path:
    """CatBoost's export: one TreeEnsembleClassifier (a stump on feature 0, 3 classes, softmax), ai.onnx.ml only."""
    trees = helper.make_node(
        "TreeEnsembleClassifier",
        ["features"],
        ["label", "probability_tensor"],
        domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0],
        nodes_nodeids=[0, 1, 2],
        nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_values=[0.0, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0],
        class_treeids=[0, 0, 0, 0, 0, 0],
        class_nodeids=[1, 1, 1, 2, 2, 2],
        class_ids=[0, 1, 2, 0, 1, 2],
        class_weights=[2.0, 0.5, -1.0, -0.5, 1.0, 0.25],
        classlabels_int64s=[0, 1, 2],
        post_transform="SOFTMAX",
    )
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        helper.make_value_info("probabilities", _seq_of_maps(TensorProto.INT64)),
    ]
    nodes = [trees, _zipmap("probability_tensor", "probabilities", [0, 1, 2])]
    model = helper.make_model(helper.make_graph(nodes, "cb", [features], outputs), opset_imports=[ML])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _optimize(source: Path, tmp_path: Path, name: str = "x") -> Artifact:
    np.savez(tmp_path / "calib.npz", **{name: ROWS})
    options = OptimizeOptions(
        source, tmp_path / "calib.npz", "fp32", "embedded", tmp_path / "out", speed=SpeedSettings(enabled=False)
    )
    return optimize(options)


def _tensor_before_zipmap(path: Path, tensor: str, name: str = "x") -> np.ndarray:
    """What the published model's ZipMap reads, run by ONNX Runtime with that tensor made an output."""
    model = onnx.load(str(path))
    model.graph.output.append(helper.make_empty_tensor_value_info(tensor))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([tensor], {name: ROWS})[0])


def _served(artifact: Artifact, output: str, name: str = "x") -> np.ndarray:
    session = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output], {name: ROWS})[0])


@pytest.mark.parametrize("labels", [["cat", "dog", "emu", "fox"], [3, 1, 2, 0]])
def test_skl2onnx_default_zipmap_output_becomes_its_probability_tensor(tmp_path: Path, labels: list) -> None:
    source = _logistic(tmp_path / "lr.onnx", labels)
    built = _optimize(source, tmp_path)
    spec = next(o for o in built.manifest.outputs if o.name == "output_probability")
    assert (spec.dtype, spec.shape) == ("float32", ("batch", 4))
    np.testing.assert_array_equal(_served(built, "output_probability"), _tensor_before_zipmap(source, "probabilities"))
    export = Manifest.load(tmp_path / "out").stages[0]
    shown = ", ".join(map(str, labels))
    assert export["zipmaps_removed"] == {
        "outputs": [{"output": "output_probability", "classes": labels}],
        "note": f"output 'output_probability': ZipMap removed, a [N, 4] float tensor now, classes {shown} in that "
        "order",
    }


def test_catboost_export_builds_fp32_with_the_trees_probabilities(tmp_path: Path) -> None:
    source = _catboost_like(tmp_path / "catboost.onnx")
    built = _optimize(source, tmp_path, "features")
    assert [(o.name, o.dtype, o.shape) for o in built.manifest.outputs] == [
        ("label", "int64", ("batch",)),
        ("probabilities", "float32", ("batch", 3)),
    ]
    served = _served(built, "probabilities", "features")
    np.testing.assert_array_equal(served, _tensor_before_zipmap(source, "probability_tensor", "features"))
    assert served.shape == (len(ROWS), 3) and np.allclose(served.sum(axis=1), 1.0)
    assert Manifest.load(tmp_path / "out").stages[0]["zipmaps_removed"]["outputs"][0]["classes"] == [0, 1, 2]


def test_a_zipmap_reading_an_input_is_served_as_a_copy_of_it(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    out = helper.make_value_info("p", _seq_of_maps(TensorProto.INT64))
    graph = helper.make_graph([_zipmap("x", "p", [0, 1, 2])], "g", [x], [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), ML]), str(tmp_path / "z.onnx"))
    np.testing.assert_array_equal(_served(_optimize(tmp_path / "z.onnx", tmp_path), "p"), ROWS)


def test_a_zipmap_behind_another_node_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from quantserve.cli import main

    source = _logistic(tmp_path / "lr.onnx", [0, 1], after_zipmap=True)
    np.savez(tmp_path / "calib.npz", x=ROWS)
    argv = ["optimize", str(source), "--calib", str(tmp_path / "calib.npz"), "--precision", "fp32"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2  # a model Triton cannot serve: exit 2, as others
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "quantserve: error: output 'output_probability' is a sequence of maps (as ZipMap writes), which Triton "
        "cannot serve; optimize removes a ZipMap only where it writes a graph output itself: make the tensor the "
        "ZipMap reads the output (its class probabilities, [N, C])"
    )
    assert not (tmp_path / "out").exists()


def test_optimize_says_which_output_lost_its_zipmap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quantserve.cli import main

    source = _catboost_like(tmp_path / "catboost.onnx")
    np.savez(tmp_path / "calib.npz", features=ROWS)
    argv = ["optimize", str(source), "--calib", str(tmp_path / "calib.npz"), "--precision", "fp32"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert (
        "quantserve: note: output 'probabilities': ZipMap removed, a [N, 3] float tensor now, classes 0, 1, 2 in "
        "that order"
    ) in capsys.readouterr().err.splitlines()

"""The stages that look inside If/Loop bodies for the names they read, on models whose bodies (nested two deep) read
top-level tensors: SmoothQuant's fold and initializer clean-up, stored weights' fold and unread inputs, ZipMap's
removal, the scalar wrapper's rename, the Gemm rewrite. Pinned as they were when each walked bodies its own way; they
share `optimizer.graph_walk` now (session 69), which also gave SmoothQuant the GRAPHS attributes it had missed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from optimizer.gemm_rewrite import gemms_as_matmuls
from optimizer.graph_walk import subgraph_reads
from optimizer.smoothquant import smooth_quant
from optimizer.stored_weights import drop_unread_inputs, fold_stored_weights
from optimizer.zipmap import remove_output_zipmaps
from serving.scalar_tensors import INNER, write_wrapped_model

OPSET = [helper.make_opsetid("", 17)]
RNG = np.random.default_rng(0)


def _value(name: str, dims: list[int | str] | None, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def _nested_if(reads: str, out: str, dims: list[int | str] | None) -> onnx.NodeProto:
    """An If whose then branch holds an If whose branches read `reads` from two scopes out; `out` its result (and
    the prefix of the names inside)."""

    def branch(op: str, name: str) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node(op, [reads], [name])], name, [], [_value(name, dims)])

    then, other = branch("Identity", f"{out}_in_then"), branch("Identity", f"{out}_in_else")
    inner = helper.make_node("If", ["c"], [f"{out}_inner"], then_branch=then, else_branch=other)
    outer = helper.make_graph([inner], f"{out}_then", [], [_value(f"{out}_inner", dims)])
    return helper.make_node("If", ["c"], [out], then_branch=outer, else_branch=branch("Neg", f"{out}_else"))


def test_subgraph_reads_names_what_nested_bodies_read_not_the_nodes_own_inputs() -> None:
    node = _nested_if("deep", "y", [1])
    assert subgraph_reads([node]) == {"deep", "c"}
    assert subgraph_reads([helper.make_node("Relu", ["x"], ["y"])]) == set()


def _layernorm_model(body_reads: str) -> onnx.ModelProto:
    """x → LayerNormalization → a → MatMul(w); an If nested two deep reads `body_reads` ("a" or the initializer k)."""
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln_s", "ln_b"], ["a"], axis=-1),
        helper.make_node("MatMul", ["a", "w"], ["y"]),
        _nested_if(body_reads, "z", [2, 4]),
    ]
    weights = {
        "ln_s": np.ones(4, np.float32),
        "ln_b": np.zeros(4, np.float32),
        "w": RNG.standard_normal((4, 3)).astype(np.float32),
        "k": np.ones((2, 4), np.float32),
    }
    inputs = [_value("x", [2, 4]), _value("c", [], TensorProto.BOOL)]
    outputs = [_value("y", [2, 3]), _value("z", [2, 4])]
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    return helper.make_model(helper.make_graph(nodes, "top", inputs, outputs, initializers), opset_imports=OPSET)


def test_smoothquant_leaves_a_layernorm_a_body_reads_and_keeps_initializers_only_bodies_read() -> None:
    maxima = {"a": np.array([1.0, 8.0, 1.0, 2.0], np.float32)}
    folded, record = smooth_quant(_layernorm_model("k"), [], maxima=maxima)
    assert (record.folded_into_layernorm, record.mul_inserted) == (1, 0)
    assert "k" in {i.name for i in folded.graph.initializer}
    assert "w" not in {i.name for i in folded.graph.initializer}  # replaced by its smoothed copy
    _, record = smooth_quant(_layernorm_model("a"), [], maxima=maxima)
    assert (record.folded_into_layernorm, record.mul_inserted) == (0, 1)


def _stored_weights_model() -> onnx.ModelProto:
    """A weight stored as INT8 (DequantizeLinear of initializers) beside an initializer `k` and an input `extra` that
    only a body two deep reads, and an input `unread` nothing reads."""
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
        _nested_if("k", "z", [2, 4]),
        _nested_if("extra", "z2", [2, 4]),
    ]
    initializers = [
        numpy_helper.from_array(RNG.integers(-8, 8, (4, 3)).astype(np.int8), "w_q"),
        numpy_helper.from_array(np.array(0.5, np.float32), "w_s"),
        numpy_helper.from_array(np.ones((2, 4), np.float32), "k"),
    ]
    names = ["x", "extra", "unread"]
    inputs = [*(_value(n, [2, 4]) for n in names), _value("c", [], TensorProto.BOOL)]
    outputs = [_value("y", [2, 3]), _value("z", [2, 4]), _value("z2", [2, 4])]
    return helper.make_model(helper.make_graph(nodes, "top", inputs, outputs, initializers), opset_imports=OPSET)


def test_stored_weights_keep_what_bodies_read_and_drop_only_inputs_nothing_reads() -> None:
    model = _stored_weights_model()
    assert fold_stored_weights(model) == 1
    assert sorted(i.name for i in model.graph.initializer) == ["k", "w"]
    assert drop_unread_inputs(model) == ["unread"]
    assert [v.name for v in model.graph.input] == ["x", "extra", "c"]


def _zipmap_model(read_in_body: bool) -> onnx.ModelProto:
    """Softmax → probs → ZipMap → output; where `read_in_body`, an If two deep also reads probs."""
    zipmap = helper.make_node("ZipMap", ["probs"], ["output"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2])
    nodes = [helper.make_node("Softmax", ["x"], ["probs"], axis=1), zipmap]
    outputs = [helper.make_value_info("output", helper.make_sequence_type_proto(helper.make_map_type_proto(
        TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, None))))]  # fmt: skip
    if read_in_body:
        nodes.append(_nested_if("probs", "z", ["N", 3]))
        outputs.append(_value("z", ["N", 3]))
    inputs = [_value("x", ["N", 3]), _value("c", [], TensorProto.BOOL)]
    opsets = [*OPSET, helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(helper.make_graph(nodes, "top", inputs, outputs), opset_imports=opsets)


def test_zipmap_removal_renames_the_probabilities_unless_a_body_reads_them() -> None:
    for read_in_body, expected in [(False, ["output"]), (True, ["probs", "output"])]:
        model = _zipmap_model(read_in_body)
        assert [r.output for r in remove_output_zipmaps(model)] == ["output"]
        assert model.graph.node[-1].op_type == ("Identity" if read_in_body else "Softmax")
        assert [name for n in model.graph.node for name in n.output if name != "z"][:2] == expected
        x = RNG.standard_normal((2, 3)).astype(np.float32)
        feed = {"x": x, "c": np.array(True)}
        got = ort.InferenceSession(model.SerializeToString()).run(["output"], feed)[0]
        np.testing.assert_allclose(got, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), rtol=1e-6)


def test_scalar_wrapper_renames_a_scalar_input_inside_nested_bodies(tmp_path: Path) -> None:
    nodes = [_nested_if("fmin", "y", [])]
    inputs = [_value("fmin", []), _value("c", [], TensorProto.BOOL)]
    model = helper.make_model(helper.make_graph(nodes, "top", inputs, [_value("y", [])]), opset_imports=OPSET)
    source, target = tmp_path / "model.onnx", tmp_path / "wrapped.onnx"
    onnx.save(model, str(source))
    write_wrapped_model(source, target, ["fmin"], ["y"])
    wrapped = onnx.load(str(target))
    body_inputs = {name for n in wrapped.graph.node for name in n.input} | subgraph_reads(wrapped.graph.node)
    assert f"fmin{INNER}" in subgraph_reads(wrapped.graph.node)
    assert "fmin" not in subgraph_reads(wrapped.graph.node) and "fmin" in body_inputs
    session = ort.InferenceSession(str(target))
    for cond, expected in [(True, 2.5), (False, -2.5)]:
        (got,) = session.run(["y"], {"fmin": np.array([2.5], np.float32), "c": np.array(cond)})
        assert got.shape == (1,) and got[0] == expected


def test_gemm_rewrite_leaves_a_model_whose_body_reads_the_transposed_weight(tmp_path: Path) -> None:
    weight = numpy_helper.from_array(RNG.standard_normal((3, 4)).astype(np.float32), "w")
    for with_body in (False, True):
        nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)]
        outputs = [_value("y", [2, 3])]
        if with_body:
            nodes.append(_nested_if("w", "z", [3, 4]))
            outputs.append(_value("z", [3, 4]))
        inputs = [_value("x", [2, 4]), _value("c", [], TensorProto.BOOL)]
        path = tmp_path / f"gemm_{with_body}.onnx"
        graph = helper.make_graph(nodes, "top", inputs, outputs, [weight])
        onnx.save(helper.make_model(graph, opset_imports=OPSET), str(path))
        out = gemms_as_matmuls(path, tmp_path / f"matmul_{with_body}.onnx")
        assert (out == path) is with_body
        assert onnx.load(str(out)).graph.node[0].op_type == ("Gemm" if with_body else "MatMul")


def test_smoothquant_keeps_an_initializer_read_in_a_graphs_attribute() -> None:
    """A custom op's list of graphs (attribute type GRAPHS) reading `k`: SmoothQuant dropped `k`, then refused the
    graph it made as invalid (it looked inside GRAPH attributes only)."""
    body = helper.make_graph([helper.make_node("Identity", ["k"], ["kb"])], "held", [], [_value("kb", [4])])
    custom = helper.make_node("Holds", ["x"], ["z"], domain="com.example")
    custom.attribute.append(helper.make_attribute("bodies", [body]))
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("MatMul", ["a", "w"], ["y"]), custom]
    initializers = [numpy_helper.from_array(np.ones(s, np.float32), n) for n, s in [("w", (4, 3)), ("k", (4,))]]
    graph = helper.make_graph(nodes, "top", [_value("x", [2, 4])], [_value("y", [2, 3]), _value("z", [2, 4])])
    graph.initializer.extend(initializers)
    model = helper.make_model(graph, opset_imports=[*OPSET, helper.make_opsetid("com.example", 1)])
    smoothed, record = smooth_quant(model, [], maxima={"a": np.array([1.0, 8.0, 1.0, 2.0], np.float32)})
    assert record.mul_inserted == 1
    assert "k" in {i.name for i in smoothed.graph.initializer}

"""One walk over an ONNX graph and its subgraphs (`optimizer.graph_walk`), and the results of the stages that use it
on models with nested If/Loop bodies, pinned as they were when each stage walked bodies its own way (session 69)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.compute_share import has_subgraph_compute, subgraph_compute
from optimizer.fuse import canonical_dim_names
from optimizer.graph_walk import walk_graphs, walk_nodes
from optimizer.quant_exclusions import graph_no_compute_refusal
from optimizer.unknown_ops import UnknownOp, free_outputs, unknown_ops


def _value(name: str, dims: list[int | str], elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def _loop_body(
    nodes: list[onnx.NodeProto],
    carried: Sequence[onnx.ValueInfoProto] = (),
    made: Sequence[onnx.ValueInfoProto] = (),
    value_info: Sequence[onnx.ValueInfoProto] = (),
) -> onnx.GraphProto:
    """A Loop body named "body": `nodes` and a condition passed through, `carried` in and `made` out beside them."""
    cond = helper.make_node("Identity", ["c_in"], ["c_out"], name="body_cond")
    inputs = [_value("i", [], TensorProto.INT64), _value("c_in", [], TensorProto.BOOL), *carried]
    outputs = [_value("c_out", [], TensorProto.BOOL), *made]
    return helper.make_graph([*nodes, cond], "body", inputs, outputs, value_info=value_info)


def _nested() -> onnx.ModelProto:
    """top: pre (Relu), choose (If: then → [then_relu, loop (Loop: body → [body_relu])], else → [else_relu]), post."""
    body = _loop_body(
        [helper.make_node("Relu", ["s_in"], ["s_out"], name="body_relu")],
        carried=[_value("s_in", [1])],
        made=[_value("s_out", [1])],
    )
    then = helper.make_graph(
        [
            helper.make_node("Relu", ["h"], ["t"], name="then_relu"),
            helper.make_node("Loop", ["n", "go", "t"], ["then_y"], name="loop", body=body),
        ],
        "then",
        [],
        [_value("then_y", [1])],
    )
    other = helper.make_graph([helper.make_node("Relu", ["h"], ["else_y"], name="else_relu")], "else", [], [])
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="pre"),
        helper.make_node("If", ["c"], ["z"], name="choose", then_branch=then, else_branch=other),
        helper.make_node("Relu", ["z"], ["y"], name="post"),
    ]
    graph = helper.make_graph(nodes, "top", [_value("x", [1]), _value("c", [], TensorProto.BOOL)], [_value("y", [1])])
    return helper.make_model(graph)


def test_walk_nodes_meets_every_node_once_in_the_graph_it_sits_in() -> None:
    met = [(node.name, graph.name) for node, graph in walk_nodes(_nested().graph)]
    assert met == [  # make_node stores attributes sorted by name: else_branch before then_branch
        ("pre", "top"),
        ("choose", "top"),
        ("else_relu", "else"),
        ("then_relu", "then"),
        ("loop", "then"),
        ("body_relu", "body"),
        ("body_cond", "body"),
        ("post", "top"),
    ]


def test_walk_graphs_gives_each_graph_before_its_own_with_the_node_holding_it() -> None:
    scopes = list(walk_graphs(_nested().graph))
    assert [(s.graph.name, s.owner.name if s.owner else None, s.attribute, s.depth) for s in scopes] == [
        ("top", None, "", 0),
        ("else", "choose", "else_branch", 1),
        ("then", "choose", "then_branch", 1),
        ("body", "loop", "body", 2),
    ]
    body = scopes[3]
    assert [s.graph.name for s in body.enclosing()] == ["body", "then", "top"]


def _dq(weight: str) -> list[onnx.NodeProto]:
    return [helper.make_node("DequantizeLinear", [f"{weight}_q", f"{weight}_s"], [f"{weight}_dq"], name=f"{weight}_d")]


def _share_model(int8: bool) -> onnx.ModelProto:
    """An If whose branches hold MatMuls and a Loop whose body holds two; in the `int8` twin, `top_w` is dequantized
    in the top graph, `then_w` inside the then branch: the body's MatMul on `then_w` reads it from the outer scope."""
    read = (lambda w: f"{w}_dq") if int8 else (lambda w: w)
    body = _loop_body(
        [
            helper.make_node("MatMul", ["s_in", read("then_w")], ["m1"], name="body_mm_outer"),
            helper.make_node("MatMul", ["m1", "body_w"], ["s_out"], name="body_mm_fp32"),
        ]
    )
    then = helper.make_graph(
        [
            *(_dq("then_w") if int8 else []),
            helper.make_node("MatMul", ["h", read("top_w")], ["t"], name="then_mm"),
            helper.make_node("Loop", ["n", "go", "t"], ["then_y"], name="loop", body=body),
        ],
        "then",
        [],
        [],
    )
    other = helper.make_graph([helper.make_node("MatMul", ["h", "else_w"], ["e"], name="else_mm")], "else", [], [])
    nodes = [
        *(_dq("top_w") if int8 else []),
        helper.make_node("MatMul", ["x", "w"], ["h"], name="top_mm"),
        helper.make_node("If", ["c"], ["y"], name="choose", then_branch=then, else_branch=other),
    ]
    return helper.make_model(helper.make_graph(nodes, "top", [], []))


def test_subgraph_compute_counts_body_nodes_int8_by_the_dequantized_weights_around_them() -> None:
    found = subgraph_compute(_share_model(False), _share_model(True))
    assert found == {"MatMul in If branch": (2, 1), "MatMul in Loop body": (2, 1)}
    assert has_subgraph_compute(_share_model(False))
    assert not has_subgraph_compute(helper.make_model(helper.make_graph([], "empty", [], [])))


def test_canonical_dim_names_numbers_subgraph_axes_after_the_top_graph_each_graph_before_its_own() -> None:
    body = _loop_body(
        [helper.make_node("Relu", ["s_in"], ["s_out"], name="body_relu")],
        carried=[_value("s_in", ["d_in"])],
        made=[_value("s_out", ["d_out"])],
        value_info=[_value("b", ["d_vi"])],
    )
    then = helper.make_graph(
        [helper.make_node("Loop", ["n", "go", "h"], ["then_y"], name="loop", body=body)],
        "then",
        [],
        [_value("then_y", ["t_out"])],
    )
    other = helper.make_graph([], "else", [], [_value("h", ["e_out", "top_vi"])])
    nodes = [helper.make_node("If", ["c"], ["y"], name="choose", then_branch=then, else_branch=other)]
    graph = helper.make_graph(
        nodes, "top", [_value("x", ["batch"])], [_value("y", ["batch", "o"])], value_info=[_value("v", ["top_vi"])]
    )
    model = helper.make_model(graph)
    canonical_dim_names(model, {})

    def dims(values: list[onnx.ValueInfoProto]) -> list[list[str]]:
        return [[d.dim_param for d in v.type.tensor_type.shape.dim] for v in values]

    assert dims([*model.graph.output, *model.graph.value_info]) == [["batch", "unk__0"], ["unk__1"]]
    else_graph, then_graph = (a.g for a in model.graph.node[0].attribute)  # make_node sorts attributes by name
    loop_body = then_graph.node[0].attribute[0].g
    assert dims([*else_graph.output]) == [["unk__2", "unk__1"]]
    assert dims([*then_graph.output]) == [["unk__3"]]
    body_dims = dims([*loop_body.input, *loop_body.output, *loop_body.value_info])
    assert body_dims == [[], [], ["unk__4"], [], ["unk__5"], ["unk__6"]]


def test_no_compute_refusal_names_ops_of_every_graph_weight_first_then_each_graph_before_its_bodies() -> None:
    rng = np.random.default_rng(0)
    body = _loop_body([helper.make_node("Add", ["s_in", "big"], ["s_out"], name="body_add")])
    body.initializer.append(numpy_helper.from_array(rng.random(100).astype(np.float32), "big"))
    then = helper.make_graph([helper.make_node("Loop", ["n", "go", "h"], ["t"], body=body)], "then", [], [])
    other = helper.make_graph([helper.make_node("Sub", ["h", "small"], ["e"])], "else", [], [])
    other.initializer.append(numpy_helper.from_array(rng.random(4).astype(np.float32), "small"))
    nodes = [
        helper.make_node("Identity", ["x"], ["h"]),
        helper.make_node("If", ["c"], ["z"], then_branch=then, else_branch=other),
        helper.make_node("Sigmoid", ["z"], ["y"]),
    ]
    refusal = graph_no_compute_refusal(helper.make_model(helper.make_graph(nodes, "top", [], [])))
    assert refusal is not None
    assert "(its ops: Add, Sub, Identity, If, Sigmoid, Loop)" in refusal


def test_unknown_ops_are_named_in_the_order_met_and_bodies_reading_them_are_not_free() -> None:
    then = helper.make_graph([helper.make_node("FooA", ["x"], ["t"], name="foo_a_1")], "then", [], [])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["e"], name="else_id")], "else", [], [])
    reads_b = helper.make_graph([helper.make_node("Identity", ["fb"], ["r"], name="reads_fb")], "reads_b", [], [])
    keeps = helper.make_graph([helper.make_node("Identity", ["x"], ["k"], name="keeps_x")], "keeps", [], [])
    nodes = [
        helper.make_node("If", ["c"], ["y_if"], name="choose", then_branch=then, else_branch=other),
        helper.make_node("FooB", ["x"], ["fb"], name="foo_b"),
        helper.make_node("FooA", ["x"], ["fa"], name="foo_a_2"),
        helper.make_node("If", ["c"], ["y_outer"], name="outer", then_branch=reads_b, else_branch=keeps),
        helper.make_node("Relu", ["x"], ["y_free"], name="free"),
    ]
    outputs = [_value(name, [1]) for name in ("y_if", "y_outer", "y_free")]
    graph = helper.make_graph(nodes, "top", [_value("x", [1]), _value("c", [], TensorProto.BOOL)], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ops = unknown_ops(model)
    assert ops == [UnknownOp("FooA", "", 2, "foo_a_1"), UnknownOp("FooB", "", 1, "foo_b")]
    assert free_outputs(model, ops) == ["y_free"]

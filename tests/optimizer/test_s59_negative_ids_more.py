"""Negative ids refused where session 58's check did not look (session 59): lookups inside a subgraph, and
GatherElements/GatherND of a weight table.

An embedding lookup in a Loop, Scan or If body (a loop over time steps gathering each step's id from the table) reads
-1 as the table's last row as a main-graph Gather does; so do GatherElements and GatherND (ONNX takes indices in
[-s, s-1]; PyTorch's torch.gather raises on -1). ScatterND/ScatterElements write at the ids, they look nothing up:
left alone. Models are built with onnx.helper, checked, and run by ONNX Runtime to show the last row is what -1 reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.gather_indices import negative_ids_refusal
from quantserve.data import TensorData

VOCAB, WIDTH, ROWS, TOKENS = 100, 8, 64, 6
FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def _save(path: Path, nodes: list[onnx.NodeProto], output: onnx.ValueInfoProto, *extra: onnx.TensorProto) -> Path:
    """A model of `nodes` reading the int64 graph input `ids` (N, TOKENS), the (VOCAB, WIDTH) initializer `table`
    (row r holds r) and `extra` initializers; checked by onnx before it is saved."""
    table = np.repeat(np.arange(VOCAB, dtype=np.float32)[:, None], WIDTH, axis=1)
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("ids", INT64, ["N", TOKENS])],
        [output],
        [numpy_helper.from_array(table, "table"), *extra],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _padded() -> list[tuple[str | Path, TensorData]]:
    ids = np.arange(ROWS * TOKENS).reshape(ROWS, TOKENS).astype(np.int64) % VOCAB
    ids[7, 0] = -1
    ids[9, 2] = -2
    return [("calib.npz", TensorData({"ids": ids}))]


def _run(model: Path, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"ids": ids})[0])


def _body(
    name: str, nodes: list[onnx.NodeProto], inputs: list[tuple[str, int, list]], outputs: list
) -> onnx.GraphProto:
    values = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    return helper.make_graph(nodes, name, values, [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs])


def _scan(path: Path, before: list[onnx.NodeProto] | None = None) -> Path:
    """Scan over the time steps of ids (N, TOKENS), its body looking up each step's ids (N,) in the outer `table`;
    `before` are body nodes turning the step's `step_ids` into `x` (an Identity where none)."""
    before = before or [helper.make_node("Identity", ["step_ids"], ["x"])]
    body = _body(
        "step",
        [*before, helper.make_node("Gather", ["table", "x"], ["vectors"], name="step_lookup")],
        [("step_ids", INT64, ["N"])],
        [("vectors", FLOAT, ["N", WIDTH])],
    )
    nodes = [
        helper.make_node("Transpose", ["ids"], ["by_time"], perm=[1, 0]),
        helper.make_node("Scan", ["by_time"], ["steps"], body=body, num_scan_inputs=1, name="over_time"),
    ]
    zero = numpy_helper.from_array(np.zeros((), np.int64), "zero")
    return _save(path, nodes, helper.make_tensor_value_info("steps", FLOAT, [TOKENS, "N", WIDTH]), zero)


def test_a_scan_body_looking_up_each_time_steps_ids_is_refused_naming_the_body_gather(tmp_path: Path) -> None:
    model = _scan(tmp_path / "scan.onnx")
    assert _run(model, np.array([[-1, 2, 3, 4, 5, 6]], np.int64))[0, 0, 0] == VOCAB - 1  # -1 read the last row
    assert negative_ids_refusal(model, _padded()).startswith(
        "calib.npz: input 'ids' holds 2 negative value(s) in 2 row(s) (smallest -2, first in row 7), and the model "
        "reads it as the indices of Gather 'step_lookup' of a 100-row table (an embedding lookup): ONNX Gather "
        "takes -k as the k-th row from the end (-1 reads row 99)"
    )


def test_a_scan_body_clamping_the_steps_ids_is_left_alone(tmp_path: Path) -> None:
    clamp = helper.make_node("Max", ["step_ids", "zero"], ["x"])
    assert negative_ids_refusal(_scan(tmp_path / "scan.onnx", [clamp]), _padded()) == ""


def _loop(path: Path, reads_carried: bool) -> Path:
    """Loop over the TOKENS time steps looking up step t's ids in the outer `table`: gathered from the outer `ids`
    at the iteration number (referenced by name), or (`reads_carried`) from the loop-carried copy of ids."""
    source = "carried" if reads_carried else "ids"
    body = _body(
        "step",
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["carried"], ["carried_out"]),
            helper.make_node("Gather", [source, "t"], ["step_ids"], axis=1),
            helper.make_node("Gather", ["table", "step_ids"], ["vectors"], name="step_lookup"),
        ],
        [("t", INT64, []), ("cond_in", TensorProto.BOOL, []), ("carried", INT64, ["N", TOKENS])],
        [("cond_out", TensorProto.BOOL, []), ("carried_out", INT64, ["N", TOKENS]), ("vectors", FLOAT, ["N", WIDTH])],
    )
    steps = numpy_helper.from_array(np.array(TOKENS, np.int64), "steps")
    true = numpy_helper.from_array(np.array(True), "true")
    loop = helper.make_node("Loop", ["steps", "true", "ids"], ["ids_after", "vectors_by_step"], body=body)
    output = helper.make_tensor_value_info("vectors_by_step", FLOAT, [TOKENS, "N", WIDTH])
    return _save(path, [loop], output, steps, true)


def test_a_loop_body_gathering_the_steps_id_from_the_outer_ids_then_the_table_is_refused(tmp_path: Path) -> None:
    model = _loop(tmp_path / "loop.onnx", reads_carried=False)
    assert _run(model, np.array([[-1, 2, 3, 4, 5, 6]], np.int64))[0, 0, 0] == VOCAB - 1
    assert "the indices of Gather 'step_lookup' of a 100-row table" in negative_ids_refusal(model, _padded())


def test_a_loop_body_looking_up_its_loop_carried_ids_is_refused(tmp_path: Path) -> None:
    model = _loop(tmp_path / "loop.onnx", reads_carried=True)
    assert "the indices of Gather 'step_lookup' of a 100-row table" in negative_ids_refusal(model, _padded())


def test_an_if_branch_looking_up_the_outer_ids_is_refused(tmp_path: Path) -> None:
    def branch(name: str, table: str) -> onnx.GraphProto:
        lookup = helper.make_node("Gather", [table, "ids"], [f"{name}_vectors"], name=f"{name}_lookup")
        return _body(name, [lookup], [], [(f"{name}_vectors", FLOAT, ["N", TOKENS, WIDTH])])

    nodes = [
        helper.make_node("Neg", ["table"], ["negated"]),  # the else branch gathers a computed tensor: no lookup
        helper.make_node(
            "If", ["flag"], ["vectors"], then_branch=branch("then", "table"), else_branch=branch("else", "negated")
        ),
    ]
    flag = numpy_helper.from_array(np.array(True), "flag")
    output = helper.make_tensor_value_info("vectors", FLOAT, ["N", TOKENS, WIDTH])
    refusal = negative_ids_refusal(_save(tmp_path / "if.onnx", nodes, output, flag), _padded())
    assert "the indices of Gather 'then_lookup' of a 100-row table" in refusal


def _indexed(path: Path, op: str, before: list[onnx.NodeProto] | None = None, **attrs: int) -> Path:
    """`op` of the (VOCAB, WIDTH) table (cast to FP16 and back: TABLE_PASS_THROUGH) at ids after `before` (into
    `x`; an Identity where none): GatherElements on axis 0 reads (N, TOKENS) values, GatherND (N, TOKENS) rows."""
    before = before or [helper.make_node("Identity", ["ids"], ["x"])]
    nodes = [
        *before,
        helper.make_node("Cast", ["table"], ["table16"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["table16"], ["table32"], to=FLOAT),
    ]
    if op == "GatherND":
        nodes.append(helper.make_node("Unsqueeze", ["x", "last"], ["x_tuples"]))
        nodes.append(helper.make_node(op, ["table32", "x_tuples"], ["y"], name="lookup", **attrs))
        shape: list = ["N", TOKENS, WIDTH]
    else:
        nodes.append(helper.make_node(op, ["table32", "x"], ["y"], name="lookup", **attrs))
        shape = ["N", TOKENS]
    last = numpy_helper.from_array(np.array([-1], np.int64), "last")
    zero = numpy_helper.from_array(np.zeros((), np.int64), "zero")
    return _save(path, nodes, helper.make_tensor_value_info("y", FLOAT, shape), last, zero)


def test_gather_elements_of_a_table_at_negative_ids_is_refused_saying_torch_gather_raises(tmp_path: Path) -> None:
    model = _indexed(tmp_path / "elements.onnx", "GatherElements")
    assert _run(model, np.array([[-1, 2, 3, 4, 5, 6]], np.int64))[0, 0] == VOCAB - 1
    assert negative_ids_refusal(model, _padded()) == (
        "calib.npz: input 'ids' holds 2 negative value(s) in 2 row(s) (smallest -2, first in row 7), and the model "
        "reads it as the indices of GatherElements 'lookup' of a 100-row table (an embedding lookup): ONNX "
        "GatherElements takes -k as the k-th row from the end (-1 reads row 99), where PyTorch's torch.gather raises "
        "RuntimeError, so those rows would be answered silently from the wrong embeddings; an id of -1 is usually "
        "padding or an unknown token: map it to a real id (such as the pad id) in the data, or clamp the ids in the "
        "model (ids.clamp(min=0)) before the lookup"
    )


def test_gather_nd_of_a_table_at_negative_ids_is_refused(tmp_path: Path) -> None:
    model = _indexed(tmp_path / "nd.onnx", "GatherND")
    assert _run(model, np.array([[-1, 2, 3, 4, 5, 6]], np.int64))[0, 0, 0] == VOCAB - 1
    assert "the indices of GatherND 'lookup' of a 100-row table (an embedding lookup): ONNX GatherND takes -k" in (
        negative_ids_refusal(model, _padded())
    )


def test_gather_elements_and_nd_behind_a_clamp_are_left_alone(tmp_path: Path) -> None:
    for op in ("GatherElements", "GatherND"):
        clamp = [helper.make_node("Max", ["ids", "zero"], ["x"])]
        assert negative_ids_refusal(_indexed(tmp_path / f"{op}.onnx", op, clamp), _padded()) == "", op


def test_scatter_nd_and_scatter_elements_at_negative_ids_are_not_lookups(tmp_path: Path) -> None:
    """A scatter writes into its data at the ids (an update), it reads no table row for them: not this check's."""
    updates = numpy_helper.from_array(np.ones((1, TOKENS, WIDTH), np.float32), "updates")
    scatter_nd = [
        helper.make_node("Unsqueeze", ["ids", "last"], ["tuples"]),
        helper.make_node("ScatterND", ["table", "tuples", "updates"], ["y"], name="write"),
    ]
    last = numpy_helper.from_array(np.array([-1], np.int64), "last")
    output = helper.make_tensor_value_info("y", FLOAT, [VOCAB, WIDTH])
    assert negative_ids_refusal(_save(tmp_path / "nd.onnx", scatter_nd, output, updates, last), _padded()) == ""
    ones = numpy_helper.from_array(np.ones((1, TOKENS), np.float32), "ones")
    elements = helper.make_node("ScatterElements", ["table", "ids", "ones"], ["y"], name="write")
    assert negative_ids_refusal(_save(tmp_path / "el.onnx", [elements], output, ones), _padded()) == ""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script and the TorchScript exporter
def test_torch_exports_of_a_scripted_per_step_embedding_and_of_torch_gather_are_refused(tmp_path: Path) -> None:
    """The two shapes as PyTorch writes them: a scripted loop over time steps (an ONNX Loop whose body gathers
    `ids[:, t]` from the outer ids, then the embedding) and torch.gather of a parameter (GatherElements)."""
    import torch
    from torch import nn

    class PerStep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, WIDTH)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            total = torch.zeros(ids.shape[0], self.embed.embedding_dim)
            for t in range(ids.shape[1]):
                total = total + self.embed(ids[:, t])
            return total

    class Picked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.randn(VOCAB, TOKENS))

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.gather(self.table, 0, ids)

    for module, op in ((torch.jit.script(PerStep()), "Gather"), (Picked(), "GatherElements")):
        path = tmp_path / f"{op}.onnx"
        example = (torch.zeros(2, TOKENS, dtype=torch.long),)
        torch.onnx.export(module, example, str(path), input_names=["ids"], dynamic_axes={"ids": {0: "N"}}, dynamo=False)
        assert f"the indices of {op} '" in negative_ids_refusal(path, _padded()), op

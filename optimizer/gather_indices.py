"""Negative token ids in the data of an input the model reads as Gather indices: refused before any stage runs.

ONNX Gather takes an index of -k as the k-th row from the end (-1: the last row); PyTorch's nn.Embedding raises
IndexError on it. A token classifier (nn.Embedding(100, 32) → MLP, session 58) given ids of -1 (padding, an unknown
token) was answered from its embedding table's last row: `infer` exited 0, evaluate passed, accuracy a quiet 0.6445.
An id past the table is refused by ONNX Runtime at run time; a negative one is not. optimize refuses it here, from
the exported graph and the data alone (a walk over the graph's nodes, no session): an integer input that reaches the
indices of a Gather of a weight table (an embedding lookup) directly or through ops that only reshape, retype or
select its values, and holds a negative value. GatherElements and GatherND of a table are lookups too: ONNX takes
their indices in [-s, s-1], -1 the last row (ONNX Runtime reads it so), where torch.gather raises RuntimeError on -1
(PyTorch's advanced indexing `table[ids]` reads from the end as ONNX does, but ids of -1 in the data of a weight
table's lookup are padding, not a last row meant). The walk enters Loop, Scan and If bodies (session 59: a loop over
time steps looking each step's id up): a body sees the outer names it uses and, bound from the node's inputs, a
Loop's carried values and a Scan's states and slices. ScatterND/ScatterElements write at the ids, read no row: left
alone. A Gather of a computed tensor (the last time step at -1) is no lookup: PyTorch's indexing reads -1 from the
end too. A graph that looks at the ids' sign first (a Clip, Max, Relu, Where, a comparison: `ids.clamp(min=0)`, a
padding mask, an Equal with a negative constant: `ids == -1`), in any of its bodies, handles them and is left
alone, as are float inputs (features, not ids) and ids shifted by arithmetic (Add, Sub).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from quantserve.data import TensorData

# ops that pass their first input's values on unchanged (only their shape, type or a selection of them: a time
# step's ids gathered or sliced from all of them): ids through them are still ids
PASS_THROUGH = frozenset(
    {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Identity", "Flatten", "Transpose", "Gather", "Slice", "Split"}
)
# ops reading rows of their data (input 0) at the indices (input 1), -k the k-th from the end
LOOKUPS = frozenset({"Gather", "GatherElements", "GatherND"})
# what PyTorch does with an index of -1 where each lookup comes from (the message's comparison)
PYTORCH_ON_MINUS_ONE = {
    "Gather": "PyTorch's Embedding raises IndexError",
    "GatherElements": "PyTorch's torch.gather raises RuntimeError",
    "GatherND": "PyTorch's Embedding raises IndexError",
}
# ops through which a graph can see or remove a negative id (a clamp, a mask, a replacement): it handles them
SIGN_READERS = frozenset(
    {"Clip", "Max", "Relu", "Abs", "Mod", "Where", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}
)
# ops through which a weight table is still a table: an FP16 table cast to float, an INT8 one dequantized
TABLE_PASS_THROUGH = frozenset({"Cast", "Identity", "DequantizeLinear"})
SMALL_CONSTANT = 16  # values an Equal's constant operand may hold to be read (a pad id, a few special ids)
INTEGER_TYPES = frozenset(
    {onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64}
)


@dataclass(frozen=True)
class IdLookup:
    """An integer input whose values reach the indices of a lookup (`node`, a LOOKUPS op `op`, in the main graph or
    a body) of a weight table of `rows` rows along the gathered axis (0 where its size is unknown)."""

    input: str
    node: str
    rows: int
    op: str = "Gather"


def negative_ids_refusal(model_path: Path, files: Sequence[tuple[str | Path, TensorData]]) -> str:
    """The refusal of the first data file in `files` holding a negative value in an input the model at `model_path`
    reads as lookup indices (its sign unhandled in the graph); "" where none does."""
    lookups = id_lookups(onnx.load(str(model_path), load_external_data=False).graph)
    for path, data in files:
        for lookup in lookups:
            array = data.arrays.get(lookup.input)
            if array is not None and np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
                return _refusal(path, lookup, array)
    return ""


def id_lookups(graph: onnx.GraphProto) -> list[IdLookup]:
    """The integer inputs of `graph` that reach the indices of a lookup of a weight table (an embedding lookup), in
    the graph or its bodies, through PASS_THROUGH ops alone, none of those tensors read by a SIGN_READERS op; one
    per input (its first such lookup, depth first in graph order)."""
    tables = weight_tables(graph)
    found = []
    for value in graph.input:
        if value.name in tables or value.type.tensor_type.elem_type not in INTEGER_TYPES:
            continue
        lookups, handled = _reach(graph, [value.name], {})
        if lookups and not handled:
            node, rows = lookups[0]
            found.append(IdLookup(value.name, node.name or node.output[0], rows, node.op_type))
    return found


def _reach(
    graph: onnx.GraphProto, ids: list[str], outer: dict[str, list[int]]
) -> tuple[list[tuple[onnx.NodeProto, int]], bool]:
    """The lookups of a weight table (and its rows) at the tensors holding the values of `ids` in `graph` and its
    bodies, depth first in graph order, and whether a sign reader reads those tensors; `outer`: the enclosing
    graphs' weight tables, which a body may read by name."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in set(node.input):
            consumers.setdefault(name, []).append(node)
    tables = weight_tables(graph, outer)
    reached = _passed_through(ids, consumers)
    readers = [node for name in reached for node in consumers.get(name, [])]
    handled = any(node.op_type in SIGN_READERS or _compares_to_negative(node, graph) for node in readers)
    lookups = []
    for node in graph.node:
        if _looks_up(node, reached, tables):
            lookups.append((node, _table_rows(node, tables)))
        # Not optimizer.graph_walk's walk: a body is followed with the ids its node binds (`_bound`) and the outer
        # graphs' weight tables, which a walk over nodes alone does not carry.
        for body in (attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH):
            inner, inner_handled = _reach(body, [*reached, *_bound(node, body, reached)], tables)
            lookups += inner
            handled = handled or inner_handled
    return lookups, handled


def _bound(node: onnx.NodeProto, body: onnx.GraphProto, reached: list[str]) -> list[str]:
    """The inputs of `node`'s `body` bound from its inputs among `reached`: a Loop's carried values (its inputs
    from the third on; the first two of the body are the iteration number and the condition), a Scan's states and
    scan inputs (matched from the end: Scan-8 puts an optional sequence_lens first). An If binds none."""
    if node.op_type == "Loop":
        pairs = list(zip(node.input[2:], body.input[2:], strict=False))
    elif node.op_type == "Scan":
        pairs = list(zip(reversed(node.input), reversed(body.input), strict=False))
    else:
        pairs = []
    return [inner.name for outer, inner in pairs if outer in reached]


def _compares_to_negative(node: onnx.NodeProto, graph: onnx.GraphProto) -> bool:
    """Whether `node` is an Equal of the ids with a constant holding a negative value (`ids == -1`): a mask of the
    negative ids, which the graph then reads (an output masked where the id is -1). An Equal with the pad id 0 says
    nothing of -1 and is not one."""
    if node.op_type != "Equal":
        return False
    small = {t.name: t for t in graph.initializer if int(np.prod(t.dims)) <= SMALL_CONSTANT}
    for other in node.input:
        tensor = small.get(other) or next(
            (
                a.t
                for n in graph.node
                if n.op_type == "Constant" and n.output[0] == other
                for a in n.attribute
                if a.name == "value"
            ),
            None,
        )
        if tensor is not None and (values := numpy_helper.to_array(tensor)).size and values.min() < 0:
            return True
    return False


def weight_tables(graph: onnx.GraphProto, outer: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """{tensor: its dims} for the weights of `graph` (a body's with those of the graphs around it, `outer`):
    initializers, Constant nodes' values, and those cast, dequantized or passed on by Identity (an FP16 table cast
    to float, an INT8 one dequantized)."""
    tables = {**(outer or {}), **{tensor.name: list(tensor.dims) for tensor in graph.initializer}}
    for node in graph.node:  # in graph order: a node's inputs come before it
        if node.op_type == "Constant":
            value = next((attr.t for attr in node.attribute if attr.name == "value"), None)
            tables[node.output[0]] = list(value.dims) if value is not None else []
        elif node.op_type in TABLE_PASS_THROUGH and node.input and node.input[0] in tables:
            tables[node.output[0]] = tables[node.input[0]]
    return tables


def _looks_up(gather: onnx.NodeProto, ids: list[str], tables: dict[str, list[int]]) -> bool:
    """Whether `gather` (a LOOKUPS op) reads rows of a weight table at indices among the tensors `ids`: an embedding
    lookup. A Gather of a computed tensor at a negative index (the last time step at -1) is left alone: PyTorch's
    indexing reads -1 from the end too; its Embedding alone raises."""
    return gather.op_type in LOOKUPS and len(gather.input) > 1 and gather.input[1] in ids and gather.input[0] in tables


def _passed_through(names: list[str], consumers: dict[str, list[onnx.NodeProto]]) -> list[str]:
    """`names` and every tensor holding their values after PASS_THROUGH ops (as their data input, input 0; each of
    a Split's outputs)."""
    reached, todo = list(names), list(names)
    while todo:
        for node in consumers.get(todo.pop(), []):
            if node.op_type not in PASS_THROUGH or node.input[0] not in reached:
                continue
            for output in node.output:
                if output not in reached:
                    reached.append(output)
                    todo.append(output)
    return reached


def _table_rows(gather: onnx.NodeProto, tables: dict[str, list[int]]) -> int:
    """The size of the gathered axis of `gather`'s table (a GatherND's first after its batch dims), 0 where its
    dims are unknown."""
    dims = tables.get(gather.input[0])
    axis = next((attr.i for attr in gather.attribute if attr.name in ("axis", "batch_dims")), 0)
    return int(dims[axis]) if dims and -len(dims) <= axis < len(dims) else 0


def _refusal(path: str | Path, lookup: IdLookup, array: np.ndarray) -> str:
    ids = np.atleast_1d(array)
    negative = ids.reshape(len(ids), -1) < 0
    rows = np.flatnonzero(negative.any(axis=1))
    smallest = int(array.min())
    table = f" of a {lookup.rows}-row table" if lookup.rows else ""
    last = f" (-1 reads row {lookup.rows - 1})" if lookup.rows else ""
    return (
        f"{path}: input '{lookup.input}' holds {int(negative.sum())} negative value(s) in {len(rows)} row(s) "
        f"(smallest {smallest}, first in row {int(rows[0])}), and the model reads it as the indices of {lookup.op} "
        f"'{lookup.node}'{table} (an embedding lookup): ONNX {lookup.op} takes -k as the k-th row from the end{last}, "
        f"where {PYTORCH_ON_MINUS_ONE[lookup.op]}, so those rows would be answered silently from the wrong "
        "embeddings; an id of -1 is usually padding or an unknown token: map it to a real id (such as the pad id) "
        "in the data, or clamp the ids in the model (ids.clamp(min=0)) before the lookup"
    )

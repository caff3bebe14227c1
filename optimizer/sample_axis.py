"""A model whose inputs share no sample axis (a packed batch), refused from its declared dims before the data is read.

quantserve reads samples as the rows of axis 0 of every input: Triton's dynamic batching stacks requests along it,
and --unbatched sends each row as one request. A packed batch has no such axis: minimol's graph network declares
axis 0 of its inputs as `num_nodes` (atom features), `num_edges` (bond features), 2 (the edge index, whose axis 1
is `num_edges`) and `num_graphs`, and its calibration file was refused as "arrays disagree on the number of
samples", blaming the data for the model. The declared dims say it first: two inputs whose axis 0 carry different
symbols, one of which also names a later axis of an input (edges counted along the edge index, not rows), cannot
be rows of the same samples. Distinct symbols alone prove nothing: exporters name every input's batch axis apart
("input_ids_dynamic_axes_1").
"""

from __future__ import annotations

from pathlib import Path

import onnx

from optimizer import onnx_files
from optimizer.batch_axis import graph_inputs

PACKED = (
    "quantserve needs one axis 0 along which every input holds the same samples; a packed batch (a graph "
    "network's nodes, edges and graphs) is not supported"
)


def packed_batch_refusal(source: str | Path, unbatched: bool = False) -> str | None:
    """Why the user's `.onnx` file (read without its weights) has no sample axis, else None (also where it is no
    `.onnx` or cannot be read: the export stage says why)."""
    model = onnx_files.user_graph(source)
    return None if model is None else graph_packed_refusal(model, source, unbatched)


def graph_packed_refusal(model: onnx.ModelProto, source: str | Path, unbatched: bool = False) -> str | None:
    """`packed_batch_refusal` of the user's graph already read (`onnx_files.user_graph(source)`)."""
    firsts = {value.name: _axis_0(value) for value in graph_inputs(model)}
    symbols = {first for first in firsts.values() if isinstance(first, str)}
    later = _later_symbols(model)
    counted = sorted(symbols & set(later))
    if len(symbols) < 2 or not counted:
        return None
    mode = "--unbatched sends each row of axis 0 of every input as one request, but " if unbatched else ""
    return (
        f"{Path(source)}: {mode}the model's inputs share no sample axis: axis 0 is {_grouped(firsts)} ('{counted[0]}' "
        f"is also {later[counted[0]]}, so it counts items, not samples); {PACKED}"
    )


def _axis_0(value: onnx.ValueInfoProto) -> str | int | None:
    """Axis 0's symbol, its fixed size, or None (rank 0, or unnamed: nothing to compare)."""
    dims = value.type.tensor_type.shape.dim
    if not dims:
        return None
    if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
        return int(dims[0].dim_value)
    return dims[0].dim_param or None


def _later_symbols(model: onnx.ModelProto) -> dict[str, str]:
    """Each symbol naming an axis after 0 of an input, and the first such place ("axis 1 of 'edge_index'")."""
    found: dict[str, str] = {}
    for value in graph_inputs(model):
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis and dim.dim_param:
                found.setdefault(dim.dim_param, f"axis {axis} of '{value.name}'")
    return found


def _grouped(firsts: dict[str, str | int | None]) -> str:
    """E.g. "'num_nodes' for 'feat', 'batch'; 2 for 'edge_index'", in the inputs' order."""
    groups: dict[str | int | None, list[str]] = {}
    for name, first in firsts.items():
        groups.setdefault(first, []).append(f"'{name}'")
    return "; ".join(
        f"{'unnamed' if first is None else repr(first)} for {', '.join(names)}" for first, names in groups.items()
    )

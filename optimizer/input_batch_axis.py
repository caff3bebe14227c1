"""An ONNX input's batch axis: named `batch` where it is dynamic, refused in one line where it is fixed.

Exporters mark a dynamic axis 0 with -1, 0, a symbol or nothing; Triton batches requests along axis 0 of every
input, so each is named `batch` alike, and an input whose axis 0 is fixed (a batch of N, a state, a per-model
constant) is refused with what to do instead. Kept apart from `optimizer.onnx_input`, which loads, checks and
upgrades the file and calls these on the way.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from optimizer.batch_advice import fixed_batch_advice
from optimizer.batch_axis import BATCH, graph_inputs
from quantserve.errors import QuantserveError


def name_dynamic_batch_axes(model: onnx.ModelProto) -> list[str]:
    """Name axis 0 `batch` where it is -1, 0, unnamed or symbolic (inputs, and outputs sharing it); return the tensors.

    Exporters mark a dynamic axis with -1 or leave it unnamed. A fixed positive batch stays, to be refused.
    Other non-positive dims of inputs, outputs and value_info become unknown dims.
    """
    batch_names = {BATCH}
    renamed = []
    for value in graph_inputs(model):
        dims = value.type.tensor_type.shape.dim
        if dims and _is_dynamic(dims[0]):
            batch_names.add(dims[0].dim_param or BATCH)
            renamed += _set_batch(value)
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and _is_dynamic(dims[0]) and (not dims[0].dim_param or dims[0].dim_param in batch_names):
            renamed += _set_batch(value)
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.ClearField("dim_value")
    return renamed


def _is_dynamic(dim: onnx.TensorShapeProto.Dimension) -> bool:
    return not dim.HasField("dim_value") or dim.dim_value <= 0


def _set_batch(value: onnx.ValueInfoProto) -> list[str]:
    dim = value.type.tensor_type.shape.dim[0]
    if dim.dim_param == BATCH:
        return []
    dim.dim_param = BATCH  # setting the oneof field clears any dim_value
    return [value.name]


def require_dynamic_batch(path: Path, model: onnx.ModelProto) -> None:
    """Refuse an input without a dynamic axis 0: Triton batches requests along it. Beside inputs that have one, such
    an input is a state or constant (`_not_a_batch`); where none has one, the model's batch is fixed."""
    inputs = graph_inputs(model)
    batched = [t.name for t in inputs if t.type.tensor_type.shape.dim and not _fixed_first(t)]
    for tensor in inputs:
        dims = tensor.type.tensor_type.shape.dim
        if batched and (not dims or _fixed_first(tensor)):
            raise QuantserveError(f"{path}: {_not_a_batch(tensor, batched[0])}")
        if not dims:
            raise QuantserveError(
                f"{path}: input '{tensor.name}' has no batch axis (rank 0); {_as_default(tensor.name)}"
            )
        if dims[0].HasField("dim_value"):
            dynamic = [i for i, dim in enumerate(dims) if not dim.HasField("dim_value")]
            where = f", and axis {dynamic[0]} is dynamic: Triton batches along axis 0" if dynamic else ""
            shape = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            scalars = [t.name for t in inputs if not t.type.tensor_type.shape.dim]
            raise QuantserveError(
                f"{path}: input '{tensor.name}' has a fixed batch axis ({dims[0].dim_value}){where}; "
                + fixed_batch_advice(tensor.name, shape, scalars)
            )


def _fixed_first(tensor: onnx.ValueInfoProto) -> bool:
    dims = tensor.type.tensor_type.shape.dim
    return bool(dims) and dims[0].HasField("dim_value")


def _not_a_batch(tensor: onnx.ValueInfoProto, batched: str) -> str:
    """Why an input of rank 0 or a fixed axis 0 beside one with a dynamic axis 0 is refused, and what to do. Its axis
    0 is no batch: silero-vad's LSTM state h (1, 1, 128) is [layers, batch, hidden], and "re-export it with a dynamic
    batch axis" was said of a packaged file, which cannot be re-exported and whose axis 0 must not be batched."""
    dims = tensor.type.tensor_type.shape.dim
    name = tensor.name
    if not dims:
        return f"input '{name}' has rank 0 (one value for every row) while input '{batched}' has a batch axis; " + (
            _as_default(name)
        )
    shape = ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
    dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
    likely = f"axis {dynamic[0]}, dynamic, likely is; " if dynamic else ""
    return (
        f"input '{name}' has axis 0 fixed at {dims[0].dim_value} (shape [{shape}]) beside input '{batched}', whose "
        f"axis 0 is dynamic: '{name}' is likely a state or a constant whose axis 0 is no batch ({likely}an RNN state "
        "is [layers, batch, hidden]), while quantserve batches requests by the rows of axis 0 of every input, at "
        f"every precision; a constant (an initial state): give the graph an initializer named '{name}' holding it, "
        f"which optimize folds into the model; a state per request: wrap the model so that '{name}' takes the batch "
        f"on axis 0 (a Transpose inside the graph), one state per row of '{batched}', which needs its rows to be "
        "separate samples, not the steps of one sequence"
    )


def _as_default(name: str) -> str:
    """What to do with an input that holds one value for the whole model (a sample rate)."""
    return (
        f"Triton batches requests along axis 0 of every input, so a per-model constant belongs in the model: give "
        f"the graph an initializer named '{name}' holding its value (the input's default), which optimize folds "
        "into the model as that constant"
    )

"""The advice in a refusal of a model's batch axis: what to change in the graph so Triton can batch it.

"Re-export it with a dynamic batch axis" does not help a model converted from TFLite, whose Resize
takes a constant `sizes` with the batch of 1 in it (MediaPipe's palm detector), nor "a per-model
constant does not belong among the outputs" a CTC recognizer whose logits are time-major ([T, N, C]).
Each such graph gets its own fix, said in the refusal's line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from optimizer import onnx_files

# How a refusal of a model's batch axis ends where no graph change makes it batch (an `If` on one sample's score,
# NMS, pooling over axis 0, a sample's frames on axis 0: `quantserve.data.whole_samples`): the route that builds it as
# it is. Not where a fix lets Triton batch it after all (a time-major output's Transpose, a Resize's `scales`): there
# the better advice comes first (a Resize's then SIZES_ROUTE, the short way on without editing the graph).
UNBATCHED_ROUTE = (
    "; or, if the model takes one sample per request, build it with --unbatched (Triton then serves it with "
    "max_batch_size 0, one request at a time): data of the inputs' rank is sent a row a request, data with one axis "
    "more (N, then the input's shape) each data[i] whole, as a model whose axis 0 is a sample's frames needs"
)


def fixed_batch_advice(name: str, shape: list[str], scalars: list[str]) -> str:
    """What to do with a model whose input `name` of `shape` fixes its batch axis: re-export it with a dynamic one,
    or, a published file that cannot be (swift-f0's audio [1, samples]), build it as it is (UNBATCHED_ROUTE). Beside
    rank-0 inputs (`scalars`: swift-f0's fmin, fmax), one value a request, it cannot batch even re-exported: the
    route alone, with the data each input then takes."""
    if not scalars:
        return f"re-export it with a dynamic batch axis (dim_param) so Triton can batch requests{UNBATCHED_ROUTE}"
    quoted = [f"'{scalar}'" for scalar in scalars]
    said = f"input {quoted[0]} has" if len(quoted) == 1 else f"inputs {', '.join(quoted[:-1])} and {quoted[-1]} have"
    forms = ", ".join([f"'{name}' ({', '.join(['N', *shape])})", *(f"{q} (N,)" for q in quoted)])
    return (
        f"{said} rank 0 (one value a request, which no batch axis carries), so it cannot batch even re-exported: "
        "build it as it is with --unbatched (Triton then serves it with max_batch_size 0, one request at a time) "
        f"and give data with one axis more than each input, N requests: {forms}, each data[i] one whole request"
    )


def unbatched_reason(name: str, shape: list[int], rows: int, advice: str = "") -> str:
    """Why output `name` of `shape` for `rows` input rows cannot be split per request, and what to do: a time-major
    output (a CTC recognizer's logits, [T, N, C]) needs a Transpose; a per-model constant among the outputs
    (SSD-style priors, a class list) or a `Squeeze` that drops the batch axis of a single row is left out, then
    `advice` (e.g. `selection_advice`), then UNBATCHED_ROUTE."""
    noun = "input row" if rows == 1 else "input rows"
    said = f"output '{name}' has shape {shape} for {rows} {noun}"
    if rows > 1 and len(shape) > 1 and shape[1] == rows and shape[0] != rows:
        perm = [1, 0, *range(2, len(shape))]
        batch_first = ", ".join(str(d) for d in ["N", shape[0], *shape[2:]])
        return (
            f"{said}: its rows are along axis 1 (as a time-major output's are, e.g. a CTC recognizer's logits "
            "[T, N, C]), but Triton batches requests and splits responses along axis 0; add a Transpose with perm "
            f"{perm} at the end of the graph, so the output is [{batch_first}], or re-export the model batch-first"
        )
    return (
        f"{said}: every output must hold one row per sample along axis 0 (Triton's dynamic batching splits "
        "responses there, and verification compares row by row); a per-model constant does not belong among the "
        f"outputs, nor may a Squeeze drop the batch axis of a single row{advice}{UNBATCHED_ROUTE}"
    )


def resize_sizes_advice(model: onnx.ModelProto, failing: str) -> str:
    """What to do where the graph's batch of 1 is a Resize's constant `sizes` (a converted TFLite model's
    RESIZE_BILINEAR: tflite2onnx writes `sizes`): re-exporting does not change it, `scales` do; or build it as
    published with --unbatched (SIZES_ROUTE). The Resize ORT failed to run, or the first such one where none failed
    (a 'nearest' Resize returns 1 row for 2), and how many there are (imgly's ISNet has 39); '' if none."""
    resizes = _resizes_by_sizes(model)
    node, target = next(((n, t) for n, t in resizes if not failing or n.name == failing), (None, None))
    if node is None or target is None:
        return ""
    scales = _resize_scales(model, node.input[0], target)
    sizes = target.astype(int).tolist()
    if len(resizes) > 1:
        return (
            f"{len(resizes)} Resize nodes take their output size from constant `sizes`, {SIZES_WHY}, e.g. "
            f"'{node.name}' {sizes}: give each `scales` instead of `sizes` ('{node.name}': {scales}) so they resize "
            f"any number of rows{SIZES_ROUTE}"
        )
    which = "that Resize" if failing else f"Resize node '{node.name}'"
    return (
        f"{which} takes its output size from the constant `sizes` {sizes}, {SIZES_WHY}: give it `scales` {scales} "
        f"instead of `sizes` so it resizes any number of rows{SIZES_ROUTE}"
    )


SIZES_WHY = (
    "batch 1 included (as converters such as tflite2onnx write it; re-exporting with a dynamic batch axis keeps it)"
)
# where the fix is an edit of the graph, the way on without one (a probe rewrote ISNet's 39 Resize nodes to learn it)
SIZES_ROUTE = (
    "; or, to serve it as published without editing the graph, build it with --unbatched (batch 1: Triton serves it "
    "with max_batch_size 0, one request at a time)"
)


def _resizes_by_sizes(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, np.ndarray]]:
    """Each Resize node whose constant `sizes` start with the batch of 1, with those sizes, in graph order."""
    known = constants(model)
    found = []
    for node in model.graph.node:
        sizes = node.input[3] if node.op_type == "Resize" and len(node.input) > 3 else ""
        if not sizes or sizes not in known:
            continue
        target = numpy_helper.to_array(known[sizes])
        if target.ndim == 1 and target.size >= 2 and target[0] == 1:
            found.append((node, target))
    return found


def _resize_scales(model: onnx.ModelProto, resized: str, sizes: np.ndarray) -> str:
    """The `scales` equal to `sizes` for the tensor `resized` (by ONNX shape inference), as '[1, 1, 2, 2]';
    '(1 on the batch axis, output over input size on the others)' where its shape is not known."""
    unknown = "(1 on the batch axis, output over input size on the others)"
    dims = (static_shapes(model) or {}).get(resized, [])
    if len(dims) != len(sizes) or not all(dims[1:]):
        return unknown
    ratios = [f"{int(size) / d:g}" for size, d in zip(sizes[1:], dims[1:], strict=True)]
    return f"[1, {', '.join(ratios)}]"


def static_shapes(model: onnx.ModelProto) -> dict[str, list[int]] | None:
    """The dims of the graph's inputs and inner tensors by ONNX shape inference (0 where a dim is not known);
    None where the graph cannot be inferred in memory (more than one protobuf holds) or inference fails."""
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    if onnx_files.is_large(model) and not external:
        return None
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, ValueError):
        return None
    values = [*inferred.graph.input, *inferred.graph.value_info]
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}


def constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """The graph's constant tensors by name: its initializers and its Constant nodes' values."""
    found = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and node.output and value is not None:
            found[node.output[0]] = value
    return found


def selection_advice(path: Path) -> str:
    """'' unless the graph selects boxes with NonMaxSuppression (an end-to-end YOLO/SSD export): its outputs then
    count the detections kept over the whole batch ([K, 3] indices, [K, 7] boxes), one list for every image sent
    together, which no dynamic batcher can split per request; what to export instead."""
    graph = onnx.load(str(path), load_external_data=False).graph
    if not any(node.op_type == "NonMaxSuppression" for node in graph.node):
        return ""
    return (
        "; the graph selects boxes with NonMaxSuppression, whose outputs list the detections of all the rows sent "
        "together: export the model without NMS (boxes and scores per image, NMS on the client or in a Triton "
        "ensemble step), or with a fixed number of detections per image ([N, K, …], padded)"
    )

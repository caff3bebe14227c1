"""Nodes INT8 must leave in FP32, whatever the drift search finds: graph outputs and mixed-range tensors.

One Q/DQ scale is shared by every channel of a tensor. Measured on a YOLO-style detector whose output
concatenates box coordinates (0–320) and class scores (0–1): the shared UINT8 scale (1.26) zeroed every
score, while whole-tensor cosine still read 0.9996. So two kinds of nodes are excluded up front:

- the output side: the nodes producing graph outputs and every non-compute node between the last
  Conv/MatMul/Gemm and an output (sigmoids, box decoding, concatenation, pooling, normalisation), so no
  graph output and nothing that is only a rearrangement of one gets a scale;
- mixed-range tensors: a Concat whose inputs' value ranges (from calibration samples) differ by more
  than `ratio` (20× by default), with every node that reads the concatenation or a reshaped view of it.
  Ranges are compared per concatenated input rather than per channel: feature-map concatenations in
  CNN necks hold near-dead channels beside live ones, and per-channel ratios would flag all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import onnx_files

COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "Attention", "LSTM"})
# Compute ops ONNX Runtime runs in INT8 only by dynamic quantization (DynamicQuantizeLSTM): static Q/DQ around
# them would only dequantize their weights again, slower than FP32
DYNAMIC_ONLY_OPS = frozenset({"LSTM"})
# Ops whose output holds the input's values rearranged: a mixed-range tensor stays mixed through them.
DATA_MOVEMENT_OPS = frozenset(
    {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Slice", "Split", "Gather", "Expand"}
)
MIXED_RANGE_RATIO = 20.0
# Shape arithmetic carries no values to quantize; the output-side walk does not enter it.
SHAPE_OPS = frozenset({"Shape", "Size", "Constant", "ConstantOfShape"})


@dataclass(frozen=True)
class Exclusion:
    """A node kept in FP32 before any search, and why (recorded in the manifest)."""

    node: str
    op_type: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def output_side_exclusions(model: onnx.ModelProto) -> list[Exclusion]:
    """Graph-output producers and the non-compute nodes between the last compute node and an output."""
    producers = {out: node for node in model.graph.node for out in node.output}
    found: dict[str, Exclusion] = {}
    for output in model.graph.output:
        stack = [(output.name, True)]
        while stack:
            tensor, direct = stack.pop()
            node = producers.get(tensor)
            if node is None or node.name in found or node.op_type in SHAPE_OPS:
                continue
            if node.op_type in COMPUTE_OPS and not direct:
                continue  # the last compute node may run INT8: its output is not quantized by it
            why = f"produces graph output '{output.name}'" if direct else f"feeds graph output '{output.name}'"
            found[node.name] = Exclusion(node.name, node.op_type, why + " (outputs are never quantized)")
            if node.op_type not in COMPUTE_OPS:
                stack.extend((name, False) for name in node.input if name)
    return list(found.values())


def mixed_range_exclusions(
    model: onnx.ModelProto, model_path: Path, batches: Iterable[dict[str, np.ndarray]], ratio: float = MIXED_RANGE_RATIO
) -> list[Exclusion]:
    """Concats whose inputs' ranges differ by more than `ratio` on `batches`, and every reader of the result."""
    concats = [n for n in model.graph.node if n.op_type == "Concat"]
    initializers = {i.name for i in model.graph.initializer}
    watched = sorted({name for n in concats for name in n.input if name and name not in initializers})
    if not watched:
        return []
    spans = tensor_spans(model_path, batches, watched)
    found: list[Exclusion] = []
    for node in concats:
        live = [(name, spans[name]) for name in node.input if spans.get(name, 0.0) > 0.0]
        if len(live) < 2:
            continue
        (wide, high), (narrow, low) = max(live, key=lambda t: t[1]), min(live, key=lambda t: t[1])
        if high > ratio * low:
            why = f"concatenates ranges {high / low:.0f}× apart ('{wide}' spans {high:.3g}, '{narrow}' {low:.3g})"
            found.append(Exclusion(node.name, node.op_type, why))
            found.extend(_readers(model, node.output[0], f"reads the mixed-range output of '{node.name}'"))
    return found


def find_exclusions(
    model: onnx.ModelProto,
    model_path: Path,
    batches: Iterable[dict[str, np.ndarray]],
    ratio: float = MIXED_RANGE_RATIO,
    user: Sequence[str] = (),
) -> list[Exclusion]:
    """Every node to keep FP32 up front, first reason first: user's list, output side, mixed ranges."""
    op_types = {n.name: n.op_type for n in model.graph.node}
    given = [Exclusion(name, op_types.get(name, "?"), "excluded by the user") for name in user]
    found: dict[str, Exclusion] = {}
    for exclusion in [
        *given,
        *output_side_exclusions(model),
        *mixed_range_exclusions(model, model_path, batches, ratio),
    ]:
        found.setdefault(exclusion.node, exclusion)
    return list(found.values())


def activation_matmuls(model: onnx.ModelProto, already: set[str]) -> list[Exclusion]:
    """MatMuls of two activations (attention scores and context in unfused encoders): both sides would get one
    per-tensor scale each, and dynamic INT8 leaves them FP32 anyway (weights-only)."""
    constants = {i.name for i in model.graph.initializer}
    constants.update(o for n in model.graph.node if n.op_type == "Constant" for o in n.output)
    return [
        Exclusion(n.name, n.op_type, "multiplies two activations (attention), not a weight")
        for n in model.graph.node
        if n.op_type == "MatMul" and n.name not in already and not constants.intersection(n.input[1:2])
    ]


def _readers(model: onnx.ModelProto, tensor: str, reason: str) -> list[Exclusion]:
    """Nodes reading `tensor`, followed through data-movement ops (a reshaped view is just as mixed)."""
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    found: dict[str, Exclusion] = {}
    stack = [tensor]
    while stack:
        for node in consumers.get(stack.pop(), []):
            if node.name in found:
                continue
            found[node.name] = Exclusion(node.name, node.op_type, reason)
            if node.op_type in DATA_MOVEMENT_OPS:
                stack.extend(node.output)
    return list(found.values())


def tensor_spans(
    model_path: Path, batches: Iterable[dict[str, np.ndarray]], tensors: Sequence[str]
) -> dict[str, float]:
    """max − min of each named intermediate tensor over `batches` (FP32 model, extra outputs added)."""
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for values in run_with_tensors(model_path, batches, tensors):
        for name, array in values.items():
            if array.size and np.issubdtype(array.dtype, np.floating):
                lows[name] = min(lows.get(name, np.inf), float(array.min()))
                highs[name] = max(highs.get(name, -np.inf), float(array.max()))
    return {name: highs[name] - lows[name] for name in highs}


def run_with_tensors(
    model_path: Path, batches: Iterable[dict[str, np.ndarray]], tensors: Sequence[str]
) -> Iterable[dict[str, np.ndarray]]:
    """Yield the named intermediate tensors for each batch, from the FP32 model with them added as outputs."""

    from optimizer.onnxruntime_runner import session_options

    model = onnx.load(str(model_path), load_external_data=False)  # a large model's weights stay in their file
    present = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in present:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = onnx_files.inference_session(model, model_path, session_options("disable", 0))
    names = list(tensors)
    wanted = {i.name for i in session.get_inputs()}
    for batch in batches:
        arrays: list[Any] = session.run(names, {k: v for k, v in batch.items() if k in wanted})
        yield dict(zip(names, arrays, strict=True))

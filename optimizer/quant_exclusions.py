"""Nodes INT8 must leave in FP32, whatever the drift search finds: graph outputs and mixed-range tensors.

One Q/DQ scale is shared by every channel of a tensor. Measured on a YOLO-style detector whose output
concatenates box coordinates (0–320) and class scores (0–1): the shared UINT8 scale (1.26) zeroed every
score, while whole-tensor cosine still read 0.9996. So two kinds of nodes are excluded up front:

- the output side: the nodes producing graph outputs and every non-compute node between the last
  Conv/MatMul/Gemm and an output (sigmoids, box decoding, concatenation, pooling, normalisation), so no
  graph output and nothing that is only a rearrangement of one gets a scale (not an LSTM writing one: ONNX
  Runtime quantizes it only dynamically, its outputs float);
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
from optimizer.export import quantized_ops
from optimizer.graph_walk import walk_graphs

COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "Attention", "LSTM"})
# Compute ops ONNX Runtime runs in INT8 only by dynamic quantization (DynamicQuantizeLSTM): static Q/DQ around
# them would only dequantize their weights again, slower than FP32
DYNAMIC_ONLY_OPS = frozenset({"LSTM"})
# Ops whose multiply-adds count in the INT8 share: the compute ops, and the recurrent ops ONNX Runtime has no INT8
# kernel for at all (GRU, RNN), which count as FP32: an encoder's two GRUs hold ~99.7 % of its multiply-adds.
NO_INT8_RECURRENT_OPS = frozenset({"GRU", "RNN"})
MAC_OPS = COMPUTE_OPS | NO_INT8_RECURRENT_OPS
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
            if node.op_type in DYNAMIC_ONLY_OPS:  # INT8 only dynamically (DynamicQuantizeLSTM): its outputs stay float
                continue  # pythainlp's thai2rom LSTMs write graph outputs: none kept every compute node FP32 (s62)
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


def no_compute_refusal(model_path: Path) -> str | None:
    """Why INT8 cannot speed the model up (it has no compute op INT8 runs, e.g. a tree ensemble), else None."""
    return _no_compute(onnx.load(str(model_path), load_external_data=False))


def source_no_compute_refusal(source: str | Path) -> str | None:
    """`no_compute_refusal` of a user's `.onnx` file as given, read without its weights, so it comes before the data
    is read and any stage runs: a CatBoost tree ensemble was refused after export, fuse and the row checks, 43 s on
    a busy machine. None where the file cannot be read (the export stage says why) or is no `.onnx`. Its op types
    are the exported graph's (loading changes only opsets, batch axes and ZipMap outputs). An already-quantized
    graph (ConvInteger, QLinearConv…) is left to the export stage's own refusal, which says so."""
    model = onnx_files.user_graph(source)
    return None if model is None else graph_no_compute_refusal(model)


def graph_no_compute_refusal(model: onnx.ModelProto) -> str | None:
    """`source_no_compute_refusal` of the user's graph already read (`onnx_files.user_graph`)."""
    if model.functions or quantized_ops(model):  # local functions: judged once inlined, after fuse
        return None
    return _no_compute(model)


def _no_compute(model: onnx.ModelProto) -> str | None:
    ops = _ops_by_compute(model)
    if COMPUTE_OPS.intersection(ops):
        return None
    shown = ", ".join(ops[:6]) + (", …" if len(ops) > 6 else "")
    recurrent = [op for op in ops if op in NO_INT8_RECURRENT_OPS]
    kernel = f"; ONNX Runtime has no INT8 kernel for {' or '.join(recurrent)}" if recurrent else ""
    return (
        f"nothing to quantize: the model has no Conv, MatMul or Gemm (its ops: {shown or 'none'}{kernel}); "
        "optimize it with --precision fp32 and deploy that build"
    )


def _ops_by_compute(model: onnx.ModelProto) -> list[str]:
    """The model's op types, those that hold its compute first: recurrent ones, then by the weight elements their
    nodes read, then in graph order. g2p's encoder was refused naming "Gather, Sub, Shape, Transpose, Reshape,
    Expand, …", the GRU that holds all its compute left behind the "…"."""
    graphs = [scope.graph for scope in walk_graphs(model.graph)]
    sizes = {i.name: int(np.prod(i.dims)) for graph in graphs for i in graph.initializer}
    first: dict[str, int] = {}
    weights: dict[str, int] = defaultdict(int)
    for node in (node for graph in graphs for node in graph.node):
        first.setdefault(node.op_type, len(first))
        weights[node.op_type] += sum(sizes.get(name, 0) for name in node.input)
    return sorted(first, key=lambda op: (op not in NO_INT8_RECURRENT_OPS, -weights[op], first[op]))


def read_fp32(model: onnx.ModelProto, fp32: onnx.ModelProto, excluded: Iterable[str]) -> int:
    """Rewire excluded nodes and graph outputs of the Q/DQ `model` off activation Q/DQ pairs onto the FP32
    tensor (as `fp32` computes it); return how many.

    ORT's QDQ quantizer gives a tensor one Q/DQ pair shared by all its readers, the FP32 ones too, and writes a
    graph output from the DequantizeLinear: an input passed through to an output shipped clipped to its
    calibrated range and rounded to its scale. Weight DQs (no QuantizeLinear before them) stay as they are.
    """
    sources = _Fp32Sources(model, fp32)
    keep = set(excluded)
    count = 0
    for node in list(model.graph.node):
        if node.name not in keep or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for index, name in enumerate(node.input):
            source = sources.find(name)
            if source:
                node.input[index] = source
                count += 1
    for output in model.graph.output:
        source = sources.find(output.name)
        if source:
            _output_from(model, output.name, source)
            count += 1
    return count


class _Fp32Sources:
    """The FP32 tensor behind a DequantizeLinear of a QuantizeLinear (an activation pair), as the FP32 model has it.

    ORT's quantizer drops a Relu before a Q (the UINT8 range clips at zero instead) and the Q then reads the
    Relu's input under the Relu's output name: that value is rebuilt by a Relu copy; behind any other node
    the FP32 model does not have, the pair is left in place (the value cannot be told).
    """

    def __init__(self, model: onnx.ModelProto, fp32: onnx.ModelProto) -> None:
        self.model = model
        self.producers = {out: node for node in model.graph.node for out in node.output}
        self.fp32_producers = {out: node for node in fp32.graph.node for out in node.output}
        self.rebuilt: dict[str, str] = {}

    def find(self, tensor: str) -> str | None:
        dq = self.producers.get(tensor)
        q = self.producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear":
            return None
        # a graph output's Q reads the producer's renamed output (`X_QuantizeLinear_Input`); the DQ writes `X`
        return self._as_fp32(q.input[0], q.input[0] if q.input[0] in self.fp32_producers else tensor)

    def _as_fp32(self, tensor: str, fp32_name: str) -> str | None:
        now, then = self.producers.get(tensor), self.fp32_producers.get(fp32_name)
        if (now is None and then is None) or (now and then and (now.name, now.op_type) == (then.name, then.op_type)):
            return tensor
        if then is None or then.op_type != "Relu":
            return None
        if tensor not in self.rebuilt:
            self.rebuilt[tensor] = f"{tensor}_fp32"
            relu = onnx.helper.make_node("Relu", [tensor], [self.rebuilt[tensor]], name=f"{then.name}_fp32")
            position = list(self.model.graph.node).index(now) + 1 if now is not None else 0
            self.model.graph.node.insert(position, relu)
        return self.rebuilt[tensor]


def _output_from(model: onnx.ModelProto, output: str, source: str) -> None:
    """Make graph output `output` (written by a DequantizeLinear) the FP32 tensor `source`; the DQ's readers keep
    reading it under a new name. `source` takes the output's name, or an Identity copies it where it is itself
    a graph input or output (those names are the model's interface)."""
    dequantized = f"{output}_DequantizeLinear_Output"
    interface = {v.name for v in [*model.graph.input, *model.graph.output]} | {i.name for i in model.graph.initializer}
    renamed = {output: dequantized} if source in interface else {output: dequantized, source: output}
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    if source in interface:
        model.graph.node.append(onnx.helper.make_node("Identity", [source], [output], name=f"{output}_fp32"))
    stale = [v for v in model.graph.value_info if v.name in renamed]
    for value in stale:
        model.graph.value_info.remove(value)


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
    if not names:  # session.run([]) would return every graph output, not none
        yield from ({} for _ in batches)
        return
    wanted = {i.name for i in session.get_inputs()}
    for batch in batches:
        arrays: list[Any] = session.run(names, {k: v for k, v in batch.items() if k in wanted})
        yield dict(zip(names, arrays, strict=True))

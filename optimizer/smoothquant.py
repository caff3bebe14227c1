"""SmoothQuant (Xiao et al. 2023) as an ONNX graph rewrite: activation outliers migrated into the weights.

A few activation channels far larger than the rest force a coarse per-tensor INT8 scale on every
channel. Per input channel j of a weight MatMul/Gemm, `s_j = max|A_j|^alpha / max|W_j|^(1-alpha)`:
the weight rows are multiplied by s and the activation divided by it, which leaves the product
unchanged in exact arithmetic and evens the activation's channels out. The division folds into a
LayerNormalization producer (its scale and bias) where the activation feeds only the smoothed
MatMuls; otherwise one `Mul` by 1/s is inserted before them. MatMuls reading the same activation
(attention Q/K/V) share one scale vector, from the max |W| over the group.

Hand-written because ONNX Runtime's own switch cannot run here. In ORT 1.32
`onnxruntime/quantization/quantize.py` (`quantize_static`, lines 749-778), `extra_options
["SmoothQuant"]` imports `neural_compressor.adaptor.ox_utils.smooth_quant.ORTSmoothQuant`, Intel
Neural Compressor 2.x's ONNX adaptor: the neural-compressor 2.6 wheel has that file, the 3.10 wheel
has no `ox_utils` at all (3.x keeps PyTorch and TensorFlow only), and 2.6 requires 13 packages
(opencv-python-headless, pandas, scikit-learn, pycocotools, numpy<2 among them). ORT's vendored
`quantization/neural_compressor/` holds only weight-only quantization. The maxima are collected in
one streamed ONNX Runtime pass (the activations added as graph outputs, running maxima kept): memory
does not grow with the calibration set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from optimizer import onnx_files
from optimizer.graph_walk import subgraph_reads
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.errors import QuantserveError

SCALE_RANGE = (1e-4, 1e4)  # s is clipped here: a dead weight channel or a huge outlier must not give 0/inf
SMOOTH_MUL_PREFIX = "smoothquant_mul"


@dataclass
class SmoothGroup:
    """Weight MatMul/Gemm nodes that read the same activation tensor, smoothed by one scale vector."""

    activation: str
    nodes: list[onnx.NodeProto]
    act_max: np.ndarray | None = None

    def channels(self, weights: dict[str, np.ndarray]) -> int:
        return int(_weight_rows(self.nodes[0], weights[self.nodes[0].input[1]]).shape[0])


@dataclass
class SmoothRecord:
    """What the rewrite did, for the stage record: alpha, nodes smoothed, folds vs Muls, outlier ratios."""

    alpha: float
    smoothed: list[str] = field(default_factory=list)
    groups: int = 0
    folded_into_layernorm: int = 0
    mul_inserted: int = 0
    inserted_nodes: list[str] = field(default_factory=list)
    outlier_ratio_before: float = 0.0  # the largest max/median of an activation's channel maxima
    outlier_ratio_after: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"tool": "optimizer.smoothquant (SmoothQuant, Xiao et al. 2023)", **asdict(self)}


def smooth_quant(
    model: onnx.ModelProto,
    batches: Iterable[dict[str, np.ndarray]],
    alpha: float = 0.5,
    maxima: dict[str, np.ndarray] | None = None,
) -> tuple[onnx.ModelProto, SmoothRecord]:
    """`model` with activation outliers migrated into its weight MatMul/Gemm weights, and what was done.

    `maxima` (from `smoothing_maxima`, which does not depend on alpha) spares the ONNX Runtime pass over
    `batches` when several alphas are tried on one model."""
    if not 0.0 < alpha <= 1.0:
        raise QuantserveError(f"SmoothQuant alpha {alpha} must be in (0, 1]")
    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(model)
    weights = {i.name: numpy_helper.to_array(i) for i in smoothed.graph.initializer}
    groups = find_groups(smoothed, weights)
    record = SmoothRecord(alpha=alpha)
    if not groups:
        return smoothed, record
    if maxima is None:
        maxima = activation_maxima(smoothed, [g.activation for g in groups], batches)
    ratios_before, ratios_after = [], []
    for group in groups:
        act = maxima[group.activation]
        if act.shape[0] != group.channels(weights):
            continue  # a broadcast MatMul whose activation's last axis is not the weight's rows
        scale = smoothing_scale(act, _group_weight_max(group, weights), alpha)
        _migrate(smoothed, group, scale, weights, record)
        ratios_before.append(outlier_ratio(act))
        ratios_after.append(outlier_ratio(act / scale))
    record.outlier_ratio_before = max(ratios_before, default=0.0)
    record.outlier_ratio_after = max(ratios_after, default=0.0)
    _drop_unused_initializers(smoothed)
    _check(smoothed)
    return smoothed, record


def smoothing_maxima(model: onnx.ModelProto, batches: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The per-channel activation maxima `smooth_quant` needs for `model`, for any alpha."""
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    groups = find_groups(model, weights)
    return activation_maxima(model, [g.activation for g in groups], batches) if groups else {}


def find_groups(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> list[SmoothGroup]:
    """MatMul/Gemm nodes with a 2-D FP32 initializer weight and a computed activation, grouped by activation."""
    groups: dict[str, SmoothGroup] = {}
    for node in model.graph.node:
        if _smoothable(node, weights):
            groups.setdefault(node.input[0], SmoothGroup(node.input[0], [])).nodes.append(node)
    # One scale vector per activation: every member must read it with the same input-channel count.
    return [g for g in groups.values() if len({_weight_rows(n, weights[n.input[1]]).shape[0] for n in g.nodes}) == 1]


def _smoothable(node: onnx.NodeProto, weights: dict[str, np.ndarray]) -> bool:
    if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2 or node.domain not in ("", "ai.onnx"):
        return False
    activation, weight = node.input[0], node.input[1]
    if activation in weights or weight not in weights or weights[weight].ndim != 2:
        return False
    if weights[weight].dtype != np.float32:
        return False
    return not (node.op_type == "Gemm" and _attribute(node, "transA", 0))


def _weight_rows(node: onnx.NodeProto, weight: np.ndarray) -> np.ndarray:
    """The weight with its input-channel axis first: B for MatMul and Gemm, Bᵀ for Gemm with transB."""
    return weight.T if node.op_type == "Gemm" and _attribute(node, "transB", 0) else weight


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((int(helper.get_attribute_value(a)) for a in node.attribute if a.name == name), default)


def _group_weight_max(group: SmoothGroup, weights: dict[str, np.ndarray]) -> np.ndarray:
    rows = [np.abs(_weight_rows(n, weights[n.input[1]])).max(axis=1) for n in group.nodes]
    return np.max(np.stack(rows), axis=0)


def activation_maxima(
    model: onnx.ModelProto, tensors: list[str], batches: Iterable[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per-channel (last axis) max |x| of each tensor over `batches`: one ORT pass, running maxima only."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_empty_tensor_value_info(t) for t in tensors if t not in present)
    maxima: dict[str, np.ndarray] = {}
    seen = 0
    with tempfile.TemporaryDirectory(prefix="smoothquant-") as tmp:
        path = Path(tmp) / "probe.onnx"
        onnx_files.save_external(probe, path, "probe.data")
        with OnnxRuntimeRunner(path, optimization_level="basic") as runner:
            for batch in batches:
                seen += 1
                outputs = runner.infer(batch)
                for name in tensors:
                    _fold_max(maxima, name, outputs[name])
    if not seen:
        raise QuantserveError("SmoothQuant needs calibration batches; none were given")
    return maxima


def _fold_max(maxima: dict[str, np.ndarray], name: str, value: np.ndarray) -> None:
    channel_max = np.abs(value.astype(np.float32, copy=False)).reshape(-1, value.shape[-1]).max(axis=0)
    maxima[name] = channel_max if name not in maxima else np.maximum(maxima[name], channel_max)


def smoothing_scale(act_max: np.ndarray, weight_max: np.ndarray, alpha: float) -> np.ndarray:
    """s_j = max|A_j|^alpha / max|W_j|^(1-alpha), 1 where a channel is dead (zero activation or weight)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.power(act_max, alpha) / np.power(weight_max, 1.0 - alpha)
    dead = (act_max <= 0) | (weight_max <= 0) | ~np.isfinite(scale)
    scale = np.where(dead, 1.0, scale)
    return np.clip(scale, *SCALE_RANGE).astype(np.float32)


def outlier_ratio(channel_max: np.ndarray) -> float:
    """max / median of an activation's per-channel maxima: how far its outlier channels stick out."""
    median = float(np.median(channel_max))
    return float(channel_max.max() / median) if median > 0 else 0.0


def _migrate(
    model: onnx.ModelProto,
    group: SmoothGroup,
    scale: np.ndarray,
    weights: dict[str, np.ndarray],
    record: SmoothRecord,
) -> None:
    """Weights × s (each node gets its own copy: a weight may be shared), activation ÷ s."""
    for node in group.nodes:
        weight = weights[node.input[1]]
        transposed = node.op_type == "Gemm" and _attribute(node, "transB", 0)
        smoothed = weight * (scale[None, :] if transposed else scale[:, None])
        name = _fresh_name(model, f"{node.input[1]}_smoothed")
        model.graph.initializer.append(numpy_helper.from_array(smoothed.astype(np.float32), name))
        node.input[1] = name
        record.smoothed.append(node.name)
    record.groups += 1
    if _fold_into_layernorm(model, group, scale):
        record.folded_into_layernorm += 1
    else:
        record.inserted_nodes.append(_insert_mul(model, group, scale))
        record.mul_inserted += 1


def _fold_into_layernorm(model: onnx.ModelProto, group: SmoothGroup, scale: np.ndarray) -> bool:
    """Divide a LayerNormalization producer's scale and bias by s, if only the group reads its output."""
    producer = next((n for n in model.graph.node if group.activation in n.output), None)
    if producer is None or producer.op_type != "LayerNormalization" or producer.output[0] != group.activation:
        return False
    if group.activation in {o.name for o in model.graph.output}:
        return False
    members = {id(n) for n in group.nodes}
    if any(id(n) not in members for n in _consumers(model.graph, group.activation)):
        return False
    initializers = {i.name: i for i in model.graph.initializer}
    params = list(producer.input[1:3])
    if not params or not all(p in initializers for p in params):
        return False
    arrays = [numpy_helper.to_array(initializers[p]) for p in params]
    if any(a.shape != scale.shape or a.dtype != np.float32 for a in arrays):
        return False
    for index, (param, array) in enumerate(zip(params, arrays, strict=True), start=1):
        name = _fresh_name(model, f"{param}_smoothed")
        model.graph.initializer.append(numpy_helper.from_array((array / scale).astype(np.float32), name))
        producer.input[index] = name
    return True


def _insert_mul(model: onnx.ModelProto, group: SmoothGroup, scale: np.ndarray) -> str:
    """One `Mul` by 1/s feeding the group; the activation itself (maybe a graph output) stays as it was."""
    name = _fresh_name(model, f"{SMOOTH_MUL_PREFIX}_{group.nodes[0].name or group.activation}")
    inverse = numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{name}_inv_scale")
    model.graph.initializer.append(inverse)
    smoothed = f"{name}_out"
    mul = helper.make_node("Mul", [group.activation, inverse.name], [smoothed], name=name)
    first = min(i for i, n in enumerate(model.graph.node) if any(n is m for m in group.nodes))
    for node in group.nodes:
        node.input[0] = smoothed
    model.graph.node.insert(first, mul)
    return name


def _consumers(graph: onnx.GraphProto, tensor: str) -> Iterator[onnx.NodeProto]:
    """Nodes reading `tensor`, a node whose subgraph (If/Loop body) reads it counted as reading it."""
    for node in graph.node:
        if tensor in node.input or tensor in subgraph_reads([node]):
            yield node


def _fresh_name(model: onnx.ModelProto, base: str) -> str:
    taken = {i.name for i in model.graph.initializer} | {o for n in model.graph.node for o in [*n.output, n.name]}
    name, count = base, 0
    while name in taken:
        count += 1
        name = f"{base}_{count}"
    return name


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {t for n in model.graph.node for t in n.input} | {o.name for o in model.graph.output}
    used |= subgraph_reads(model.graph.node)
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def _check(model: onnx.ModelProto) -> None:
    if onnx_files.is_large(model):  # ONNX's checker holds at most 2 GiB; ORT checks the saved file when it loads it
        return
    try:
        onnx.checker.check_model(model, full_check=False)
    except onnx.checker.ValidationError as exc:
        raise QuantserveError(f"SmoothQuant produced an invalid graph ({str(exc).splitlines()[0]})") from exc

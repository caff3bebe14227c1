"""How much of a model INT8 covers: multiply-adds per compute node, which nodes a quantized model runs in INT8, and
the share of the work that is. The INT8 search (`optimizer.int8_search`, `optimizer.int8_verdict`) reads the
nodes and their multiply-adds, and `optimizer.speed` explains by the share a build INT8 cannot make faster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from optimizer.graph_walk import walk_graphs
from optimizer.quant_exclusions import COMPUTE_OPS, MAC_OPS, run_with_tensors

RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}  # gates per step: W is (directions, gates × hidden, inputs)


def compute_macs(model: onnx.ModelProto, model_path: Path, sample: dict[str, np.ndarray]) -> dict[str, int]:
    """Multiply-adds per sample of each Conv/ConvTranspose/MatMul/Gemm/Attention/LSTM/GRU/RNN node, from one
    sample's shapes."""
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in MAC_OPS]
    wanted = sorted({t for n in nodes for t in (n.input[0], n.output[0]) if t and t not in weights})
    shapes = {name: a.shape for name, a in next(iter(run_with_tensors(model_path, [sample], wanted))).items()}
    shapes.update(weights)
    return {n.name: _node_macs(n, shapes) for n in nodes}


def _node_macs(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> int:
    first, out = shapes.get(node.input[0]), shapes.get(node.output[0])
    second = shapes.get(node.input[1]) if len(node.input) > 1 else None
    gates = RECURRENT_GATES.get(node.op_type)
    if gates and first is not None and second is not None and len(second) == 3:
        # X (T, B, I) or (B, T, I); W (directions, gates × H, I): gates × H × (I + H) per step, row and direction
        directions, gates_hidden, inputs = second
        return int(np.prod(first[:2])) * directions * gates_hidden * (inputs + gates_hidden // gates)
    if first is None or out is None or second is None:
        return 0
    size = int(np.prod(out))
    if node.op_type == "Conv":
        return size * int(np.prod(second[1:]))
    if node.op_type == "ConvTranspose":
        return int(np.prod(first)) * int(np.prod(second[1:]))
    if node.op_type == "Gemm":
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        return size * int(first[0] if trans_a else first[-1])
    if node.op_type == "Attention":  # the packed QKV projection
        return int(np.prod(first)) * int(second[-1])
    return size * int(first[-1])  # MatMul


def quantized_nodes(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> list[str]:
    """Compute nodes of `fp32` that run in INT8 in `int8`: fed by a DequantizeLinear (Q/DQ) or replaced (dynamic)."""
    dq_outputs = {o for n in int8.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    by_name = {n.name: n for n in int8.graph.node}
    found = []
    for node in fp32.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        twin = by_name.get(node.name)
        if twin is None and node.op_type == "Gemm":  # ORT's dynamic INT8 rewrites Gemm `X` as MatMul `X_MatMul`
            twin = by_name.get(f"{node.name}_MatMul")  # still a MatMul: kept FP32 (it had counted as INT8)
            if twin is not None and twin.op_type == "MatMul" and not dq_outputs.intersection(twin.input[1:2]):
                continue
            twin = None
        # INT8 when its weight (or second operand) is dequantized: an FP32 node may still read a DQ'd activation.
        if twin is None or twin.op_type != node.op_type or dq_outputs.intersection(twin.input[1:2]):
            found.append(node.name)
    return found


def subgraph_compute(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> dict[str, tuple[int, int]]:
    """The compute nodes inside `fp32`'s subgraphs (Loop/Scan bodies, If branches, nested), e.g. {"MatMul in Loop
    body": (nodes, of them INT8 in `int8`)}: INT8 where `int8`'s twin reads its weight through a DequantizeLinear in
    its body or around it, or was replaced. ONNX Runtime's quantize_static and quantize_dynamic (1.32) leave bodies
    FP32, and a body's multiply-adds run an unknown number of times: SLANet-plus' decoder loop read "100% INT8"."""
    twins = {_body_key(node): (node, dq) for _, node, dq in _subgraph_nodes(int8.graph)}
    found: dict[str, tuple[int, int]] = {}
    for where, node, _ in _subgraph_nodes(fp32.graph):
        if node.op_type in MAC_OPS:
            twin, dq = twins.get(_body_key(node), (None, frozenset()))
            quantized = twin is None or twin.op_type != node.op_type or bool(dq.intersection(twin.input[1:2]))
            label = f"{node.op_type} in {where}"
            nodes, int8_nodes = found.get(label, (0, 0))
            found[label] = (nodes + 1, int8_nodes + quantized)
    return found


def has_subgraph_compute(model: onnx.ModelProto) -> bool:
    """Whether a Loop/Scan body or an If branch of `model` holds a compute node (`subgraph_compute`)."""
    return any(node.op_type in MAC_OPS for _, node, _ in _subgraph_nodes(model.graph))


def _subgraph_nodes(graph: onnx.GraphProto) -> Iterator[tuple[str, onnx.NodeProto, frozenset[str]]]:
    """Each node inside a subgraph of `graph`, recursively, with where it sits ("Loop body", "If branch") and the
    DequantizeLinear outputs it can read (its own graph's and those around it)."""
    for scope in walk_graphs(graph):
        if scope.owner is None:
            continue
        where = f"{scope.owner.op_type} {'body' if scope.attribute == 'body' else 'branch'}"
        seen = frozenset().union(*(_dq_outputs(outer.graph) for outer in scope.enclosing()))
        yield from ((where, node, seen) for node in scope.graph.node)


def _dq_outputs(graph: onnx.GraphProto) -> frozenset[str]:
    return frozenset(o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output)


def _body_key(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]  # a body's nodes often go unnamed; their outputs are unique


def _with_subgraphs(share: float | None, body: dict[str, tuple[int, int]]) -> float | None:
    """`share` of the top-level graph's multiply-adds (None: it has none) with the subgraphs' compute nodes beside:
    the whole model's share where both say the same (all INT8, or none), else None: a body's multiply-adds times an
    unknown trip count cannot be read from the graph."""
    if not body:
        return 0.0 if share is None else share
    nodes, int8_nodes = (sum(counts) for counts in zip(*body.values(), strict=True))
    uniform = 1.0 if int8_nodes == nodes else 0.0 if int8_nodes == 0 else None
    return uniform if share is None or share == uniform else None


def int8_share_with_subgraphs(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, share: float | None, fp32_compute: dict[str, int]
) -> tuple[float | None, dict[str, int]]:
    """`share` and `fp32_compute` ({op type: compute nodes left FP32}) of the top-level graph, with the compute
    inside subgraphs (`subgraph_compute`): the share None where it cannot be read, the bodies' FP32 nodes first (their
    multiply-adds run once a step, the steps unknown), e.g. {"MatMul in Loop body": 4, "Conv": 2}."""
    body = subgraph_compute(fp32, int8)
    kept = {label: nodes - int8_nodes for label, (nodes, int8_nodes) in body.items() if nodes > int8_nodes}
    return _with_subgraphs(share, body), {**kept, **fp32_compute}


def int8_compute_share(
    fp32: Path, int8: Path, sample: dict[str, np.ndarray], whole: bool = False
) -> tuple[float | None, dict[str, int]]:
    """The share of `fp32`'s multiply-adds (one row of `sample`, or all of it where `whole`: an --unbatched build's
    sample, whose axis 0 is its frames) that `int8` runs in INT8, and the op types of the compute nodes it leaves FP32
    with their counts, those with the most multiply-adds first. Where INT8 covers a sliver (resemblyzer's speaker
    encoder: 3 LSTMs FP32, 0.03 % INT8), no timing can make it faster, and the speed refusal says so instead of
    asking for an idle machine. A beat tracker's first frame alone failed its Conv (ORT's error leaked, and a build
    2 % INT8 was told to time again on an idle machine, session 40): hence `whole`. None where compute inside a
    Loop/Scan/If body makes the share unreadable (`int8_share_with_subgraphs`)."""
    model = onnx.load(str(fp32), load_external_data=False)
    macs = compute_macs(model, fp32, sample if whole else {name: array[:1] for name, array in sample.items()})
    int8_model = onnx.load(str(int8), load_external_data=False)
    int8_nodes = set(quantized_nodes(model, int8_model))
    total = sum(macs.values())
    op_types = {node.name: node.op_type for node in model.graph.node}
    kept: dict[str, list[int]] = {}  # op type -> [nodes, multiply-adds]
    for name, count in macs.items():
        if name not in int8_nodes:
            entry = kept.setdefault(op_types.get(name, "?"), [0, 0])
            entry[0], entry[1] = entry[0] + 1, entry[1] + count
    share = sum(macs[n] for n in int8_nodes if n in macs) / total if total else None
    by_op = {op: kept[op][0] for op in sorted(kept, key=lambda op: -kept[op][1])}
    return int8_share_with_subgraphs(model, int8_model, share, by_op)

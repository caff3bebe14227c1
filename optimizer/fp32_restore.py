"""A Q/DQ model with chosen nodes reading FP32 again, by graph surgery: weights put back from the FP32 model,
activations read from before their Q/DQ pair, a Relu or Clip ORT folded into a Q range put back. The variants
the mixed-precision search (`optimizer.sensitivity`) probes are cut from the first INT8 model this way
(`optimizer.int8_schemes`), milliseconds each instead of a re-quantization.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx


def keep_fp32(int8: onnx.ModelProto, fp32: onnx.ModelProto, nodes: Sequence[str]) -> onnx.ModelProto:
    """A Q/DQ model with `nodes` reading FP32 again: weights from `fp32`, activations from before their Q/DQ pair.

    Graph surgery instead of re-quantizing, so a probe costs milliseconds. A float tensor is used only
    where the same node produces it in both graphs: ORT folds a Relu into its Q range and hands the
    Relu's output name to the node before it, so that name then holds pre-Relu values.
    """
    model = onnx.ModelProto()
    model.CopyFrom(int8)
    originals = {n.name: n for n in fp32.graph.node}
    weights = {i.name: i for i in fp32.graph.initializer}
    producers = {out: n for n in model.graph.node for out in n.output}
    fp32_nodes = {out: n for n in fp32.graph.node for out in n.output}
    fp32_producers = {out: node.name for out, node in fp32_nodes.items()}
    fp32_inputs = {n.name: set(n.input) for n in fp32.graph.node}

    def same(tensor: str) -> bool:
        return tensor in fp32_producers and tensor in producers and producers[tensor].name == fp32_producers[tensor]

    inputs = {i.name for i in model.graph.input}
    refolded: dict[str, onnx.NodeProto] = {}  # a folded activation's output name → the activation put back
    for node in model.graph.node:
        if node.name not in set(nodes) or node.name not in originals:
            continue
        for index, name in enumerate(node.input):
            source = originals[node.name].input[index] if index < len(originals[node.name].input) else ""
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or not source:
                continue
            if source in weights:
                node.input[index] = _restore_weight(model, weights[source], taken=source in producers)
            elif source in inputs or same(source):
                node.input[index] = source
            elif (activation := _folded_activation(fp32_nodes, weights, source, dq, producers, refolded)) is not None:
                node.input[index] = activation.output[0]
        _bypass_output_qdq(model, node, fp32_inputs, [o for o in node.output if same(o)])
    for activation in refolded.values():  # after the node whose output it reads (the graph stays in order)
        before = producers[activation.input[0]]
        at = next(i for i, node in enumerate(model.graph.node) if node == before)
        model.graph.node.insert(at + 1, activation)
        for value in activation.input[1:]:  # a Clip's bounds
            if value and value in weights and not any(i.name == value for i in model.graph.initializer):
                model.graph.initializer.append(weights[value])
    _prune(model)
    return model


def _folded_activation(
    fp32_producers: dict[str, onnx.NodeProto],
    weights: dict[str, onnx.TensorProto],
    source: str,
    dq: onnx.NodeProto,
    producers: dict[str, onnx.NodeProto],
    refolded: dict[str, onnx.NodeProto],
) -> onnx.NodeProto | None:
    """The Relu or Clip that ORT folded into the Q range of `source` (a kept node's FP32 input), put back on the float
    tensor that Q reads: without it a node kept FP32 after a Relu still read its input quantized, and an MLP with
    every MatMul kept FP32 drifted half as far as the whole INT8 model (max abs diff 0.018 against 0.037)."""
    if source in refolded:
        return refolded[source]
    activation, q = fp32_producers.get(source), producers.get(dq.input[0])
    if activation is None or activation.op_type not in ("Relu", "Clip") or q is None or q.op_type != "QuantizeLinear":
        return None
    before, quantized = fp32_producers.get(activation.input[0]), q.input[0]
    if before is None or quantized not in producers or producers[quantized].name != before.name:
        return None
    if any(value and value not in weights for value in activation.input[1:]):
        return None  # bounds made by a node: not carried over
    put_back = onnx.NodeProto()
    put_back.CopyFrom(activation)
    put_back.name = f"{activation.name or source}_fp32"
    put_back.input[0], put_back.output[:] = quantized, [f"{source}_fp32"]
    refolded[source] = put_back
    return put_back


def _restore_weight(model: onnx.ModelProto, weight: onnx.TensorProto, taken: bool) -> str:
    """Put the FP32 `weight` back (renamed when ORT gave its name to the DequantizeLinear output); its name."""
    name = f"{weight.name}_fp32" if taken else weight.name
    if not any(i.name == name for i in model.graph.initializer):
        restored = onnx.TensorProto()
        restored.CopyFrom(weight)
        restored.name = name
        model.graph.initializer.append(restored)
    return name


def _bypass_output_qdq(
    model: onnx.ModelProto, node: onnx.NodeProto, fp32_inputs: dict[str, set[str]], outputs: Sequence[str]
) -> None:
    """Readers of `outputs` through a Q→DQ pair (e.g. a MatMul's quantized output) read the float tensor again,
    where the FP32 graph has them read it."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for other in model.graph.node:
        for name in other.input:
            readers.setdefault(name, []).append(other)
    for output in outputs:
        for q in (r for r in readers.get(output, []) if r.op_type == "QuantizeLinear"):
            for dq in (r for r in readers.get(q.output[0], []) if r.op_type == "DequantizeLinear"):
                for reader in readers.get(dq.output[0], []):
                    if output in fp32_inputs.get(reader.name, set()):
                        reader.input[:] = [output if name == dq.output[0] else name for name in reader.input]


def _prune(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nothing reads (the bypassed Q/DQ pairs), then unused initializers."""
    while True:
        used = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if not used.intersection(n.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {name for n in model.graph.node for name in n.input}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)

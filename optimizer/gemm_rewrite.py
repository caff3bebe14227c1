"""ONNX Runtime's rewrite of Gemms of a transposed constant weight as MatMul (+ Add), made once before dynamic INT8.

`quantize_dynamic` makes this rewrite itself and keeps both weights; given the rewritten file it holds half as much
(`gemms_as_matmuls`). Split from `optimizer.int8_schemes`, whose `DynamicScheme` quantizes the rewritten model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import onnx

from optimizer import onnx_files
from optimizer.graph_walk import node_subgraphs

MATMUL_SUFFIX = "_MatMul"  # ONNX Runtime's rewrite names the MatMul of Gemm `X` `X_MatMul` (and its Add `X_Add`)


def gemms_as_matmuls(model_path: Path, out: Path) -> Path:
    """The model at `model_path` with its Gemms of a transposed constant weight rewritten as MatMul (+ Add) at `out`,
    by ONNX Runtime's own rewrite and from the model as `quantize_dynamic` loads it, the untransposed weights dropped;
    `model_path` itself where there is no such Gemm (or subgraphs, which the rewrite also enters).

    `quantize_dynamic` makes this rewrite itself, keeping both weights, then copies and reloads the model, so a
    PyTorch export (`Linear` is a Gemm with its weight transposed) held four copies of its weights inside it: a
    302 MB MLP peaked 2.1 GB above the process there. Given this file it holds two and writes the same bytes
    (1.4 GB above; this rewrite 1.4 GB too). An untransposed weight in an external file (a large model's) is not
    loaded with the model: the rewrite reads each one as it transposes it. A Gemm kept FP32 is excluded by its
    MatMul's name too (`X_MatMul`): by its own name alone ORT quantized it all the same.
    """
    from onnxruntime.quantization.onnx_model import ONNXModel
    from onnxruntime.quantization.quant_utils import add_infer_metadata

    if not _has_transposed_gemm(onnx.load(str(model_path), load_external_data=False)):
        return model_path
    inferred = out.with_name(f"{out.stem}-inferred.onnx")  # as quantize_dynamic loads it: shapes inferred, marked
    onnx.shape_inference.infer_shapes_path(str(model_path), str(inferred))
    model = onnx.load(str(inferred), load_external_data=False)
    inferred.unlink()
    add_infer_metadata(model)
    with contextlib.chdir(model_path.parent):  # where the rewrite's `to_array` finds an external weight's file
        ONNXModel(model).replace_gemm_with_matmul()
    graph = model.graph
    # Top-level readers alone: a model with an If/Loop/Scan body is left whole (a missed saving, not a wrong model).
    used = {name for node in graph.node for name in node.input}
    used |= {value.name for value in [*graph.input, *graph.output]}
    for tensor in [t for t in graph.initializer if t.name not in used]:  # quantize_dynamic drops them at its end
        graph.initializer.remove(tensor)
    onnx.load_external_data_for_model(model, str(model_path.parent))  # the weights left (biases, other ops')
    onnx_files.save(model, out, keep_weights=False)
    return out


def _has_transposed_gemm(model: onnx.ModelProto) -> bool:
    """A top-level Gemm with transB whose weight is an initializer, and no subgraph anywhere."""
    if any(next(node_subgraphs(node), None) for node in model.graph.node):
        return False
    weights = {t.name for t in model.graph.initializer}
    return any(
        node.op_type == "Gemm"
        and len(node.input) > 1
        and node.input[1] in weights
        and any(a.name == "transB" and a.i == 1 for a in node.attribute)
        for node in model.graph.node
    )

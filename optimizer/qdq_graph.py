"""The Q/DQ graph ONNX Runtime's quantizer writes, made right: written at an opset ONNX Runtime runs Q/DQ at, and
with the nodes kept FP32 and the graph outputs reading FP32 tensors instead of an activation's shared Q/DQ pair.
Graphs only: a large model's weights stay in their external file."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from optimizer.quant_exclusions import read_fp32
from quantserve.errors import QuantserveError


def finish_qdq(path: Path, fp32_path: Path, excluded: Sequence[str]) -> None:
    """The FP32 model's outputs listed again, and the excluded nodes that write a graph output, and graph outputs
    themselves, reading FP32 tensors, not activation Q/DQ pairs (quant_exclusions.read_fp32); weights untouched.

    Only those: rewiring every excluded node (the search's FP32 keeps inside a transformer too) off its pairs
    broke a token tagger's hidden states (worst cosine 0.895 where the shared pairs gave ≥ 0.97) — not traced yet.
    """
    model = onnx.load(str(path), load_external_data=False)  # a large model's weights stay in their file
    fp32 = onnx.load(str(fp32_path), load_external_data=False)
    del model.graph.output[:]
    model.graph.output.extend(fp32.graph.output)
    outputs = {o.name for o in fp32.graph.output}
    keep = set(excluded)
    writers = [n.name for n in model.graph.node if n.name in keep and outputs.intersection(n.output)]
    read_fp32(model, fp32, writers)
    onnx.save(model, str(path))


def at_qdq_opset(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """`model` at the newest opset (up to its own) at which ONNX Runtime implements QuantizeLinear and
    DequantizeLinear, converted down by ONNX's version converter if need be; refused in one line if it cannot."""
    import onnxruntime

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    usable = next((v for v in range(opset, 12, -1) if _ort_runs_qdq(v)), opset)
    if usable == opset:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, usable)
    except Exception as exc:  # the converter raises plain RuntimeErrors for ops it has no adapter for
        raise QuantserveError(
            f"{name}: INT8 needs opset {usable} or lower (ONNX Runtime {onnxruntime.__version__} has no "
            f"QuantizeLinear at opset {opset}), and ONNX's version converter cannot bring the model down "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); export it at opset {usable}"
        ) from exc


@functools.cache
def _ort_runs_qdq(opset: int) -> bool:
    """Whether ONNX Runtime loads a QuantizeLinear → DequantizeLinear pair at `opset` (a tiny model, once each)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
        ],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # ORT's NotImplemented / InvalidGraph for an opset it does not run
        return False
    return True

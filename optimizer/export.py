"""Export stage: PyTorch → ONNX (opset ≥ 17, dynamic batch axis), or check a given `.onnx`; derive the manifest.

PyTorch export is `optimizer.torch_export`; an ONNX input's checks and opset upgrade `optimizer.onnx_input`.
Here: the stage itself, the refusal of already-quantized graphs, and the manifest read off the graph.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.batch_axis import BATCH, graph_inputs
from optimizer.onnx_input import check_onnx, onnx_opset, prepare_onnx_input
from optimizer.source import ModelSource
from optimizer.torch_export import export_torch
from optimizer.zipmap import ZIPMAP, zipmaps_record
from quantserve.artifact import Artifact, Manifest, TensorSpec
from quantserve.errors import InternalError, QuantserveError

MIN_OPSET = 17


class ExportOnnx:
    """Turn a ModelSource into a checked, shape-inferred ONNX file with a dynamic batch axis."""

    def __init__(
        self, opset: int | None = None, name: str | None = None, unbatched: bool = False, precision: str = "fp32"
    ) -> None:
        """`opset`: what the user asked for; None exports PyTorch at 17 and keeps an ONNX file's own (≥ 13).
        `unbatched` (optimize --unbatched): an ONNX file's axis 0 is kept as published (see `load_onnx_input`).
        `precision` other than fp32: an already-quantized ONNX file (or a float16 one, for int8) is refused
        (`refuse_quantized`) before its batch axis is freed, so that refusal comes first, not a fixed batch's advice
        to rewrite its Resize nodes."""
        self.opset = opset
        self.name = name
        self.unbatched = unbatched
        self.precision = precision

    def __call__(self, source: ModelSource, out_path: Path) -> Artifact:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if source.kind == "onnx":
            if source.path is None:
                raise InternalError("an ONNX model source without a path")
            exporter = "none (ONNX input)"
            refuse = None if self.precision == "fp32" else partial(_refuse_quantized_graph, self.precision, source.path)
            loaded = prepare_onnx_input(source.path, out_path, self.opset, self.unbatched, refuse)
            model, source_opset, freed, zipmaps = loaded.model, loaded.source_opset, loaded.freed, loaded.zipmaps
            split = loaded.fused_convs_split
            stored = {"weights_folded": loaded.weights_folded, "unread_inputs_dropped": list(loaded.inputs_dropped)}
        else:
            opset = MIN_OPSET if self.opset is None else self.opset
            if opset < MIN_OPSET:
                raise QuantserveError(f"opset {opset} is too old; use {MIN_OPSET} or newer")
            exporter = export_torch(source, out_path, opset)
            model = check_onnx(out_path)
            source_opset, freed, zipmaps, split = None, None, [], ()
            stored = {"weights_folded": 0}
        record: dict[str, Any] = {
            "stage": "export",
            "exporter": exporter,
            "source_opset": source_opset,
            "opset": onnx_opset(model),
            "nodes": len(model.graph.node),
        }
        if freed is not None:
            record["batch_axis_made_dynamic"] = {**freed.to_dict(), "note": freed_batch_note(freed.to_dict())}
        if split:  # ORT's FusedConv, which its quantizer cannot take, as the standard ops it computes
            record["fused_convs_split"] = list(split)
        if stored["weights_folded"]:  # INT8-stored weights the graph dequantized at every run, now FP32 initializers
            record["int8_stored_weights_folded"] = stored
        if zipmaps:  # the outputs' class labels, which the tensors' columns no longer carry
            record["zipmaps_removed"] = zipmaps_record(zipmaps)
        if defaulted_inputs(model):
            record["inputs_folded"] = {"inputs": defaulted_inputs(model), "note": defaults_note(model)}
        quantized = quantized_ops(model)
        if quantized:
            record["quantized_ops"] = quantized
        if half := float16_weights(model):
            record["float16_weights"] = half
        manifest = manifest_from_onnx(model, self.name or source.name)
        manifest.stages.append(record)
        return Artifact(out_path, manifest)


def export_onnx(source: ModelSource, out_path: Path, opset: int | None = None) -> Artifact:
    """Functional shorthand for `ExportOnnx(opset)(source, out_path)`."""
    return ExportOnnx(opset)(source, out_path)


# ONNX and ORT-contrib ops that only an already-quantized graph holds (every QLinear* op counts too)
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "QAttention",
        "QGemm",
    }
)


def quantized_ops(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each quantized op type the graph has (empty for an FP32 model)."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS or node.op_type.startswith("QLinear"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def refuse_quantized(export_record: dict[str, Any], precision: str, source: str) -> None:
    """An already-quantized graph (the export stage's `quantized_ops`) has no FP32 model to calibrate or to
    judge drift and speed against: refused. So is INT8 of a float16 graph: ONNX Runtime's quantizer writes
    float16 scales that its own DequantizeLinear then rejects."""
    half = export_record.get("float16_weights", 0)
    if half and precision == "int8":
        raise QuantserveError(
            f"{source}: the model computes in float16 ({half} float16 weights): INT8 calibration needs the FP32 "
            "model; give the FP32 original, or build this one unquantized with --precision fp32 (its float16 "
            "weights are kept and recorded as fp16)"
        )
    counts = export_record.get("quantized_ops") or {}
    if counts:
        found = ", ".join(f"{n} {op}" for op, n in sorted(counts.items(), key=lambda item: -item[1])[:3])
        raise QuantserveError(
            f"{source}: the model is already quantized ({found}): --precision {precision} needs the "
            "FP32 model to quantize and to measure drift and speed against; give the FP32 original, or serve "
            "this one with --precision fp32"
        )


def float16_weights(model: onnx.ModelProto) -> int:
    """How many float16 initializers the graph has where they outnumber the float32 ones (a float16 model, not an
    FP32 one with a stray table); else 0."""
    types = [t.data_type for t in model.graph.initializer]
    half = types.count(onnx.TensorProto.FLOAT16)
    return half if half > types.count(onnx.TensorProto.FLOAT) else 0


def _refuse_quantized_graph(precision: str, source: Path, model: onnx.ModelProto) -> None:
    """`refuse_quantized` of a loaded ONNX file, before the export stage's record of it exists (its float16 weights
    too, so a float16 model is refused for INT8 before a fixed batch axis is judged)."""
    record = {"quantized_ops": quantized_ops(model), "float16_weights": float16_weights(model)}
    refuse_quantized(record, precision, str(source))


# a ZipMap writing an output itself is removed on loading (`optimizer.zipmap`); one behind another node is not
ZIPMAP_HINT = (
    "optimize removes a ZipMap only where it writes a graph output itself: make the tensor the ZipMap reads the "
    "output (its class probabilities, [N, C])"
)


def tensor_spec(value: onnx.ValueInfoProto, role: str = "output") -> TensorSpec:
    """A TensorSpec from an ONNX value: axis 0 is `batch`; other unnamed dynamic axes get their dim_param.

    A value that is not a tensor (a sequence, a map, an optional) is refused naming it (`role`: input or output).
    """
    if value.type.WhichOneof("value") != "tensor_type":
        raise QuantserveError(f"{role} '{value.name}' is {non_tensor_type(value.type, role)}")
    tensor_type = value.type.tensor_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    shape: list[int | str] = []
    for i, dim in enumerate(tensor_type.shape.dim):
        if i == 0:
            shape.append(BATCH)
        elif dim.HasField("dim_value"):
            shape.append(int(dim.dim_value))
        else:
            shape.append(dim.dim_param or f"dim{i}")
    return TensorSpec(name=value.name, dtype=dtype, shape=tuple(shape))


def manifest_from_onnx(model: onnx.ModelProto, name: str) -> Manifest:
    """The model's I/O as a Manifest (FP32, no stages yet)."""
    inputs = [tensor_spec(v, "input") for v in graph_inputs(model)]
    outputs = [tensor_spec(v, "output") for v in model.graph.output]
    return Manifest(name=name, inputs=inputs, outputs=outputs)


def non_tensor_type(value_type: onnx.TypeProto, role: str = "output") -> str:
    """What a non-tensor value (`role`: input or output) is and why it cannot be served, e.g. an output that is a
    ZipMap's sequence of maps reached through another node (a ZipMap writing an output itself was removed on
    loading, `optimizer.zipmap`)."""
    kind = value_type.WhichOneof("value")
    if kind == "sequence_type" and value_type.sequence_type.elem_type.WhichOneof("value") == "map_type":
        hint = f"; {ZIPMAP_HINT}" if role == "output" else ": it takes and returns dense tensors only"
        return f"a sequence of maps (as {ZIPMAP} writes), which Triton cannot serve{hint}"
    nouns = {
        "sequence_type": "a sequence",
        "map_type": "a map",
        "optional_type": "an optional",
        "sparse_tensor_type": "a sparse tensor",
    }
    noun = nouns.get(kind or "", "not a tensor (no type)" if kind is None else f"a {kind}")
    return f"{noun}, which Triton cannot serve: it takes and returns dense tensors only"


def defaulted_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs that also have an initializer of the same name: an overridable default (ONNX IR ≥ 4)."""
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name in initializers]


def defaults_note(model: onnx.ModelProto) -> str:
    """The line saying which defaulted inputs are folded as constants ('' when none)."""
    names = defaulted_inputs(model)
    if not names:
        return ""
    served = ", ".join(i.name for i in graph_inputs(model))
    which = ", ".join(f"'{n}'" for n in names)
    noun = "input" if len(names) == 1 else "inputs"
    return (
        f"{noun} {which} {'has' if len(names) == 1 else 'have'} a default (an initializer of the same name) and "
        f"{'is' if len(names) == 1 else 'are'} folded into the model as that constant; the served model takes "
        f"only {served}"
    )


def freed_batch_note(freed: dict[str, Any]) -> str:
    """The line saying the inputs' batch axis, fixed at 1, was made dynamic and how that was proven: the served
    interface changes (deploy writes a max_batch_size above 1), and it was said only in manifest.json (MEGnet)."""
    which = ", ".join(f"'{name}'" for name in freed["inputs"])
    noun = "input" if len(freed["inputs"]) == 1 else "inputs"
    their = "its" if len(freed["inputs"]) == 1 else "their"
    return (
        f"{noun} {which} had {their} batch axis fixed at 1; made dynamic, as Triton batches requests only along a "
        f"dynamic axis 0: {freed['proof']}"
    )

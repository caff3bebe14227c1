"""Export stage: PyTorch → ONNX (opset ≥ 17, dynamic batch axis), or check a given `.onnx`; derive the manifest.

Exporter choice (torch 2.13): an `nn.Module` goes through the TorchScript exporter (`dynamo=False`):
it writes the requested opset exactly, honours `dynamic_axes` directly and takes milliseconds, while
the dynamo exporter starts at opset 18 and its down-conversion to 17 fails on Reduce* ops. If the
TorchScript exporter fails (it is deprecated and misses some new ops), the dynamo exporter is tried.
A `.pt2` program can only go through the dynamo exporter (opset ≥ 18); the opset used is recorded.

An `.onnx` input is taken as published: an opset below 13 (which cannot hold the per-axis
DequantizeLinear of INT8 weights) or below `--opset` is upgraded with ONNX's version converter
before anything else, and a batch axis written as -1, 0, unnamed or symbolic is named `batch`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import onnx_files
from optimizer.batch_axis import BATCH, FreedBatch, free_unit_batch, graph_inputs
from optimizer.source import ModelSource
from quantserve.artifact import Artifact, Manifest, TensorSpec
from quantserve.errors import InternalError, QuantserveError

MIN_OPSET = 17
QDQ_MIN_OPSET = 13  # per-axis DequantizeLinear (per-channel INT8 weights) needs opset 13
DYNAMO_MIN_OPSET = 18


class ExportOnnx:
    """Turn a ModelSource into a checked, shape-inferred ONNX file with a dynamic batch axis."""

    def __init__(self, opset: int | None = None, name: str | None = None) -> None:
        """`opset`: what the user asked for; None exports PyTorch at 17 and keeps an ONNX file's own (≥ 13)."""
        self.opset = opset
        self.name = name

    def __call__(self, source: ModelSource, out_path: Path) -> Artifact:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if source.kind == "onnx":
            if source.path is None:
                raise InternalError("an ONNX model source without a path")
            exporter = "none (ONNX input)"
            model, source_opset, freed = load_onnx_input(source.path, out_path, self.opset)
        else:
            opset = MIN_OPSET if self.opset is None else self.opset
            if opset < MIN_OPSET:
                raise QuantserveError(f"opset {opset} is too old; use {MIN_OPSET} or newer")
            exporter = _export_torch(source, out_path, opset)
            model = check_onnx(out_path)
            source_opset, freed = None, None
        record: dict[str, Any] = {
            "stage": "export",
            "exporter": exporter,
            "source_opset": source_opset,
            "opset": onnx_opset(model),
            "nodes": len(model.graph.node),
        }
        if freed is not None:
            record["batch_axis_made_dynamic"] = freed.to_dict()
        if defaulted_inputs(model):
            record["inputs_folded"] = {"inputs": defaulted_inputs(model), "note": defaults_note(model)}
        quantized = quantized_ops(model)
        if quantized:
            record["quantized_ops"] = quantized
        types = [t.data_type for t in model.graph.initializer]
        half = types.count(onnx.TensorProto.FLOAT16)
        if half > types.count(onnx.TensorProto.FLOAT):  # a float16 model, not an FP32 one with a stray table
            record["float16_weights"] = half
        manifest = manifest_from_onnx(model, self.name or source.name)
        manifest.stages.append(record)
        return Artifact(out_path, manifest)


def export_onnx(source: ModelSource, out_path: Path, opset: int | None = None) -> Artifact:
    """Functional shorthand for `ExportOnnx(opset)(source, out_path)`."""
    return ExportOnnx(opset)(source, out_path)


def _export_torch(source: ModelSource, out_path: Path, opset: int) -> str:
    if source.kind == "exported_program":
        _export_dynamo(source, out_path, max(opset, DYNAMO_MIN_OPSET))
        return "dynamo"
    try:
        _export_torchscript(source, out_path, opset)
        return "torchscript"
    except Exception as first:  # the deprecated exporter fails on some new ops; try dynamo
        try:
            _export_dynamo(source, out_path, max(opset, DYNAMO_MIN_OPSET))
        except Exception as exc:
            raise QuantserveError(
                f"{source.name}: ONNX export failed (torchscript: {first}; dynamo: {type(exc).__name__}: {exc})"
            ) from exc
        return "dynamo"


def dynamic_axes_of(source: ModelSource, output_names: list[str]) -> dict[str, dict[int, str]]:
    """Declared dynamic axes, with axis 0 of every input and output named `batch` unless declared."""
    declared = source.options.get("dynamic_axes") or source.options.get("dynamic_shapes") or {}
    names = [*source.input_names, *output_names]
    unknown = [str(key) for key in declared if key not in names] if isinstance(declared, dict) else []
    if unknown:  # dropped without a word, the axis was exported fixed at the example's size
        raise QuantserveError(
            f"{source.name}: dynamic_axes names {', '.join(repr(k) for k in unknown)}, which is neither an input "
            f"{source.input_names} nor an output {output_names}; a tuple of example inputs names them input, "
            "input_1, … (give a dict of example inputs, or --input-names)"
        )
    axes: dict[str, dict[int, str]] = {}
    for name in names:
        given = declared.get(name, {})
        given = {int(i): BATCH if i == 0 else f"dim{i}" for i in given} if isinstance(given, list) else given
        axes[name] = {0: BATCH, **{int(k): str(v) for k, v in given.items()}}
    return axes


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a library logger's warnings (the dynamo exporter logs every missing torchvision op)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _output_names(source: ModelSource) -> list[str]:
    names = source.options.get("output_names")
    if names:
        return list(names)
    if source.kind == "exported_program":
        count = len(source.module.graph_signature.user_outputs)
    else:
        import torch

        with torch.inference_mode():
            outputs = source.module(*source.example_inputs.values())
        count = len(outputs) if isinstance(outputs, tuple | list) else 1
    return ["output" if i == 0 else f"output_{i}" for i in range(count)]


def _export_torchscript(source: ModelSource, out_path: Path, opset: int) -> None:

    outputs = _output_names(source)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; chosen on purpose (module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        _torchscript_export(source, out_path, opset, outputs)


def _torchscript_export(source: ModelSource, out_path: Path, opset: int, outputs: list[str]) -> None:
    import torch

    torch.onnx.export(
        source.module,
        tuple(source.example_inputs.values()),
        str(out_path),
        input_names=source.input_names,
        output_names=outputs,
        opset_version=opset,
        dynamo=False,
        dynamic_axes=dynamic_axes_of(source, outputs),  # type: ignore[arg-type]
    )


def _export_dynamo(source: ModelSource, out_path: Path, opset: int) -> None:
    import torch

    outputs = _output_names(source)
    kwargs: dict[str, Any] = {}
    if source.kind != "exported_program":  # a program carries its own dynamic shapes
        kwargs = {"output_names": outputs, "dynamic_axes": dynamic_axes_of(source, outputs)}
    with warnings.catch_warnings(), _quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            source.module,
            tuple(source.example_inputs.values()),
            input_names=source.input_names,
            opset_version=opset,
            dynamo=True,
            verbose=False,
            **kwargs,
        )
    if program is None:
        raise InternalError("torch.onnx.export returned no program with dynamo=True")
    program.save(str(out_path), external_data=_initializer_bytes(program) >= onnx_files.EXTERNAL_AT)
    if source.kind == "exported_program":
        # Named after export: the exporter's own renaming collides with internal values that share
        # a wanted name (e.g. a submodule called `embedding`), failing the checker. Renamed without
        # reading the weights: those of a large model stay in the file the model names.
        model = onnx.load(str(out_path), load_external_data=False)
        rename_graph_outputs(model, outputs)
        onnx.save(model, str(out_path))


def _initializer_bytes(program: Any) -> int:
    """Bytes of an ONNXProgram's weights: from `onnx_files.EXTERNAL_AT` they are saved beside the model, as
    every stage saves them (the exporter's own rule is 2 GB, where one protobuf can no longer hold them)."""
    values = program.model.graph.initializers.values()
    return sum(value.const_value.nbytes for value in values if value.const_value is not None)


def rename_graph_outputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Rename the graph outputs in order; an internal value already holding a wanted name moves aside."""
    graph = model.graph
    for output, new in zip(list(graph.output), names, strict=True):
        old = output.name
        if old == new:
            continue
        if new in _value_names(graph):
            _rename_value(graph, new, f"{new}__internal")
        _rename_value(graph, old, new)


def _value_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    names |= {i.name for i in graph.initializer}
    return names | {n for node in graph.node for n in [*node.input, *node.output]}


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        if value.name == old:
            value.name = new


def load_onnx_input(
    path: Path, save_to: Path, opset: int | None = None
) -> tuple[onnx.ModelProto, int, FreedBatch | None]:
    """Check a user's ONNX file, upgrade its opset (to ≥ 13, or to `opset`), name its batch axes; save it.

    Returns the model, its original opset and what was done to free a fixed batch of 1 (None: nothing;
    `optimizer.batch_axis`). An `opset` older than the model's is refused: opsets are not downgraded.
    """
    model = sort_topologically(_load_onnx(path))
    original = onnx_opset(model)
    target = max(QDQ_MIN_OPSET, original if opset is None else opset)
    if opset is not None and opset < original:
        raise QuantserveError(
            f"{path}: the model uses opset {original}, newer than the requested opset {opset}; "
            f"opsets are not downgraded (ask for {original} or newer, or leave --opset out)"
        )
    name_dynamic_batch_axes(model)
    model, freed = free_unit_batch(path, model)
    _require_dynamic_batch(path, model)  # before a conversion that may take a while
    if target > original and onnx_files.is_large(model):
        model = _upgrade_large(path, model, target, Path(save_to).parent)
    elif target > original:
        _check(path, model)  # the converter expects a valid graph
        model = upgrade_opset(path, model, target)
    return _finish(path, model, save_to), original, freed


def sort_topologically(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its nodes in topological order (as the ONNX checker requires), by onnx_ir's sort pass.

    ONNX Runtime runs unsorted graphs, so published models can be unsorted: onnxruntime.transformers'
    float16 converter with keep_io_types appends its input Casts after the nodes that read them.
    """
    known = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    for node in model.graph.node:
        if not all(name in known for name in node.input):
            break
        known.update(node.output)
    else:
        return model
    import onnx_ir
    from onnx_ir.passes.common import TopologicalSortPass

    ir_model = onnx_ir.from_proto(model)
    TopologicalSortPass()(ir_model)
    return onnx_ir.to_proto(ir_model)


def check_onnx(path: Path, save_to: Path | None = None) -> onnx.ModelProto:
    """Load, check and shape-infer an ONNX file, saved to `save_to` (default: in place).

    A damaged file or a fixed batch axis is a one-line QuantserveError naming `path`; a batch axis
    written as -1, 0, unnamed or symbolic is named `batch`. A large model whose weights file lies beside
    `save_to` is checked without reading its weights, and comes back without them (graph, shapes, types).
    """
    save_to = save_to or path
    bare = _load_onnx(path, weights=False)
    if onnx_files.is_large(bare) and _weights_beside(bare, path, save_to):
        name_dynamic_batch_axes(bare)
        _require_dynamic_batch(path, bare)
        onnx.save(bare, str(save_to))  # the graph alone: its tensors still name the weights file beside it
        return _check_large(path, save_to)
    model = _load_onnx(path)
    name_dynamic_batch_axes(model)
    return _finish(path, model, save_to)


def _weights_beside(bare: onnx.ModelProto, path: Path, save_to: Path) -> bool:
    """True when `bare` (loaded without its external data) keeps its bulk in external files and `save_to` sits in
    `path`'s folder, beside them."""
    tensors = bare.graph.initializer
    inline = sum(t.ByteSize() for t in tensors if t.data_location != onnx.TensorProto.EXTERNAL)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)
    beside = Path(save_to).parent.resolve() == Path(path).parent.resolve()
    return external and inline < onnx_files.EXTERNAL_AT and beside


def _load_onnx(path: Path, weights: bool = True) -> onnx.ModelProto:
    """The model with its weights, external ones read from beside it (any size: `optimizer.onnx_files`); with
    `weights=False` its external ones stay in their file."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends for a damaged file
        raise QuantserveError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    if weights and any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        try:
            onnx.load_external_data_for_model(model, str(Path(path).parent))
        except Exception as exc:  # a missing or short .data file
            raise QuantserveError(f"{path}: its external weights cannot be read ({type(exc).__name__})") from exc
    return model


def _check(path: Path, model: onnx.ModelProto | Path) -> None:
    """The ONNX checker on `model`, or on the saved file `model` (a large model: it cannot be serialized whole)."""
    try:
        onnx.checker.check_model(str(model) if isinstance(model, Path) else model)
    except onnx.checker.ValidationError as exc:
        raise QuantserveError(f"{path}: ONNX checker rejected the model ({str(exc).splitlines()[0]})") from exc


def _finish(path: Path, model: onnx.ModelProto, save_to: Path) -> onnx.ModelProto:
    """Check, shape-infer, require a dynamic batch axis, save (a large model: saved first, checked from its file)."""
    if onnx_files.is_large(model):
        return _finish_large(path, model, save_to)
    _check(path, model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except onnx.shape_inference.InferenceError as exc:
        raise QuantserveError(f"{path}: ONNX checker rejected the model ({str(exc).splitlines()[0]})") from exc
    _require_dynamic_batch(path, model)
    onnx.save(model, str(save_to))
    return model


def _finish_large(path: Path, model: onnx.ModelProto, save_to: Path) -> onnx.ModelProto:
    """`_finish` for a model of EXTERNAL_AT or more: saved with its weights beside it, then `_check_large`."""
    _require_dynamic_batch(path, model)
    onnx_files.save(model, save_to)
    return _check_large(path, save_to)


def _check_large(path: Path, saved: Path) -> onnx.ModelProto:
    """ONNX's checker and shape inference on the large model saved at `saved`, read from its files; the model
    without its weights (graph, shapes, types: all a caller reads; every stage reads the weights from the file)."""
    _check(path, saved)
    try:
        onnx.shape_inference.infer_shapes_path(str(saved), str(saved), strict_mode=False)
    except onnx.shape_inference.InferenceError as exc:
        raise QuantserveError(f"{path}: ONNX checker rejected the model ({str(exc).splitlines()[0]})") from exc
    return onnx.load(str(saved), load_external_data=False)


def upgrade_opset(path: Path, model: onnx.ModelProto, target: int) -> onnx.ModelProto:
    """The model converted to opset `target` by ONNX's version converter, or a one-line error naming the op."""
    from onnx import version_converter

    original = onnx_opset(model)
    try:
        return version_converter.convert_version(model, target)
    except Exception as exc:  # the converter raises RuntimeError with a C++ assertion text
        reason = str(exc).splitlines()[0].rpartition("failed: ")[2][:160]
        raise QuantserveError(
            f"{path}: cannot upgrade opset {original} to {target}: ONNX's version converter fails on "
            f"{_failing_node(model, target)} ({reason})"
        ) from exc


def _upgrade_large(path: Path, model: onnx.ModelProto, target: int, work: Path) -> onnx.ModelProto:
    """`upgrade_opset` for a model too large for one protobuf: its weights are written to a scratch file, the
    graph checked from there and converted without them (the converter keeps their references), then they
    are read back. The scratch file is made in `work`."""
    with tempfile.TemporaryDirectory(prefix=".upgrade-", dir=work) as scratch:
        saved = Path(scratch) / "model.onnx"
        onnx_files.save(model, saved, keep_weights=False)  # `model`'s tensors now only name the scratch file
        _check(path, saved)
        upgraded = upgrade_opset(path, model, target)
        onnx.load_external_data_for_model(upgraded, scratch)
    return upgraded


def _failing_node(model: onnx.ModelProto, target: int) -> str:
    """The first node the converter cannot convert on its own, tried one node at a time."""
    from onnx import version_converter

    types = {v.name: v.type for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]}
    for node in model.graph.node:
        inputs = [_value(name, types) for name in node.input if name]
        outputs = [_value(name, types) for name in node.output if name]
        graph = onnx.helper.make_graph([node], "probe", inputs, outputs)
        probe = onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
        try:
            version_converter.convert_version(probe, target)
        except Exception:
            return f"node '{node.name}' ({node.op_type})" if node.name else f"op '{node.op_type}'"
    return "a node it does not name"


def _value(name: str, types: dict[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    value = onnx.ValueInfoProto(name=name)
    if name in types:
        value.type.CopyFrom(types[name])
    else:
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return value


def name_dynamic_batch_axes(model: onnx.ModelProto) -> list[str]:
    """Name axis 0 `batch` where it is -1, 0, unnamed or symbolic (inputs, and outputs sharing it); return the tensors.

    Exporters mark a dynamic axis with -1 or leave it unnamed. A fixed positive batch stays, to be refused.
    Other non-positive dims of inputs, outputs and value_info become unknown dims.
    """
    batch_names = {BATCH}
    renamed = []
    for value in graph_inputs(model):
        dims = value.type.tensor_type.shape.dim
        if dims and _is_dynamic(dims[0]):
            batch_names.add(dims[0].dim_param or BATCH)
            renamed += _set_batch(value)
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and _is_dynamic(dims[0]) and (not dims[0].dim_param or dims[0].dim_param in batch_names):
            renamed += _set_batch(value)
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.ClearField("dim_value")
    return renamed


def _is_dynamic(dim: onnx.TensorShapeProto.Dimension) -> bool:
    return not dim.HasField("dim_value") or dim.dim_value <= 0


def _set_batch(value: onnx.ValueInfoProto) -> list[str]:
    dim = value.type.tensor_type.shape.dim[0]
    if dim.dim_param == BATCH:
        return []
    dim.dim_param = BATCH  # setting the oneof field clears any dim_value
    return [value.name]


def _require_dynamic_batch(path: Path, model: onnx.ModelProto) -> None:
    for tensor in graph_inputs(model):
        dims = tensor.type.tensor_type.shape.dim
        if not dims:
            raise QuantserveError(f"{path}: input '{tensor.name}' has no batch axis (rank 0)")
        if dims[0].HasField("dim_value"):
            dynamic = [i for i, dim in enumerate(dims) if not dim.HasField("dim_value")]
            where = f", and axis {dynamic[0]} is dynamic: Triton batches along axis 0" if dynamic else ""
            raise QuantserveError(
                f"{path}: input '{tensor.name}' has a fixed batch axis ({dims[0].dim_value}){where}; "
                "re-export it with a dynamic batch axis (dim_param) so Triton can batch requests"
            )


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
            "model; give the FP32 original, or serve this one with --precision fp32"
        )
    counts = export_record.get("quantized_ops") or {}
    if counts:
        found = ", ".join(f"{n} {op}" for op, n in sorted(counts.items(), key=lambda item: -item[1])[:3])
        raise QuantserveError(
            f"{source}: the model is already quantized ({found}): --precision {precision} needs the "
            "FP32 model to quantize and to measure drift and speed against; give the FP32 original, or serve "
            "this one with --precision fp32"
        )


def onnx_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


ZIPMAP_HINT = "convert with zipmap=False (skl2onnx options={id(model): {'zipmap': False}})"


def tensor_spec(value: onnx.ValueInfoProto, role: str = "output") -> TensorSpec:
    """A TensorSpec from an ONNX value: axis 0 is `batch`; other unnamed dynamic axes get their dim_param.

    A value that is not a tensor (a sequence, a map, an optional) is refused naming it (`role`: input or output).
    """
    if value.type.WhichOneof("value") != "tensor_type":
        raise QuantserveError(f"{role} '{value.name}' is {non_tensor_type(value.type)}")
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


def non_tensor_type(value_type: onnx.TypeProto) -> str:
    """What a non-tensor value is and why it cannot be served, e.g. skl2onnx's ZipMap output (a sequence of maps)."""
    kind = value_type.WhichOneof("value")
    if kind == "sequence_type" and value_type.sequence_type.elem_type.WhichOneof("value") == "map_type":
        return f"a sequence of maps (ZipMap), which Triton cannot serve; {ZIPMAP_HINT}"
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

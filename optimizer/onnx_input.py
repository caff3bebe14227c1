"""A user's `.onnx` file made ready for the pipeline: loaded, checked, shape-inferred, its opset upgraded and
its batch axis named, ZipMap outputs made tensors (`optimizer.zipmap`), large models (weights beside the graph)
handled without serializing them whole.

An `.onnx` input is taken as published: an opset below 13 (which cannot hold the per-axis
DequantizeLinear of INT8 weights) or below `--opset` is upgraded with ONNX's version converter
before anything else, and a batch axis written as -1, 0, unnamed or symbolic is named `batch`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx

from optimizer import onnx_files
from optimizer.batch_axis import FreedBatch, free_unit_batch
from optimizer.fused_ops import split_fused_convs
from optimizer.input_batch_axis import name_dynamic_batch_axes, require_dynamic_batch
from optimizer.stored_weights import drop_unread_inputs, fold_stored_weights
from optimizer.unknown_ops import unknown_ops_advice
from optimizer.zipmap import RemovedZipMap, remove_output_zipmaps
from quantserve.errors import QuantserveError

QDQ_MIN_OPSET = 13  # per-axis DequantizeLinear (per-channel INT8 weights) needs opset 13


@dataclass(frozen=True)
class OnnxInput:
    """A user's ONNX file as the export stage saved it, and what was changed on the way."""

    model: onnx.ModelProto
    source_opset: int
    freed: FreedBatch | None  # what was done to free a fixed batch of 1 (None: nothing; `optimizer.batch_axis`)
    zipmaps: list[RemovedZipMap]  # ZipMaps removed from outputs (`optimizer.zipmap`)
    fused_convs_split: tuple[str, ...] = ()  # ORT's FusedConv nodes made Conv + activation (`optimizer.fused_ops`)
    weights_folded: int = 0  # INT8-stored weights' DequantizeLinear folded to FP32 (`optimizer.stored_weights`)
    inputs_dropped: tuple[str, ...] = ()  # graph inputs nothing read, left by that storage's converter


def load_onnx_input(
    path: Path, save_to: Path, opset: int | None = None, unbatched: bool = False
) -> tuple[onnx.ModelProto, int, FreedBatch | None]:
    """`prepare_onnx_input`'s model, original opset and freed batch."""
    loaded = prepare_onnx_input(path, save_to, opset, unbatched)
    return loaded.model, loaded.source_opset, loaded.freed


def prepare_onnx_input(
    path: Path,
    save_to: Path,
    opset: int | None = None,
    unbatched: bool = False,
    refuse: Callable[[onnx.ModelProto], None] | None = None,
) -> OnnxInput:
    """Check a user's ONNX file, make ZipMap outputs tensors, upgrade its opset (to ≥ 13, or to `opset`), name its
    batch axes; save it.

    An `opset` older than the model's is refused: opsets are not downgraded.
    `unbatched` (optimize --unbatched): axis 0 is left as published, neither freed nor required dynamic.
    `refuse`: raises on a graph the build cannot take (an already-quantized one, or for INT8 a float16 one), run on
    the model as loaded (its INT8-stored weights folded) before any opset or batch-axis work.
    """
    model = sort_topologically(_load_onnx(path))
    original = onnx_opset(model)
    folded = fold_stored_weights(model)  # weight storage, not quantized compute: the FP32 it computes with
    dropped = tuple(drop_unread_inputs(model)) if folded else ()
    if refuse is not None:
        refuse(model)
    ml_only = original == 0 and not any(node.domain in ("", "ai.onnx") for node in model.graph.node)
    zipmaps = remove_output_zipmaps(model)  # before naming batch axes: the outputs it makes have one
    target = max(QDQ_MIN_OPSET, original if opset is None else opset)
    if opset is not None and opset < original:
        raise QuantserveError(
            f"{path}: the model uses opset {original}, newer than the requested opset {opset}; "
            f"opsets are not downgraded (ask for {original} or newer, or leave --opset out)"
        )
    name_dynamic_batch_axes(model)
    freed = None
    if not unbatched:
        model, freed = free_unit_batch(path, model)
        require_dynamic_batch(path, model)  # before a conversion that may take a while
    if ml_only:
        # no standard op and no import of them (onnxmltools' XGBoost: ai.onnx.ml alone): nothing to convert; the
        # import is added so the stages after this, which insert standard ops, have one (it read as "opset 0")
        model.opset_import.append(onnx.helper.make_opsetid("", target))
    elif target > original and onnx_files.is_large(model):
        model = _upgrade_large(path, model, target, Path(save_to).parent)
    elif target > original:
        _check(path, model)  # the converter expects a valid graph
        model = upgrade_opset(path, model, target)
    split = split_fused_convs(model)  # after the upgrade: Clip's bounds are inputs from opset 11
    finished = _finish(path, model, save_to, not unbatched)
    return OnnxInput(finished, original, freed, zipmaps, tuple(split), folded, dropped)


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


def check_onnx(path: Path, save_to: Path | None = None, batched: bool = True) -> onnx.ModelProto:
    """Load, check and shape-infer an ONNX file, saved to `save_to` (default: in place).

    A damaged file or a fixed batch axis is a one-line QuantserveError naming `path` (the batch axis not required
    where not `batched`: optimize --unbatched); a batch axis written as -1, 0, unnamed or symbolic is named `batch`.
    A large model whose weights file lies beside `save_to` is checked without reading its weights, and comes back
    without them (graph, shapes, types).
    """
    save_to = save_to or path
    bare = _load_onnx(path, weights=False)
    if onnx_files.is_large(bare) and _weights_beside(bare, path, save_to):
        name_dynamic_batch_axes(bare)
        if batched:
            require_dynamic_batch(path, bare)
        onnx.save(bare, str(save_to))  # the graph alone: its tensors still name the weights file beside it
        return _check_large(path, save_to)
    model = _load_onnx(path)
    name_dynamic_batch_axes(model)
    return _finish(path, model, save_to, batched)


def _weights_beside(bare: onnx.ModelProto, path: Path, save_to: Path) -> bool:
    """True when `bare` (loaded without its external data) keeps its bulk in external files and `save_to` sits in
    `path`'s folder, beside them."""
    tensors = bare.graph.initializer
    inline = sum(t.ByteSize() for t in tensors if t.data_location != onnx.TensorProto.EXTERNAL)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)
    beside = Path(save_to).parent.resolve() == Path(path).parent.resolve()
    return external and inline < onnx_files.EXTERNAL_AT and beside


def refuse_empty_file(path: Path) -> None:
    """Refuse a 0-byte file by name: protobuf reads it as an empty model, which ONNX's checker then rejected as
    "The model does not have an ir_version set properly", sending a reader to the export (session 63)."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise QuantserveError(f"{path}: the file is empty (0 bytes), not an ONNX model")


def _load_onnx(path: Path, weights: bool = True) -> onnx.ModelProto:
    """The model with its weights, external ones read from beside it (any size: `optimizer.onnx_files`); with
    `weights=False` its external ones stay in their file."""
    refuse_empty_file(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends for a damaged file
        raise QuantserveError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    if weights and any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        try:
            onnx.load_external_data_for_model(model, str(Path(path).parent))
        except Exception as exc:  # a missing or short .data file
            why = onnx_files.external_weights_problem(model, Path(path).parent) or type(exc).__name__
            raise QuantserveError(f"{path}: its external weights cannot be read ({why})") from exc
    return model


def _check(path: Path, model: onnx.ModelProto | Path) -> None:
    """The ONNX checker on `model`, or on the saved file `model` (a large model: it cannot be serialized whole)."""
    try:
        onnx.checker.check_model(str(model) if isinstance(model, Path) else model)
    except onnx.checker.ValidationError as exc:
        # an op of no schema (a converter's leftover): named whole with the outputs free of it, as a load failure is
        if advice := unknown_ops_advice(str(exc), path, path):
            raise QuantserveError(f"{path}: ONNX checker rejected the model{advice}") from exc
        raise QuantserveError(f"{path}: ONNX checker rejected the model ({checker_reason(exc)})") from exc


NAME_SHOWN = 60  # characters of a tensor's or node's name a checker refusal keeps (the middle cut out)


def checker_reason(exc: Exception) -> str:
    """ONNX's checker (or shape inference) message on one line: its node as "Relu node 'name'", every quoted name of
    more than NAME_SHOWN characters cut in the middle. Its first line alone ended in "of node: " and named a tensor of
    104 characters (an INT8 silero-vad's inlined If branch), the node and op it was about on the lines cut off."""
    text = " ".join(str(exc).split())
    text = re.sub(r"of node: name: (\S*) OpType: (\S+)", lambda m: f"of {_node(m[1], m[2])}", text)
    text = re.sub(
        r" ?==> Context: Bad node spec for node\. Name: (\S*) OpType: (\S+)", lambda m: f" ({_node(m[1], m[2])})", text
    )
    return re.sub(rf"'([^']{{{NAME_SHOWN + 1},}})'", lambda m: f"'{_cut(m[1])}'", text)


def _node(name: str, op_type: str) -> str:
    return f"{op_type} node '{name}'" if name else f"a {op_type} node"


def _cut(name: str) -> str:
    """`name` in NAME_SHOWN characters: its start and end (a path's last part says most), an ellipsis between."""
    half = NAME_SHOWN // 2
    return f"{name[: half - 1]}…{name[-half:]}" if len(name) > NAME_SHOWN else name


def _finish(path: Path, model: onnx.ModelProto, save_to: Path, batched: bool = True) -> onnx.ModelProto:
    """Check, shape-infer, require a dynamic batch axis (if `batched`), save (a large model: saved first, checked
    from its file)."""
    if onnx_files.is_large(model):
        return _finish_large(path, model, save_to, batched)
    _check(path, model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except onnx.shape_inference.InferenceError as exc:
        raise QuantserveError(f"{path}: ONNX checker rejected the model ({checker_reason(exc)})") from exc
    if batched:
        require_dynamic_batch(path, model)
    onnx.save(model, str(save_to))
    return model


def _finish_large(path: Path, model: onnx.ModelProto, save_to: Path, batched: bool = True) -> onnx.ModelProto:
    """`_finish` for a model of EXTERNAL_AT or more: saved with its weights beside it, then `_check_large`."""
    if batched:
        require_dynamic_batch(path, model)
    onnx_files.save(model, save_to)
    return _check_large(path, save_to)


def _check_large(path: Path, saved: Path) -> onnx.ModelProto:
    """ONNX's checker and shape inference on the large model saved at `saved`, read from its files; the model
    without its weights (graph, shapes, types: all a caller reads; every stage reads the weights from the file)."""
    _check(path, saved)
    try:
        onnx.shape_inference.infer_shapes_path(str(saved), str(saved), strict_mode=False)
    except onnx.shape_inference.InferenceError as exc:
        raise QuantserveError(f"{path}: ONNX checker rejected the model ({checker_reason(exc)})") from exc
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


def onnx_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

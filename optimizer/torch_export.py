"""PyTorch → ONNX: a module or an exported program to an ONNX file with a dynamic batch axis.

Exporter choice (torch 2.13): an `nn.Module` goes through the TorchScript exporter (`dynamo=False`):
it writes the requested opset exactly, honours `dynamic_axes` directly and takes milliseconds, while
the dynamo exporter starts at opset 18 and its down-conversion to 17 fails on Reduce* ops. If the
TorchScript exporter fails (it is deprecated and misses some new ops), or writes a file ONNX Runtime
cannot load (PatchTST: a positional encoding's Add of mismatched shapes), the dynamo exporter is tried.
A `.pt2` program can only go through the dynamo exporter (opset ≥ 18); the opset used is recorded.

The TorchScript attempt runs with file descriptors 1 and 2 pointed at a temporary file: torch's C++
prints its failure dump ("Torch IR graph at exception: …", 959 lines for a 3-layer transformer)
straight to fd 1, past `sys.stdout`, so `optimize --json` printed no JSON document and the table came
after the dump. The first lines of whatever was printed go to the log instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from optimizer import onnx_files
from optimizer.batch_axis import BATCH
from optimizer.ort_failure import ort_reason
from optimizer.source import ModelSource
from quantserve.errors import InternalError, QuantserveError

DYNAMO_MIN_OPSET = 18
NATIVE_LINES_LOGGED = 20  # of torch's own printout around the TorchScript exporter, kept in the log

logger = logging.getLogger(__name__)


def export_torch(source: ModelSource, out_path: Path, opset: int) -> str:
    if source.kind == "exported_program":
        _export_dynamo(source, out_path, max(opset, DYNAMO_MIN_OPSET))
        return "dynamo"
    try:
        _export_torchscript(source, out_path, opset)
        _check_loads(out_path)
        return "torchscript"
    except Exception as first:  # the deprecated exporter fails on some new ops, or writes what ORT cannot load
        try:
            _export_dynamo(source, out_path, max(opset, DYNAMO_MIN_OPSET))
        except Exception as exc:
            raise QuantserveError(
                f"{source.name}: ONNX export failed (torchscript: {_reason(first)}; dynamo: {_reason(exc)}); "
                "export it yourself, as a .pt2 from torch.export with its dynamic shapes or as an .onnx file "
                "(README: MODEL)"
            ) from exc
        return "dynamo"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMARY = "## Exception summary"  # where torch.export's multi-page message says what failed


def _reason(exc: BaseException) -> str:
    """One line of an exporter's failure: torch.export's pages of advice come down to the line after its exception
    summary ("<class 'torch._dynamo.exc.UserError'>: Detected mismatch between …"), which the refusal quotes."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    if SUMMARY in lines[:-1]:
        return lines[lines.index(SUMMARY) + 1][:REASON_CHARS]
    said = lines[0] if lines else ""
    return (said if isinstance(exc, UnloadableExport) else f"{type(exc).__name__}: {said}")[:REASON_CHARS]


REASON_CHARS = 300


class UnloadableExport(Exception):
    """The TorchScript exporter wrote a file ONNX Runtime cannot load: PatchTST's positional encoding came out as an
    Add of [1, 16, 64] and [batch, 17, 64] ("Incompatible dimensions"), refused as a bad model with exit 2, while
    the dynamo exporter's file of the same module loads and matches it (max difference 5e-7)."""


def _check_loads(path: Path) -> None:
    """Raise UnloadableExport where ONNX Runtime cannot build a session from `path` (no graph optimization: only
    whether the graph resolves, its shapes included)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UnloadableExport(f"it wrote a model ONNX Runtime cannot load ({ort_reason(exc)})") from exc


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
    """The exported outputs' names: the factory's `output_names`, one per output (three names for one output were
    taken as the first in silence); else a dict's keys (the exporters flatten its values in order: a dict of two
    was counted one and served as `output` and `onnx::Relu_9`, session 41); else `output`, `output_1`, …"""
    names = source.options.get("output_names")
    keys: list[str] | None = None
    if source.kind == "exported_program":
        count = len(source.module.graph_signature.user_outputs)
    else:
        import torch

        with torch.inference_mode():
            outputs = source.module(*source.example_inputs.values())
        if isinstance(outputs, dict) and all(isinstance(value, torch.Tensor) for value in outputs.values()):
            keys = [str(key) for key in outputs]
        count = len(torch.utils._pytree.tree_leaves(outputs))
    if names:
        if len(names) != count:
            raise QuantserveError(
                f"{source.name}: {len(names)} output names {list(names)} for the model's {count} output(s)"
            )
        return list(names)
    return keys or ["output" if i == 0 else f"output_{i}" for i in range(count)]


def _export_torchscript(source: ModelSource, out_path: Path, opset: int) -> None:
    outputs = _output_names(source)
    with warnings.catch_warnings(), _native_output_logged(f"{source.name}: the TorchScript exporter"):
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated; chosen on purpose (module docstring)
        _torchscript_export(source, out_path, opset, outputs)


@contextlib.contextmanager
def _native_output_logged(what: str) -> Iterator[None]:
    """File descriptors 1 and 2 go to a temporary file while the block runs and are restored after; the first
    lines written there are logged, with the block's error (a warning where it raised). See the module docstring."""
    _flush_output()
    saved: dict[int, int] = {}
    try:
        for fd in (1, 2):
            saved[fd] = os.dup(fd)
    except OSError:  # a descriptor already closed: nothing printed there can reach a reader
        for copy in saved.values():
            os.close(copy)
        yield
        return
    error: BaseException | None = None
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            _flush_output()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            _log_printed(what, sink.read().decode("utf-8", "replace"), error)


def _flush_output() -> None:
    """Python's and C's buffered output written out, so it lands where its descriptor points now."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None, or closed
            stream.flush()
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).fflush(None)


def _log_printed(what: str, text: str, error: BaseException | None) -> None:
    lines = text.splitlines()
    if error is None and not lines:
        return
    said = [f"{what} failed ({type(error).__name__}: {error})" if error is not None else what]
    if lines:
        first = f" (the first {NATIVE_LINES_LOGGED})" if len(lines) > NATIVE_LINES_LOGGED else ""
        said.append(f"it printed {len(lines)} lines{first}:\n" + "\n".join(lines[:NATIVE_LINES_LOGGED]))
    logger.log(logging.WARNING if error is not None else logging.INFO, "%s", "; ".join(said))


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

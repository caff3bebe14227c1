"""ONNX files of any size: a model whose weights reach EXTERNAL_AT is saved with them in `<file>.data` beside it.

One ONNX protobuf holds at most 2 GiB, so a model of 2 GiB or more of weights cannot be serialized
whole: not saved as one file, not handed to ONNX Runtime as bytes, not checked or shape-inferred in
memory. Such a model is saved with external data (ONNX's own format: every tensor in one file, named
in the model) and everything that needs the whole model reads it from its path. Smaller models are
saved as one file, as before. ONNX Runtime's quantizers take `use_external_data_format` for the same.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx

from quantserve.errors import InternalError

EXTERNAL_AT = 1 << 30  # bytes of initializers from which a model is saved with external data (limit: 2 GiB)
INLINE_BELOW = 1024  # bytes: a smaller tensor (a shape, a scale) stays in the model file, readable without its data
DATA_SUFFIX = ".data"


def weight_bytes(model: onnx.ModelProto) -> int:
    """Serialized bytes of the model's initializers, loaded or not (external ones count their stored length)."""
    total = 0
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            total += next((int(e.value) for e in tensor.external_data if e.key == "length"), 0)
        else:
            total += tensor.ByteSize()
    return total


def is_large(model: onnx.ModelProto) -> bool:
    return weight_bytes(model) >= EXTERNAL_AT


def data_path(path: Path | str) -> Path:
    """Where `save` puts the weights of a large model saved at `path`."""
    path = Path(path)
    return path.with_name(path.name + DATA_SUFFIX)


def save(model: onnx.ModelProto, path: Path | str, keep_weights: bool = True) -> None:
    """Save `model` at `path`, its weights in `data_path(path)` when it is large; `model` keeps them in memory
    unless `keep_weights` is False (a caller done with it: a large model's weights are not read back)."""
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise InternalError("onnx_files.save needs the model's weights loaded (it replaces the weights file)")
    path = Path(path)
    data = data_path(path)
    data.unlink(missing_ok=True)  # an earlier save's weights, or the file is appended to
    if not is_large(model):
        onnx.save(model, str(path))
        return
    save_external(model, path, data.name)
    if keep_weights:
        onnx.load_external_data_for_model(model, str(path.parent))  # saving moved them out of `model`


def save_external(model: onnx.ModelProto, path: Path | str, location: str, threshold: int | None = None) -> None:
    """`onnx.save(model, path, save_as_external_data=True, location=location)`, its tensors of `threshold` bytes
    or more (default INLINE_BELOW) in the file `location` beside `path` — without ONNX's check that no file
    named `location` exists in the *working* folder (not beside the model): started where the user's own
    `model.onnx.data` lies, a run failed with "External data file exists in model.onnx.data"."""
    from onnx import external_data_helper

    limit = INLINE_BELOW if threshold is None else threshold
    external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True, size_threshold=limit)
    for tensor in model.graph.initializer:
        if external_data_helper.uses_external_data(tensor):
            external_data_helper.set_external_data(tensor, location)  # instead of the random name it gave
    onnx.save(model, str(path))  # writes the tensors to `location` beside `path`, then the graph


def inference_session(model: onnx.ModelProto, model_path: Path | str, options: Any) -> Any:
    """An ONNX Runtime CPU session of `model`, a variant of the model at `model_path` (outputs added, a batch
    axis freed).

    Loaded without its external data (`onnx.load(..., load_external_data=False)`), `model` is written beside
    `model_path` for the session to find those weights there; a large model held whole is written with its
    weights to a scratch folder there; either is removed once the session holds the weights. A small model is
    handed over as bytes."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    if not external and not is_large(model):
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    folder = Path(model_path).parent
    with tempfile.TemporaryDirectory(prefix=".session-", dir=folder) as scratch:
        path = (folder if external else Path(scratch)) / f"{Path(scratch).name}.onnx"
        try:
            if external:
                onnx.save(model, str(path))
            else:
                save(model, path)
            return ort.InferenceSession(str(path), options, providers=providers)
        finally:
            path.unlink(missing_ok=True)


def external_files(path: Path | str) -> dict[str, Path]:
    """The weights files the saved model at `path` names, by the name it gives them (beside it): {} for most,
    and for a file not there (its absence is reported where the model is needed)."""
    path = Path(path)
    if not path.is_file():
        return {}
    model = onnx.load(str(path), load_external_data=False)
    names = {
        entry.value
        for tensor in model.graph.initializer
        if tensor.data_location == onnx.TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return {name: path.parent / name for name in sorted(names)}


def user_graph(source: str | Path) -> onnx.ModelProto | None:
    """The user's `.onnx` file as given, read without its weights (its graph, shapes and op types), for the checks
    that refuse a model before its data is read; None where the source is no `.onnx` file or cannot be read (the
    export stage says why in one line)."""
    path = Path(source)
    if path.suffix != ".onnx" or not path.is_file():
        return None
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception:  # a damaged file: refused in one line by the export stage
        return None


def model_sha256(path: Path | str) -> str:
    """The sha256 of a saved model with its weights: of the file alone where it holds them, else of the file's hash
    and each weights file's name and hash (a large model's graph file is the same bytes for any weights)."""
    from quantserve.artifact import file_sha256

    path = Path(path)
    found = external_files(path) if path.suffix == ".onnx" else {}  # an engine plan is one file
    weights = [(name, file) for name, file in found.items() if file.is_file()]
    if not weights:
        return file_sha256(path)
    parts = [file_sha256(path), *(f"{name}:{file_sha256(file)}" for name, file in weights)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def copy(source: Path | str, target: Path | str) -> None:
    """Copy the model at `source` to `target` with its weights: in the same folder the weights file is shared
    (the model names it), elsewhere it is written again beside `target` (`save`)."""
    source, target = Path(source), Path(target)
    if not external_files(source) or source.parent.resolve() == target.parent.resolve():
        shutil.copyfile(source, target)
        return
    save(onnx.load(str(source)), target)


def external_weights_problem(model: onnx.ModelProto, folder: Path) -> str:
    """Which external weights file is missing or too short for the tensors it should hold, or "" (the error is
    another). ONNX's own error (`ValidationError`) named neither: a published ResNet's 45 MB `.onnx.data` left behind
    read as an unreadable model (session 30)."""
    ends: dict[str, int] = {}
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        end = int(info.get("offset") or 0) + int(info.get("length") or 0)
        ends[info.get("location", "")] = max(ends.get(info.get("location", ""), 0), end)
    for location, end in ends.items():
        file = folder / location
        if not file.is_file():
            return f"{location!r} is not beside it"
        if file.stat().st_size < end:
            return f"{location!r} holds {file.stat().st_size} bytes, its tensors need {end}"
    return ""

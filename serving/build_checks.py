"""Checks that a build folder's model file is the one its manifest describes, before a deploy writes anything.

The deploy writes the Triton config from manifest.json: a manifest edited by hand (an input 16×16 where the
model takes 8×8, a renamed input) deployed with exit 0 and every request then failed; a `files.model`
naming manifest.json or a file outside the build raised a protobuf traceback or copied that file in; an FP32
model.onnx copied into an INT8 build was served labelled int8. Each is now refused in one line.

One is warned, not refused (`int8_isa_warning`): an INT8 build with 8-bit weights verified on a CPU whose u8 × s8
kernels do not saturate (VNNI, ARM), deployed where they do (x86 AVX2 without VNNI), may drift beyond what its
verification measured (`optimizer.cpu_isa`); the build's stage record names the CPU it was verified on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from optimizer.cpu_isa import BUILD_CPU, INT8_FLAGS, SATURATING_WEIGHTS, u8s8_saturates
from quantserve.artifact import MANIFEST_NAME, MODEL_SHA256, Artifact, Manifest, TensorSpec, file_sha256
from quantserve.errors import QuantserveError
from serving.machine import ISA_FLAGS

# Targets whose model file is not ONNX (a TensorRT plan is checked where it is built).
NOT_ONNX_TARGETS = ("tensorrt",)


def model_file_in(build_dir: Path, model_file: str) -> Path:
    """`build_dir/model_file`, refused unless `model_file` is a plain relative path inside the build folder."""
    manifest_path = build_dir / MANIFEST_NAME
    if not isinstance(model_file, str) or Path(model_file).is_absolute() or ".." in PurePosixPath(model_file).parts:
        raise QuantserveError(
            f"{manifest_path}: files.model '{model_file}' is not a path inside the build folder "
            "(absolute or with '..'); run 'quantserve optimize' again"
        )
    if model_file == MANIFEST_NAME:
        raise QuantserveError(f"{manifest_path}: files.model names the manifest itself, not a model file")
    return build_dir / model_file


def expects_onnx(manifest: Manifest) -> bool:
    return manifest.target not in NOT_ONNX_TARGETS


def is_onnx(model_path: Path) -> bool:
    """ONNX-based targets (embedded, onnxruntime) deploy an .onnx file; a TensorRT plan cannot be checked here."""
    return Path(model_path).suffix == ".onnx"


def check_onnx_file(model_path: Path, require: bool = False) -> None:
    """Refuse an .onnx model (any file if `require`) that does not parse or fails ONNX's checker, before anything
    is written.

    Checked by path, so a large model's weights file beside it is found and never read whole.
    """
    if not (require or is_onnx(model_path)) or not Path(model_path).is_file():
        return  # a missing file is named below, with every other file the deploy needs
    import onnx

    from optimizer.onnx_input import refuse_empty_file

    refuse_empty_file(model_path)
    try:
        onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends for a damaged file
        raise QuantserveError(f"{model_path}: not a readable ONNX model ({type(exc).__name__})") from exc
    try:
        onnx.checker.check_model(str(model_path))
    except (onnx.checker.ValidationError, OSError) as exc:
        raise QuantserveError(f"{model_path}: ONNX checker rejected the model ({_first_line(exc)})") from exc


def check_build_model(artifact: Artifact) -> None:
    """Refuse a model file that is not the one the manifest describes: not ONNX where the target deploys ONNX,
    other inputs or outputs than the manifest's (the config is written from the manifest), other bytes than the
    build recorded. A missing file is named later, with every other file the deploy needs."""
    path = Path(artifact.path)
    if not expects_onnx(artifact.manifest) or not path.is_file():
        return
    if not is_onnx(path):
        check_onnx_file(path, require=True)
    check_interface(path, artifact.manifest)
    check_model_hash(path, artifact.manifest)


def check_cpu_session(model_path: Path) -> None:
    """Refuse a model ONNX Runtime cannot make a CPU session of (an op without a kernel, mismatched types):
    Triton would fail to load it the same way, after the deploy."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # loading is the check
    options.intra_op_num_threads = 1
    try:
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types, one per status code
        reason = _first_line(exc).split(" failed:", 1)[-1].strip()
        raise QuantserveError(f"{model_path}: ONNX Runtime cannot load the model ({reason})") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()


def check_model_hash(model_path: Path, manifest: Manifest) -> None:
    """Refuse a model file whose bytes are not those the build recorded (an FP32 file copied into an INT8 build
    was served labelled int8). Builds from before the hash was recorded are not checked."""
    recorded = manifest.extra.get(MODEL_SHA256)
    if not isinstance(recorded, str) or not model_path.is_file():
        return
    if file_sha256(model_path) != recorded:
        raise QuantserveError(
            f"{model_path}: not the model file this build wrote (its sha256 differs from the one in "
            f"{model_path.parent / MANIFEST_NAME}); run 'quantserve optimize' again"
        )


def check_interface(model_path: Path, manifest: Manifest) -> None:
    """Refuse a model file whose graph inputs/outputs (names, element types, ranks, fixed dims) are not the
    manifest's, naming the first difference. The graph only: external weights are never read."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    model_inputs = {v.name: v for v in graph.input if v.name not in weights}
    model_outputs = {v.name: v for v in graph.output}
    problem = _first_difference("input", manifest.inputs, model_inputs) or _first_difference(
        "output", manifest.outputs, model_outputs
    )
    extra = [name for name in model_inputs if name not in {t.name for t in manifest.inputs}]
    if not problem and extra:
        problem = f"input '{extra[0]}' of the model file is not in the manifest"
    if problem:
        raise QuantserveError(
            f"{model_path}: does not match {model_path.parent / MANIFEST_NAME}: {problem}; "
            "run 'quantserve optimize' again"
        )


def _first_difference(role: str, specs: list[TensorSpec], values: dict[str, Any]) -> str | None:
    for spec in specs:
        value = values.get(spec.name)
        if value is None:
            return f"{role} '{spec.name}' is not an {role} of the model file (its {role}s: {', '.join(values)})"
        problem = _tensor_difference(spec, value)
        if problem:
            return f"{role} '{spec.name}' {problem}"
    return None


def _tensor_difference(spec: TensorSpec, value: Any) -> str | None:
    """How one manifest tensor differs from the model's value of that name, or None."""
    if value.type.WhichOneof("value") != "tensor_type":
        return "is not a tensor in the model file"
    tensor_type = value.type.tensor_type
    dtype = onnx_dtype_name(tensor_type.elem_type)
    if dtype is not None and dtype != spec.dtype:
        return f"is {spec.dtype} in the manifest, {dtype} in the model file"
    if not tensor_type.HasField("shape"):
        return None  # rank unknown to the graph: nothing to compare
    dims: list[int | str] = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim
    ]
    shapes = f"{_shape(spec.shape)} in the manifest, {_shape(dims)} in the model file"
    if len(dims) != len(spec.shape):
        return f"rank differs: {shapes}"
    for axis, (ours, theirs) in enumerate(zip(spec.shape, dims, strict=True)):
        if isinstance(ours, int) and isinstance(theirs, int) and ours != theirs:
            return f"dim {axis} differs: {shapes}"
    return None


def onnx_dtype_name(elem_type: int) -> str | None:
    """The numpy dtype name of an ONNX element type ("float32", "object" for strings), None where numpy has none."""
    import numpy as np
    import onnx

    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name)
    except (KeyError, TypeError, ValueError):
        return None  # a type numpy has no name for: not compared


def _shape(dims: Any) -> str:
    return f"[{', '.join(map(str, dims))}]"


def int8_isa_warning(manifest: Manifest, name: str, flags_here: Collection[str], cpu_here: str) -> str:
    """One line where an INT8 build with 8-bit weights, verified on a CPU whose u8 × s8 kernels do not saturate, is
    deployed on this CPU (`flags_here`, `cpu_here`) whose kernels do; "" otherwise, and for builds that recorded no CPU
    (older than session 60), FP32 builds and 7-bit weights. `name`: the model the deploy serves it as."""
    built = _verified_on(manifest)
    if built is None or not u8s8_saturates(flags_here):
        return ""
    here = f"{cpu_here} ({_isa_names(flags_here)})"
    return (
        f"INT8 build with 8-bit weights verified on {built.get('model', 'another CPU')} "
        f"({_isa_names(built.get('flags') or [])}), whose u8×s8 INT8 kernels do not saturate; this machine's {here} "
        "runs them without VNNI, where 8-bit weights saturate, so served drift may exceed what verification measured "
        "(a 12-step LSTM's output: relative error 0.12 with 8-bit weights, 0.015 with 7-bit): "
        f"`quantserve evaluate --models {name} --reference FP32_MODEL` here, or rebuild here with `quantserve "
        "optimize` (its search then picks 7-bit weights where they are needed)"
    )


def _verified_on(manifest: Manifest) -> Mapping[str, Any] | None:
    """The recorded CPU of an INT8 build with saturating 8-bit weights verified where they do not saturate, or None."""
    if manifest.precision != "int8":
        return None
    for stage in manifest.stages:
        built = stage.get(BUILD_CPU) if isinstance(stage, Mapping) else None
        if isinstance(built, Mapping) and stage.get(SATURATING_WEIGHTS) is True:
            return built if built.get("u8s8_saturates") is False else None
    return None


def _isa_names(flags: Collection[str]) -> str:
    """E.g. "AVX2 AVX512-VNNI" (serving.machine's names), "AVX2, no VNNI", or "no AVX2/VNNI: ARM or older x86"."""
    names = [ISA_FLAGS.get(flag, flag) for flag in sorted(INT8_FLAGS & set(flags))]
    if not names:
        return "no AVX2/VNNI: ARM or older x86"
    return " ".join(names) if len(names) > 1 else f"{names[0]}, no VNNI"

"""Calibrate stage: explicit INT8 quantization (Q/DQ ONNX) with ONNX Runtime's `quantize_static`.

Settings measured on this x86 CPU (AVX512-VNNI): unsigned 8-bit activations with signed 8-bit
per-channel weights (U8S8) map onto the VNNI `vpdpbusd` kernels, so ORT fuses the Q/DQ pairs into
QLinearConv/QGemm; S8S8 ran about as slow as FP32. `reduce_range` stays off (VNNI has no
overflow issue). The result is standard Q/DQ ONNX, so TensorRT builds the same file strongly typed.
Results are cached by a hash of model, data and settings so a rerun skips calibration.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader

from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

METHODS = ("minmax", "entropy", "percentile")
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


@dataclass(frozen=True)
class CalibrationSettings:
    """Everything besides model and data that changes the quantized model (and so the cache key)."""

    method: str = "minmax"
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = False
    batch_size: int = 32
    nodes_to_exclude: tuple[str, ...] = ()
    op_types_to_quantize: tuple[str, ...] = ()
    extra_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise QuantserveError(f"unknown calibration method '{self.method}'; choose one of: {', '.join(METHODS)}")


class TensorDataReader(CalibrationDataReader):
    """ORT's CalibrationDataReader over TensorData: `get_next()` yields equal-sized feeds, then None.

    ORT's histogram calibrators (entropy, percentile) stack every batch's activations and fail on
    a ragged last batch, so a remainder smaller than `batch_size` is left out once a full batch exists.
    """

    def __init__(self, data: TensorData, batch_size: int) -> None:
        self.used = used_samples(len(data), batch_size)
        self._batches: Iterator[dict[str, np.ndarray]] = data.take(0, self.used).batches(batch_size)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def used_samples(count: int, batch_size: int) -> int:
    """How many samples calibration reads: whole batches, or all of them when fewer than one batch."""
    return count if count <= batch_size else count - count % batch_size


def cache_dir() -> Path:
    """`$QUANTSERVE_CACHE_DIR`, else ~/.cache/quantserve/calib."""
    env = os.environ.get("QUANTSERVE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "quantserve" / "calib"


def cache_key(model_path: Path, data: TensorData, settings: CalibrationSettings) -> str:
    """sha256 over the model bytes, every calibration array (name, dtype, shape, bytes) and the settings."""
    import onnxruntime

    digest = hashlib.sha256(Path(model_path).read_bytes())
    for name in sorted(data.arrays):
        array = np.ascontiguousarray(data.arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    digest.update(onnxruntime.__version__.encode())
    return digest.hexdigest()


class CalibrateInt8:
    """Quantize an FP32 ONNX artifact to Q/DQ INT8 from calibration data, through the cache."""

    def __init__(self, data: TensorData, settings: CalibrationSettings | None = None) -> None:
        if len(data.arrays) == 0 or len(data) == 0:
            raise QuantserveError("calibration set is empty; give at least one sample per input")
        self.data = data
        self.settings = settings or CalibrationSettings()

    def __call__(self, artifact: Artifact, out_path: Path) -> Artifact:
        key = cache_key(artifact.path, self.data, self.settings)
        cached = cache_dir() / f"{key}.onnx"
        status = "hit" if cached.is_file() else "miss"
        if status == "miss":
            self._quantize_into_cache(artifact.path, cached)
        shutil.copyfile(cached, out_path)
        model = onnx.load(str(out_path))
        record = {
            "stage": "calibrate",
            "tool": "onnxruntime.quantization.quantize_static",
            "format": "QDQ",
            **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()},
            "samples": used_samples(len(self.data), self.settings.batch_size),
            "cache": status,
            "cache_key": key,
            "quantize_nodes": _count(model, "QuantizeLinear"),
            "dequantize_nodes": _count(model, "DequantizeLinear"),
        }
        return artifact.with_stage(out_path, record, precision="int8")

    def _quantize_into_cache(self, model_path: Path, cached: Path) -> None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent, prefix=".calib-") as tmp:
            prepared = prepare_for_quantization(model_path, Path(tmp) / "prepared.onnx")
            result = Path(tmp) / "int8.onnx"
            self._quantize(prepared, result)
            os.replace(result, cached)  # atomic: a concurrent reader sees no half-written cache entry

    def _quantize(self, model_path: Path, out_path: Path) -> None:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        s = self.settings
        methods = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # ORT prints calibration progress
                quantize_static(
                    str(model_path),
                    str(out_path),
                    TensorDataReader(self.data, s.batch_size),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(s.op_types_to_quantize) or None,
                    per_channel=s.per_channel,
                    reduce_range=s.reduce_range,
                    activation_type=getattr(QuantType, s.activation_type),
                    weight_type=getattr(QuantType, s.weight_type),
                    nodes_to_exclude=list(s.nodes_to_exclude) or None,
                    calibrate_method=methods[s.method],
                    extra_options=dict(s.extra_options) or None,
                )
        except Exception as exc:  # ORT raises plain exceptions for graphs it cannot calibrate
            raise QuantserveError(f"{model_path.name}: INT8 calibration failed ({type(exc).__name__}: {exc})") from exc


def calibrate_int8(
    artifact: Artifact,
    data: TensorData,
    out_path: Path,
    method: str = "minmax",
    nodes_to_exclude: Sequence[str] = (),
    op_types_to_quantize: Sequence[str] = (),
) -> Artifact:
    """Functional shorthand: quantize `artifact` to Q/DQ INT8 at `out_path` with the default fast settings."""
    settings = CalibrationSettings(
        method=method, nodes_to_exclude=tuple(nodes_to_exclude), op_types_to_quantize=tuple(op_types_to_quantize)
    )
    return CalibrateInt8(data, settings)(artifact, Path(out_path))


def prepare_for_quantization(model_path: Path, out_path: Path) -> Path:
    """Give every weight/bias its own initializer, then run ORT's pre-processing (shape inference).

    Exporters deduplicate equal initializers (e.g. zero biases), and a bias shared by several Convs
    cannot take each Conv's own scale: ORT then leaves those Convs in FP32 between Q/DQ pairs.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(model_path))
    unshare_weights(model)
    onnx.save(model, str(out_path))
    try:
        # ORT's symbolic shape inference drops 'sym_shape_infer_temp.onnx' (+ .data) into the working
        # directory when it gives up: run it from a scratch folder so nothing lands in the user's.
        with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
            quant_pre_process(str(out_path.resolve()), str(out_path.resolve()), skip_optimization=True)
    except Exception:  # symbolic shape inference fails on some graphs; quantize_static copes without it
        onnx.save(model, str(out_path))
    return out_path


def unshare_weights(model: onnx.ModelProto) -> int:
    """Copy initializers that several weighted nodes read (as weight or bias); return how many copies."""
    initializers = {init.name: init for init in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input if name in initializers)
    copies = 0
    for node in model.graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        for index in range(1, len(node.input)):
            name = node.input[index]
            if name in initializers and uses[name] > 1:
                uses[name] -= 1
                clone = onnx.TensorProto()
                clone.CopyFrom(initializers[name])
                clone.name = f"{name}__{node.name or copies}_{index}"
                model.graph.initializer.append(clone)
                node.input[index] = clone.name
                copies += 1
    return copies


def _count(model: onnx.ModelProto, op_type: str) -> int:
    return sum(1 for node in model.graph.node if node.op_type == op_type)

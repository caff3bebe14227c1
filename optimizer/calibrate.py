"""Calibrate stage: explicit INT8 quantization (Q/DQ ONNX) with ONNX Runtime's calibrators and quantizer.

Settings measured on this x86 CPU (AVX512-VNNI): unsigned 8-bit activations with signed 8-bit
per-channel weights (U8S8) map onto the VNNI `vpdpbusd` kernels, so ORT fuses the Q/DQ pairs into
QLinearConv/QGemm; S8S8 ran about as slow as FP32. `reduce_range` (7-bit weights) is off by default: VNNI
accumulates u8 × s8 in 32 bits; without VNNI (AVX2's 16-bit pairs saturate) the INT8 search tries it as a
candidate of its own (`optimizer.int8_fallbacks`). The result is standard Q/DQ ONNX, so TensorRT builds the same
file strongly typed.

Ranges come from ORT's calibrators fed in chunks (optimizer.tensor_ranges: memory stays flat as the
calibration set grows), with the histogram sizes set here: `quantize_static` never passes its
`CalibNumBins` on, and entropy at ORT's default 128 bins has one candidate threshold (= minmax).
`quantize_static` then builds the Q/DQ model from those ranges (its calibration-cache input).
Ranges and results are cached by a hash of model, data and settings; a result enters the cache
only after ONNX's checker, an ORT session and one batch accept it, and a bad entry is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import calib_cache, onnx_files
from optimizer.onnx_input import checker_reason
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.qdq_graph import finish_qdq
from optimizer.quant_prepare import prepare_for_quantization
from optimizer.scratch import owned_tempdir, remove_stale_dirs
from optimizer.tensor_ranges import (
    CALIBRATOR_OPTIONS,
    ProgressCallback,
    activation_bytes_per_sample,
    collect_ranges,
    rows_per_chunk,
)
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

METHODS = ("minmax", "entropy", "percentile")
MEMORY_BUDGET_BYTES = 512 << 20  # activations held per calibration chunk; the process peaks at ~2-3x this
VALIDATION_ROWS = 8
# quantize_static's extra options that configure the calibrator, as create_calibrator names them
CALIBRATOR_EXTRA_OPTIONS = {
    "CalibTensorRangeSymmetric": "symmetric",
    "CalibMovingAverage": "moving_average",
    "CalibMovingAverageConstant": "averaging_constant",
}
HISTOGRAM_KNOBS = ("num_bins", "num_quantized_bins", "percentile")
# changes the cache key when what a result holds changes: entries quantized before are not served
RESULT_FORMAT = "fp32-outputs-2"  # finish_qdq: FP32 nodes and graph outputs read FP32, not a Q/DQ pair


@dataclass(frozen=True)
class CalibrationSettings:
    """Everything besides model and data that changes the quantized model (and so the cache key).

    `num_bins` sizes the entropy and percentile histograms, `num_quantized_bins` is entropy's target
    (the threshold search tries thresholds from 128 to `num_bins` bins wide), `percentile` is where
    the percentile method cuts |x|.
    """

    method: str = "minmax"
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = False
    batch_size: int = 32
    nodes_to_exclude: tuple[str, ...] = ()
    op_types_to_quantize: tuple[str, ...] = ()  # calibrated and quantized (empty: every op type ORT quantizes)
    quantize_op_types: tuple[str, ...] = ()  # quantized from those ranges, a subset (empty: op_types_to_quantize)
    extra_options: dict[str, Any] = field(default_factory=dict)
    num_bins: int = 2048
    num_quantized_bins: int = 128
    percentile: float = 99.99

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise QuantserveError(f"unknown calibration method '{self.method}'; choose one of: {', '.join(METHODS)}")
        if self.batch_size < 1:
            raise QuantserveError(f"calibration batch size {self.batch_size} must be at least 1")
        if not 2 <= self.num_quantized_bins <= self.num_bins:
            raise QuantserveError(
                f"calibration histogram: {self.num_quantized_bins} quantized bins must be between 2 and "
                f"the {self.num_bins} histogram bins"
            )
        if not 0 < self.percentile <= 100:
            raise QuantserveError(f"calibration percentile {self.percentile} must be in (0, 100]")

    def calibrator_options(self) -> dict[str, Any]:
        """create_calibrator's extra options for this method (histogram sizes, symmetric, moving average)."""
        options = {
            "num_bins": self.num_bins,
            "num_quantized_bins": self.num_quantized_bins,
            "percentile": self.percentile,
        }
        if self.method == "percentile":
            # Two-sided cut on x, not ORT's default |x| (symmetric=True): a signed tensor keeps its own
            # low and high ends for the asymmetric UINT8 range, and chunks bin 5x faster (uniform bins).
            options["symmetric"] = False
        for ort_key, name in CALIBRATOR_EXTRA_OPTIONS.items():
            if ort_key in self.extra_options:
                options[name] = self.extra_options[ort_key]
        return {k: v for k, v in options.items() if k in CALIBRATOR_OPTIONS[self.method]}

    def record(self) -> dict[str, Any]:
        """The settings for the manifest; histogram knobs only where the method uses them."""
        used = CALIBRATOR_OPTIONS[self.method]
        items = asdict(self).items()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in items if k not in HISTOGRAM_KNOBS or k in used}


def cache_dir() -> Path:
    """`$QUANTSERVE_CACHE_DIR`, else ~/.cache/quantserve/calib."""
    env = os.environ.get("QUANTSERVE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "quantserve" / "calib"


def _digest(model_path: Path, data: TensorData) -> Any:
    """sha256 over the model bytes (its external weights file too), every calibration array (name, dtype, shape,
    bytes) and ORT's version."""
    import onnxruntime

    digest = hashlib.sha256()
    for path in [Path(model_path), *onnx_files.external_files(model_path).values()]:
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    for name in sorted(data.arrays):
        array = np.ascontiguousarray(data.arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(onnxruntime.__version__.encode())
    return digest


def cache_key(model_path: Path, data: TensorData, settings: CalibrationSettings) -> str:
    """Key of the quantized model: model, data, every setting and ORT's version."""
    digest = _digest(model_path, data)
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    digest.update(RESULT_FORMAT.encode())
    return digest.hexdigest()


def ranges_key(digest: Any, settings: CalibrationSettings) -> str:
    """Key of the tensor ranges: what the calibrator sees (method, its options, op types), not the exclusions."""
    digest = digest.copy()
    what = [settings.method, settings.calibrator_options(), sorted(settings.op_types_to_quantize)]
    digest.update(json.dumps(what, sort_keys=True).encode())
    return digest.hexdigest()


class CalibrateInt8:
    """Quantize an FP32 ONNX artifact to Q/DQ INT8 from calibration data, through the cache.

    `memory_budget_bytes` bounds the activations held per calibration chunk (it does not change the result).
    `on_progress(done, total, what)` hears of every calibration chunk (nothing on a cache hit).
    """

    def __init__(
        self,
        data: TensorData,
        settings: CalibrationSettings | None = None,
        memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if len(data.arrays) == 0 or len(data) == 0:
            raise QuantserveError("calibration set is empty; give at least one sample per input")
        self.data = data
        self.settings = settings or CalibrationSettings()
        self.memory_budget_bytes = memory_budget_bytes
        self.on_progress = on_progress

    def __call__(self, artifact: Artifact, out_path: Path) -> Artifact:
        folder = cache_dir()
        remove_stale_dirs(folder, (".calib-",))
        digest = _digest(artifact.path, self.data)
        key = cache_key(artifact.path, self.data, self.settings)
        entry = folder / f"{key}.onnx"
        facts = self._from_cache(entry)
        status = "hit" if facts is not None else "miss"
        if facts is None:
            facts = self._quantize_into_cache(artifact.path, entry, ranges_key(digest, self.settings))
        calib_cache.touch(entry)  # used now: the last the size cap removes
        shutil.copyfile(entry, out_path)
        calib_cache.prune(folder, calib_cache.limit_bytes())
        model = onnx.load(str(out_path))
        record = {
            "stage": "calibrate",
            "tool": "onnxruntime.quantization: create_calibrator (chunked) + quantize_static",
            "format": "QDQ",
            **self.settings.record(),
            **facts,
            "cache": status,
            "cache_key": key,
            "quantize_nodes": _count(model, "QuantizeLinear"),
            "dequantize_nodes": _count(model, "DequantizeLinear"),
        }
        return artifact.with_stage(out_path, record, precision="int8")

    def _validation_feeds(self) -> dict[str, np.ndarray]:
        return next(self.data.batches(VALIDATION_ROWS))

    def _from_cache(self, entry: Path) -> dict[str, Any] | None:
        """The facts of a cached result that still validates; a bad or incomplete entry is removed."""
        facts_path = entry.with_suffix(".json")
        if not entry.is_file():
            return None
        try:
            facts = json.loads(facts_path.read_text())
            validate_int8(entry, self._validation_feeds())
        except (OSError, ValueError, QuantserveError):
            entry.unlink(missing_ok=True)
            facts_path.unlink(missing_ok=True)
            return None
        return dict(facts)

    def _quantize_into_cache(self, model_path: Path, entry: Path, ranges_id: str) -> dict[str, Any]:
        """Calibrate (or reuse cached ranges), quantize, validate; only a valid result enters the cache."""
        with owned_tempdir(entry.parent, ".calib-") as tmp:
            prepared = tmp / "prepared.onnx"
            shape_preprocessing = prepare_for_quantization(model_path, prepared)
            ranges_file, facts = self._ranges(prepared, entry.parent / f"{ranges_id}.ranges.json", tmp)
            facts = {**facts, "shape_preprocessing": shape_preprocessing}
            result = tmp / "int8.onnx"
            self._quantize(prepared, ranges_file, result)
            finish_qdq(result, model_path, self.settings.nodes_to_exclude)
            try:
                validate_int8(result, self._validation_feeds())
            except QuantserveError as exc:
                raise QuantserveError(f"{model_path.name}: {exc}; nothing was cached") from exc
            (tmp / "facts.json").write_text(json.dumps(facts))
            os.replace(tmp / "facts.json", entry.with_suffix(".json"))
            os.replace(result, entry)  # atomic, and last: an entry without its facts is never read
        return facts

    def _ranges(self, prepared: Path, cached: Path, tmp: Path) -> tuple[Path, dict[str, Any]]:
        """ORT's calibration-cache file of tensor ranges for `prepared`, from the cache or calibrated now."""
        from onnxruntime.quantization.calibrate import (
            CalibrationCacheEncoder,
            TensorsData,
            save_tensors_data,
        )

        ranges_file = tmp / "ranges.json"
        try:
            stored = json.loads(cached.read_text())
            save_tensors_data(TensorsData.from_dict(stored["ranges"]), ranges_file)
            calib_cache.touch(cached)
            return ranges_file, {**stored["facts"], "ranges_cache": "hit"}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none yet, or unreadable: calibrate
        ranges, facts = self._calibrate(prepared, tmp)
        save_tensors_data(ranges, ranges_file)
        (tmp / "ranges-entry.json").write_text(
            json.dumps({"facts": facts, "ranges": ranges}, cls=CalibrationCacheEncoder)
        )
        os.replace(tmp / "ranges-entry.json", cached)
        return ranges_file, {**facts, "ranges_cache": "miss"}

    def _calibrate(self, prepared: Path, tmp: Path) -> tuple[Any, dict[str, Any]]:
        s = self.settings
        sample_bytes = activation_bytes_per_sample(prepared, self.data)
        rows = rows_per_chunk(sample_bytes, self.memory_budget_bytes, s.batch_size)
        started = time.monotonic()
        try:
            ranges, calibrator = collect_ranges(
                prepared,
                self.data,
                s.method,
                s.op_types_to_quantize,
                s.calibrator_options(),
                rows,
                tmp,
                self.on_progress,
            )
        except Exception as exc:  # ORT raises plain exceptions for graphs it cannot calibrate
            raise QuantserveError(f"{prepared.name}: INT8 calibration failed ({type(exc).__name__}: {exc})") from exc
        facts = {
            "calibrator": calibrator,
            "samples": len(self.data),
            "rows_per_chunk": rows,
            "chunks": -(-len(self.data) // rows),
            "activation_mb_per_sample": round(sample_bytes / 2**20, 3),
            "calibration_s": round(time.monotonic() - started, 2),  # done once: the next build reuses the ranges
        }
        return ranges, facts

    def _quantize(self, model_path: Path, ranges_file: Path, out_path: Path) -> None:
        """ORT's quantize_static with the ranges given as its calibration cache (no calibration inside)."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        s = self.settings
        methods = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(
                    str(model_path),
                    str(out_path),
                    None,
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(s.quantize_op_types or s.op_types_to_quantize) or None,
                    per_channel=s.per_channel,
                    reduce_range=s.reduce_range,
                    activation_type=getattr(QuantType, s.activation_type),
                    weight_type=getattr(QuantType, s.weight_type),
                    nodes_to_exclude=list(s.nodes_to_exclude) or None,
                    calibrate_method=methods[s.method],
                    extra_options=dict(s.extra_options) or None,
                    calibration_cache_path=str(ranges_file),
                )
        except Exception as exc:  # ORT raises plain exceptions for graphs it cannot quantize
            raise QuantserveError(f"{model_path.name}: INT8 quantization failed ({type(exc).__name__}: {exc})") from exc


def validate_int8(path: Path, feeds: dict[str, np.ndarray]) -> None:
    """Raise a QuantserveError unless ONNX's checker, an ORT session and one batch all accept the model."""
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise QuantserveError(f"the INT8 model fails ONNX's checker ({checker_reason(exc)})") from exc
    try:
        with OnnxRuntimeRunner(path) as runner:
            runner.infer(feeds)
    except Exception as exc:  # ORT's own Fail/InvalidGraph/RuntimeException types
        raise QuantserveError(f"the INT8 model fails in ONNX Runtime ({str(exc).splitlines()[0]})") from exc


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


def _count(model: onnx.ModelProto, op_type: str) -> int:
    return sum(1 for node in model.graph.node if node.op_type == op_type)

"""Activation ranges for INT8 from ONNX Runtime's own calibrators, fed in chunks so memory stays flat.

`quantize_static` hands every batch to one `collect_data` call, and ORT's calibrators keep every
calibrated tensor of every sample until that call ends (13 GB for 24 MB of OCR input). Here the
same calibrators (`create_calibrator`) get one chunk per `collect_data` call, as ORT 1.32's code
allows: `MinMaxCalibrater.collect_data` folds each call into `calibrate_tensors_range` (min of mins,
max of maxes) and drops the chunk; the histogram calibrators keep one `HistogramCollector` across
calls and add each chunk's histogram to it. The chunk holds as many samples as a memory budget
allows, from the activation sizes shape inference gives for one sample.

A histogram's bin width is fixed by the first chunk it sees; a later chunk with a wider range adds
bins of that width, without bound. So the histogram methods first take the min/max of the whole set
(the cheap MinMax calibrator, in chunks too) and start every histogram on that range: the chunked
entropy and percentile histograms then equal ORT's one-shot ones.

Percentile, read from ORT 1.32: with `symmetric=True` (ORT's default) the histogram is of |x|, the
cut is one-sided on |x|, and the range is (-t, t) clipped to the observed (min, max). An unsigned
activation (ReLU output, min 0) gets (0, t), as wanted; a signed one gets the same t on both sides,
so a tail on one side widens the other. Its merge also bins by explicit edges (np.histogram's slow
path, 5x slower here). quantserve asks for `symmetric=False`: a histogram of x over (-max|x|, max|x|),
(100 - p) / 2 % cut at each end, clipped to (min, max); an unsigned activation still gets (0, t), on
half the bins. Seeded |x| histograms (when symmetric is asked for) start at 0, not at the smallest |x|.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.calibrate import HistogramCollector, entropy
from onnxruntime.quantization.quant_utils import smooth_distribution

from optimizer import onnx_files
from quantserve.data import TensorData

# Options each ORT calibrator takes in create_calibrator(extra_options=…), by method.
CALIBRATOR_OPTIONS = {
    "minmax": ("symmetric", "moving_average", "averaging_constant"),
    "entropy": ("symmetric", "num_bins", "num_quantized_bins"),
    "percentile": ("symmetric", "num_bins", "percentile"),
}
FLOAT_TYPES: dict[int, int] = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.DOUBLE: 8}
UNKNOWN_SAMPLE_BYTES = 64 << 20  # per sample, when shape inference knows no activation size at all
# on_progress(done, total, what): called after each unit of long work (here: each calibration chunk)
ProgressCallback = Callable[[int, int, str], None]


class OneBatchReader(CalibrationDataReader):
    """ORT's CalibrationDataReader over a single feed: one `get_next()` returns it, the next None."""

    def __init__(self, feeds: dict[str, np.ndarray]) -> None:
        self._feeds: dict[str, np.ndarray] | None = feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        feeds, self._feeds = self._feeds, None
        return feeds


def activation_bytes_per_sample(model_path: Path, data: TensorData) -> int:
    """Bytes of all float tensors (inputs and intermediates) one sample produces, from shape inference.

    Inputs are fixed to the data's own shape (batch 1) so sequence and image axes resolve; a tensor
    whose size stays unknown counts as the largest known one.
    """
    model = onnx.load(str(model_path), load_external_data=False)
    for value in model.graph.input:
        if value.name in data.arrays:
            _fix_shape(value, (1, *data.arrays[value.name].shape[1:]))
    del model.graph.value_info[:]
    with contextlib.suppress(Exception):  # inference gives up on some graphs: every size stays unknown
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    initializers = {i.name for i in model.graph.initializer}
    values = [
        v for v in [*model.graph.input, *model.graph.value_info, *model.graph.output] if v.name not in initializers
    ]
    sizes = [_tensor_bytes(v) for v in values if v.type.tensor_type.elem_type in FLOAT_TYPES]
    known = [s for s in sizes if s is not None]
    stand_in = max(known, default=UNKNOWN_SAMPLE_BYTES)
    return sum(known) + stand_in * (len(sizes) - len(known))


def _fix_shape(value: onnx.ValueInfoProto, shape: tuple[int, ...]) -> None:
    dims = value.type.tensor_type.shape.dim
    del dims[:]
    for size in shape:
        dims.add().dim_value = int(size)


def _tensor_bytes(value: onnx.ValueInfoProto) -> int | None:
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor_type.shape.dim]
    if any(d <= 0 for d in dims):
        return None
    return int(np.prod(dims, dtype=np.int64)) * FLOAT_TYPES[tensor_type.elem_type]


def rows_per_chunk(sample_bytes: int, budget_bytes: int, most: int) -> int:
    """Samples per chunk: as many as fit `budget_bytes` of activations, at least 1, at most `most`."""
    return max(1, min(most, budget_bytes // max(1, sample_bytes)))


def chunks(data: TensorData, rows: int) -> Iterator[dict[str, np.ndarray]]:
    """The data as feeds of `rows` samples (the last may be smaller: each chunk is its own collect call)."""
    return data.batches(rows)


def collect_ranges(
    model_path: Path,
    data: TensorData,
    method: str,
    op_types: Sequence[str],
    options: dict[str, Any],
    rows: int,
    work_dir: Path,
    on_progress: ProgressCallback | None = None,
) -> tuple[Any, dict[str, Any]]:
    """ORT TensorsData (lowest/highest per tensor) for `method`, collected chunk by chunk; and what was used.

    `options` are create_calibrator's extra options for the method (see CALIBRATOR_OPTIONS).
    `on_progress(done, total, what)` hears of every chunk fed, in order; the histogram methods make
    two passes over the data (min/max first), so their total is twice the chunk count.
    """
    passes = ["min/max ranges"] if method == "minmax" else ["min/max ranges", f"{method} histograms"]
    rows = 1 if data.unbatched else rows  # an --unbatched model takes one request a run: the chunks counted so
    counter = ChunkCounter(-(-len(data) // rows) * len(passes), on_progress)
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram collector prints progress
        first = _calibrator(model_path, "minmax", op_types, options if method == "minmax" else {}, work_dir)
        _feed(first, data, rows, counter, f"calibration: {passes[0]}")
        if method == "minmax":
            calibrator, ranges = first, first.compute_data()
        else:
            calibrator = _calibrator(model_path, method, op_types, options, work_dir)
            _start_histograms(calibrator, first.compute_data())
            _feed(calibrator, data, rows, counter, f"calibration: {passes[1]}")
            ranges = calibrator.compute_data()
    return _bare_ranges(ranges), describe(calibrator)


class ChunkCounter:
    """Counts chunks across the passes of one calibration and tells `on_progress` after each."""

    def __init__(self, total: int, on_progress: ProgressCallback | None) -> None:
        self.done, self.total, self.on_progress = 0, total, on_progress

    def tick(self, what: str) -> None:
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done, self.total, what)


def _calibrator(model_path: Path, method: str, op_types: Sequence[str], options: dict[str, Any], work: Path) -> Any:
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    large = onnx_files.is_large(onnx.load(str(model_path), load_external_data=False))
    calibrator = create_calibrator(
        model_path,
        list(op_types) or None,
        augmented_model_path=str(work / f"augmented_{method}.onnx"),
        calibrate_method=methods[method],
        use_external_data_format=large,  # the augmented model is as large as the model
        extra_options=dict(options),
    )
    # The augmented model, weights and all, is kept though only its session runs from here on (read from ORT
    # 1.32: collect_data and compute_data use the session and the output names taken before): dropped
    calibrator.model = None
    return calibrator


def _feed(calibrator: Any, data: TensorData, rows: int, counter: ChunkCounter, what: str) -> None:
    for feeds in chunks(data, rows):
        calibrator.collect_data(OneBatchReader(feeds))
        counter.tick(what)


def _start_histograms(calibrator: Any, whole: Any) -> None:
    """Give the histogram calibrator a collector whose histograms already span the whole set's range."""
    collector_type = EntropyCollector if calibrator.method == "entropy" else HistogramCollector
    collector = collector_type(
        method=calibrator.method,
        symmetric=calibrator.symmetric,
        num_bins=calibrator.num_bins,
        num_quantized_bins=calibrator.num_quantized_bins,
        percentile=calibrator.percentile,
        scenario=calibrator.scenario,
    )
    absolute = calibrator.method == "percentile" and calibrator.symmetric  # ORT's collect_absolute_value
    for name in calibrator.tensors_to_calibrate:
        if name in whole:
            low, high = (np.min(v) for v in whole[name].range_value)
            collector.histogram_dict[name] = _empty_histogram(low, high, calibrator.num_bins, absolute)
    calibrator.collector = collector


def _empty_histogram(low: np.floating, high: np.floating, bins: int, absolute: bool) -> tuple[Any, ...]:
    """An all-zero histogram in the layout HistogramCollector keeps for one tensor."""
    threshold = np.array(max(abs(low), abs(high)), dtype=low.dtype)
    if absolute:  # (hist, edges, min, max) over |x|
        hist, edges = np.histogram(np.empty(0, low.dtype), bins, range=(0, float(threshold)))
        return np.zeros_like(hist), edges.astype(low.dtype), low, high
    span: Any = (-threshold, threshold)  # numpy 0-d arrays, exactly as ORT passes them
    hist, edges = np.histogram(np.empty(0, low.dtype), bins, range=span)
    return np.zeros_like(hist), edges, low, high, threshold


class EntropyCollector(HistogramCollector):  # type: ignore[misc]
    """ORT's HistogramCollector whose entropy threshold search runs its per-bin loops in numpy.

    Same candidates, same divergences (ORT's own smooth_distribution and entropy), same result;
    ORT's Python loops took 1.6 s per tensor at 2048 bins here, so a 200-tensor model spent minutes.
    """

    def get_entropy_threshold(self, histogram: tuple[Any, ...], num_quantized_bins: int) -> tuple[Any, Any]:
        hist, edges = histogram[0], histogram[1]
        zero, half = hist.size // 2, num_quantized_bins // 2
        below = np.concatenate(([0], np.cumsum(hist)))  # below[k] = hist[:k].sum()
        candidates, divergences = [], []
        for i in range(half, zero + 1):
            start, end = zero - i, min(zero + i + 1, hist.size)
            candidates.append((edges[start], edges[end]))
            p, q = _reference_and_candidate(hist[start:end], below[start], below[-1] - below[end], num_quantized_bins)
            p, q = smooth_distribution(p), smooth_distribution(q)
            divergence = np.inf if p is None or q is None else entropy(p, q)
            divergences.append(np.array(divergence, dtype=edges.dtype))  # ORT compares them at the edges' dtype
        low, high = candidates[int(np.argmin(np.array(divergences, dtype=np.float64)))]
        return (histogram[2] if low < histogram[2] else low), (histogram[3] if high > histogram[3] else high)


def _reference_and_candidate(
    sliced: np.ndarray, left: int, right: int, quantized: int
) -> tuple[np.ndarray, np.ndarray]:
    """ORT's p (the slice, outliers folded into its ends) and q (the slice merged into `quantized` bins,
    spread back over p's non-zero bins per merged bin, truncated to int64 as ORT stores it)."""
    p = sliced.copy()
    p[0] += left
    p[-1] += right
    merged = sliced.size // quantized
    head = quantized * merged
    sums = sliced[:head].reshape(quantized, merged).sum(axis=1)
    sums[-1] += sliced[head:].sum()
    norm = (p[:head] != 0).reshape(quantized, merged).sum(axis=1)
    q = np.zeros(p.size, dtype=np.int64)
    q[:head] = np.repeat(np.where(norm != 0, sums / np.maximum(norm, 1), 0), merged)
    return p, q


def _bare_ranges(ranges: Any) -> Any:
    """The same TensorsData with only lowest/highest (what the Q/DQ quantizer reads; a small JSON)."""
    from onnxruntime.quantization.calibrate import TensorData as OrtTensorData
    from onnxruntime.quantization.calibrate import TensorsData

    bare = {}
    for name, value in ranges.items():
        low, high = value.range_value
        bare[name] = OrtTensorData(lowest=np.asarray(low), highest=np.asarray(high))
    return TensorsData(ranges.calibration_method, bare)


def describe(calibrator: Any) -> dict[str, Any]:
    """What the calibrator really was: its class and the knobs it ran with (for the manifest)."""
    knobs = ("symmetric", "moving_average", "num_bins", "num_quantized_bins", "percentile")
    facts: dict[str, Any] = {"class": type(calibrator).__name__}
    for knob in knobs:
        if knob in CALIBRATOR_OPTIONS[_method_of(calibrator)] and hasattr(calibrator, knob):
            facts[knob] = _plain(getattr(calibrator, knob))
    return facts


def _method_of(calibrator: Any) -> str:
    return {"MinMaxCalibrater": "minmax", "EntropyCalibrater": "entropy"}.get(type(calibrator).__name__, "percentile")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

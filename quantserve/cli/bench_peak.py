"""Multiply-adds: counted from an ONNX graph's shapes, and this CPU's INT8 peak measured by a microbenchmark.

The count covers Conv, Gemm and MatMul (where a CNN's work is); other ops add a few percent at
most and are left out, so the achieved rate is a slight underestimate. The peak is one large
`MatMulInteger` (uint8 activations × int8 weights, the weights a constant so ONNX Runtime
prepacks them) on every core: the same MLAS integer GEMM kernels a quantized Conv runs on. An
FP32 `MatMul` of the same shape is timed beside it for scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError

PEAK_SIZE = 1024  # M = N = K: 1.07 G multiply-adds a call, big enough that packing and threads amortize


@dataclass(frozen=True)
class PeakRecord:
    """A measured GEMM rate: what was run and how fast."""

    what: str
    macs_per_call: int
    seconds_per_call: float
    threads: int

    @property
    def macs_per_s(self) -> float:
        return self.macs_per_call / self.seconds_per_call

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "macs_per_s": self.macs_per_s}


def count_macs(model_path: Path, sample: dict[str, np.ndarray]) -> dict[str, int]:
    """Multiply-adds of one forward pass on `sample`'s shapes, per op type (Conv, Gemm, MatMul)."""
    import onnx

    model = onnx.load(str(model_path))
    for value in model.graph.input:
        if value.name in sample:
            _fix_shape(value, sample[value.name].shape)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises its own InferenceError and friends
        raise QuantserveError(f"{model_path}: cannot infer shapes to count multiply-adds ({exc})") from exc
    shapes = _known_shapes(model)
    counts = {"Conv": 0, "Gemm": 0, "MatMul": 0}
    for node in model.graph.node:
        if node.op_type in counts:
            counts[node.op_type] += _node_macs(node, shapes)
    return counts


def _fix_shape(value: Any, shape: tuple[int, ...]) -> None:
    for dim, size in zip(value.type.tensor_type.shape.dim, shape, strict=False):
        dim.ClearField("dim_param")
        dim.dim_value = int(size)


def _known_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def _node_macs(node: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    """Output elements × the products summed into each (0 when a shape is unknown)."""
    out = shapes.get(node.output[0])
    first, second = (shapes.get(name) for name in node.input[:2])
    if out is None or first is None or second is None:
        return 0
    if node.op_type == "Conv":  # weight [M, C/group, kH, kW]
        return math.prod(out) * math.prod(second[1:])
    if node.op_type == "Gemm":
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        return math.prod(out) * (first[0] if trans_a else first[-1])
    return math.prod(out) * first[-1]  # MatMul: [..., M, K] x [..., K, N]


def int8_peak(threads: int, seconds: float, size: int = PEAK_SIZE) -> PeakRecord:
    """The best of several timed calls of a `size`³ uint8×int8 MatMulInteger on `threads` threads."""
    from onnx import TensorProto

    weights = np.random.default_rng(0).integers(-128, 128, size=(size, size), dtype=np.int8)
    model = _gemm_model("MatMulInteger", TensorProto.UINT8, TensorProto.INT32, weights)
    activations = np.random.default_rng(1).integers(0, 256, size=(size, size), dtype=np.uint8)
    best = _best_call_seconds(model, activations, threads, seconds)
    return PeakRecord(f"MatMulInteger u8×s8 {size}×{size}×{size}", size**3, best, threads)


def fp32_peak(threads: int, seconds: float, size: int = PEAK_SIZE) -> PeakRecord:
    """The same GEMM in FP32 (`MatMul`), for scale."""
    from onnx import TensorProto

    weights = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    model = _gemm_model("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, weights)
    activations = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    best = _best_call_seconds(model, activations, threads, seconds)
    return PeakRecord(f"MatMul fp32 {size}×{size}×{size}", size**3, best, threads)


class PeakTracker:
    """Every peak measurement of a run (one per repeat): a peak is the best seen, so a loaded moment is outvoted."""

    def __init__(self, threads: int, seconds: float) -> None:
        self.threads, self.seconds = threads, seconds
        self.runs: dict[str, list[PeakRecord]] = {"int8": [], "fp32": []}

    def measure(self) -> None:
        self.runs["int8"].append(int8_peak(self.threads, self.seconds))
        self.runs["fp32"].append(fp32_peak(self.threads, self.seconds))

    def best(self, kind: str) -> PeakRecord:
        return max(self.runs[kind], key=lambda record: record.macs_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            kind: {**self.best(kind).to_dict(), "runs_macs_per_s": [r.macs_per_s for r in records]}
            for kind, records in self.runs.items()
        }


def _gemm_model(op: str, input_type: int, output_type: int, weights: np.ndarray) -> bytes:
    from onnx import helper, numpy_helper

    size = weights.shape[0]
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "w"], ["y"])],
        "peak",
        [helper.make_tensor_value_info("a", input_type, [size, size])],
        [helper.make_tensor_value_info("y", output_type, [size, size])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def _best_call_seconds(model: bytes, activations: np.ndarray, threads: int, seconds: float) -> float:
    import onnxruntime as ort

    from optimizer.onnxruntime_runner import session_options

    options = session_options("all", threads)
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feeds = {"a": activations}
    sess.run(None, feeds)
    best, start = math.inf, time.perf_counter()
    while time.perf_counter() - start < seconds or best == math.inf:
        began = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - began)
    return best


def compute_record(
    macs: dict[str, int], samples_per_s: dict[str, float], peak: PeakRecord, int8_share: float | None = None
) -> dict[str, Any]:
    """Achieved INT8 multiply-adds/s of each named rate over the INT8 peak, with the arithmetic as text. Where the
    INT8 build keeps nodes FP32 (`int8_share`: its multiply-adds in INT8, as optimize records it), only its INT8
    ones count against the INT8 peak: a build 9 % INT8 had all its multiply-adds counted there (session 44)."""
    per_sample = sum(macs.values())
    parts = ", ".join(f"{op} {amount(count)}" for op, count in macs.items() if count)
    lines = [f"multiply-adds a sample: {amount(per_sample)} ({parts})"]
    counted, what = float(per_sample), amount(per_sample)
    if int8_share is not None and int8_share < 1.0:
        counted = per_sample * max(int8_share, 0.0)
        what = f"{amount(counted)} in INT8"
        lines[0] += (
            f"; the INT8 build runs {int8_share * 100:.1f} % of them in INT8 ({amount(counted)}), the rest FP32: "
            "only those count against the INT8 peak"
        )
    lines.append(
        f"INT8 peak: {peak.what} on {peak.threads} threads = {amount(peak.macs_per_call)} "
        f"in {peak.seconds_per_call * 1e3:.2f} ms = {amount(peak.macs_per_s)}/s"
    )
    achieved = {}
    for label, rate in samples_per_s.items():
        achieved[label] = rate * counted
        lines.append(
            f"{label}: {rate:.1f}/s × {what} = {amount(achieved[label])}/s "
            f"= {share_text(achieved[label] / peak.macs_per_s * 100)} % of the INT8 peak"
        )
    return {
        "macs_per_sample": per_sample,
        "macs_by_op": macs,
        "int8_mac_share": int8_share,
        "int8_macs_per_sample": counted,
        "achieved_macs_per_s": achieved,
        "fraction_of_int8_peak": {k: v / peak.macs_per_s for k, v in achieved.items()},
        "arithmetic": lines,
    }


def amount(count: float) -> str:
    """A multiply-add count with a unit its size shows in: "1.819 G", "0.27 M", "1.28 k", "640" (a 1280-MAC model
    read "0.00 M" a sample, and its 0.83 M/s "646.2/s × 0.00 M")."""
    if count >= 1e8:
        return f"{count / 1e9:.3f} G"
    if count >= 1e5:
        return f"{count / 1e6:.2f} M"
    return f"{count / 1e3:.2f} k" if count >= 1e3 else f"{count:.0f}"


def share_text(percent: float) -> str:
    """A share of the peak: one decimal, or two significant digits below 1 % (a tiny model's 0.03 % read 0.0)."""
    return f"{percent:.1f}" if percent >= 1.0 else f"{percent:.2g}"

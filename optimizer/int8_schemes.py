"""The INT8 schemes the search measures: static Q/DQ (of every op type, of the compute ops alone, with 7-bit
weights, of the SmoothQuant-smoothed model) and ONNX Runtime's dynamic INT8. Each builds a model, and cuts the search's
variants with nodes kept FP32.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import onnx

from optimizer import onnx_files
from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.cpu_isa import cpu_flags as cpu_flags_here
from optimizer.cpu_isa import u8s8_saturates
from optimizer.fp32_restore import keep_fp32
from optimizer.gemm_rewrite import MATMUL_SUFFIX, gemms_as_matmuls
from optimizer.smoothquant import SmoothRecord, smooth_quant, smoothing_maxima
from optimizer.tensor_ranges import ProgressCallback
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

DYNAMIC_OP_TYPES = ("MatMul", "Gemm", "Attention", "LSTM")  # LSTM: ORT's DynamicQuantizeLSTM
# SmoothQuant's migration strength, chosen per model among these by drift on calibration rows (not the
# held-out rows the verdict uses). all-MiniLM-L6-v2 static Q/DQ cosine mean by alpha: 0.3 0.874, 0.5 0.990,
# 0.65 0.9965, 0.8 0.9969, 0.9 0.996, 1.0 0.992 (unsmoothed 0.9886); the paper uses 0.5 on most models and
# 0.75-0.85 on hard ones. One alpha (a judge-less scheme, e.g. in tests) takes the last.
SMOOTH_ALPHAS = (0.5, 0.65, 0.8)
SMOOTH_ALPHA = SMOOTH_ALPHAS[-1]
SEVEN_BIT_WHY = "7-bit weights: this CPU has no VNNI, u8×s8 saturates"  # `SevenBitStaticScheme`, `optimizer.cpu_isa`


class StaticScheme:
    """Static Q/DQ through `CalibrateInt8` (ranges calibrated once and cached, exclusions cheap to vary).

    Search variants are cut from the first model built (`keep_fp32`); the shipped model is built again.
    """

    name = "static_qdq"
    why: str | None = None  # why its settings were chosen, for the stage record (7-bit weights: `SEVEN_BIT_WHY`)
    fixed_fp32: tuple[str, ...] = ()  # compute nodes the scheme itself keeps FP32 (`WeightedComputeStaticScheme`)

    def __init__(
        self, calib: TensorData, settings: CalibrationSettings, on_progress: ProgressCallback | None = None
    ) -> None:
        self.calib, self.settings, self.on_progress = calib, settings, on_progress
        self.records: dict[Path, dict[str, Any]] = {}
        self._first: Path | None = None
        self._graphs: tuple[onnx.ModelProto, onnx.ModelProto] | None = None  # the first build and its FP32 model

    def build(self, fused: Artifact, excluded: Sequence[str], out: Path) -> Path:
        excluded = with_fixed_fp32(excluded, self)
        settings = dataclasses.replace(self.settings, nodes_to_exclude=tuple(excluded))
        calibrate = CalibrateInt8(self.calib, settings, on_progress=self.on_progress)
        record = calibrate(fused, out).manifest.stages[-1]
        self.records[out] = {**record, "reduce_range_why": self.why} if self.why else record
        self._first = self._first or out
        return out

    def variant(self, fused: Artifact, excluded: Sequence[str], kept: Sequence[str], out: Path) -> Path:
        """The first built model with `kept` back in FP32 (fast graph surgery, for probes and steps)."""
        if self._first is None:
            return self.build(fused, [*excluded, *kept], out)
        int8, fp32 = self._graphs or (onnx.load(str(self._first)), onnx.load(str(fused.path)))
        if not onnx_files.is_large(fp32):  # loaded once for every probe and step (a large model's copies would not fit)
            self._graphs = (int8, fp32)
        onnx_files.save(keep_fp32(int8, fp32, kept), out)
        self.records[out] = {**self.records[self._first], "fp32_by_graph_surgery": list(kept)}
        return out


class DynamicScheme:
    """ONNX Runtime's dynamic INT8: per-channel S8 MatMul weights, activations quantized per run.

    `cpu_flags`: those of the CPU that serves the model (`optimizer.cpu_isa`; this machine's by default), which decide
    whether an LSTM's weights are 7-bit.
    """

    name = "dynamic"
    why: str | None = None  # why every weight is 7-bit, for the stage record (`SevenBitDynamicScheme`)
    fixed_fp32: tuple[str, ...] = ()  # dynamic INT8 quantizes weight MatMuls alone (`MatMulConstBOnly`)
    seven_bit = False  # 7-bit weights throughout (else only where an LSTM is quantized on a saturating CPU)

    def __init__(self, op_types: Sequence[str] = DYNAMIC_OP_TYPES, cpu_flags: Collection[str] | None = None) -> None:
        self.op_types = list(op_types)
        self.cpu_flags = frozenset(cpu_flags) if cpu_flags is not None else cpu_flags_here()
        self.records: dict[Path, dict[str, Any]] = {}
        self._matmul_form: dict[Path, Path] = {}  # per FP32 model: its Gemms as MatMuls (`gemms_as_matmuls`)

    def build(self, fused: Artifact, excluded: Sequence[str], out: Path) -> Path:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        reduce_range = self.seven_bit or self._lstm_needs_seven_bits(fused.path)
        source = self._matmul_form.get(fused.path)
        if source is None:
            source = self._matmul_form[fused.path] = gemms_as_matmuls(
                fused.path, out.with_name(f"{out.stem}-matmul.onnx")
            )
        logging.disable(logging.WARNING)  # ORT's "consider pre-processing" advice, printed on every call
        try:
            quantize_dynamic(
                str(source),
                str(out),
                per_channel=True,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=self.op_types,
                nodes_to_exclude=[*excluded, *(f"{name}{MATMUL_SUFFIX}" for name in excluded if source != fused.path)],
                extra_options={"MatMulConstBOnly": True},
            )
        except Exception as exc:  # ORT raises plain exceptions for graphs it cannot quantize
            raise QuantserveError(f"{fused.path.name}: dynamic INT8 failed ({type(exc).__name__}: {exc})") from exc
        finally:
            logging.disable(logging.NOTSET)
        ops = [n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node]
        self.records[out] = {
            "quantize_nodes": ops.count("DynamicQuantizeLinear") + ops.count("QuantizeLinear"),
            "dequantize_nodes": ops.count("DequantizeLinear"),
            "tool": "onnxruntime.quantization.quantize_dynamic",
            "format": "QOperator (dynamic)",
            "per_channel": True,
            "reduce_range": reduce_range,
            "weight_type": "QInt8",
            "op_types_to_quantize": self.op_types,
            **({"reduce_range_why": self.why or SEVEN_BIT_WHY} if reduce_range else {}),
        }
        return out

    def _lstm_needs_seven_bits(self, model_path: Path) -> bool:
        """Whether an LSTM is quantized here on a CPU whose u8×s8 kernels saturate (AVX2 without VNNI): then every
        weight is 7-bit. DynamicQuantizeLSTM's products with per-channel full-range weights saturate there (a 12-step
        LSTM's output: relative error 0.12 with 8-bit weights, 0.015 with 7-bit; per-tensor 8-bit 0.015); with VNNI
        or on ARM 8-bit weights drift less at the same speed (nagisa's BiLSTM on an AVX512-VNNI EPYC, session 60:
        relative error 0.0087 vs 0.0097 segmentation, 0.0098 vs 0.0128 POS, 1.24× vs 1.26× FP32)."""
        if "LSTM" not in self.op_types or not u8s8_saturates(self.cpu_flags):
            return False
        return any(n.op_type == "LSTM" for n in onnx.load(str(model_path), load_external_data=False).graph.node)

    def variant(self, fused: Artifact, excluded: Sequence[str], kept: Sequence[str], out: Path) -> Path:
        """Quantized again with `kept` excluded too (dynamic quantization is only weight work: fast)."""
        return self.build(fused, [*excluded, *kept], out)


class SevenBitDynamicScheme(DynamicScheme):
    """Dynamic INT8 with 7-bit weights (`reduce_range`), for x86 CPUs without VNNI, where 8-bit weights missed.

    Dynamic INT8 runs the same u8 × s8 kernels as static Q/DQ, and saturates the same way there (`optimizer.cpu_isa`):
    on test_int8_search's MLP (AVX2-only EPYC) cosine to FP32 mean 0.99762, worst 0.9715 with 8-bit weights, 0.99974
    and 0.9994 with 7-bit. The kernels are the same, so it cannot run faster: tried only where 8-bit weights miss.
    """

    name = "dynamic_7bit"
    why = SEVEN_BIT_WHY
    seven_bit = True


def calibrates_activations(scheme: str) -> bool:
    """Whether a scheme's model carries activation ranges calibrated on data (static Q/DQ): dynamic INT8 quantizes
    each activation per run, so no --method changes its model (g2p's GRU decoder: byte-identical figures)."""
    return not scheme.startswith(DynamicScheme.name)


class ComputeStaticScheme(StaticScheme):
    """Static Q/DQ of the compute ops only (Conv, MatMul, Gemm), quantized from the same calibrated ranges.

    Tried when quantizing every op type misses the budget: Q/DQ on element-wise ops breaks graphs that write
    LayerNorm out as E[x²] − E[x]² or GELU as Mul/Tanh. Measured on magika's file-type classifier (jax2tf):
    top-1 agreement 0.005 with every op type, 0.955 with compute ops only (1.44× FP32).
    """

    name = "static_qdq_compute"

    def __init__(
        self,
        calib: TensorData,
        settings: CalibrationSettings,
        op_types: Sequence[str],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(calib, dataclasses.replace(settings, quantize_op_types=tuple(op_types)), on_progress)


PRODUCTS_KEY = "activation_products_fp32"  # the stage record's key: the nodes of no constant weight kept FP32
ALONE_KEY = "op_type_alone"  # the stage record's key: the one compute op type `OpTypeStaticScheme` quantizes


class WeightedComputeStaticScheme(ComputeStaticScheme):
    """Static Q/DQ of the compute ops that carry a constant weight, those whose weight side is computed kept FP32
    (`activation_products`: an STFT's raw signal by its basis, attention's QK^T), where one per-tensor scale per side
    may be what drifts. Tried where the compute ops alone missed (`FallbackSchemes._narrower_compute_schemes`)."""

    name = "static_qdq_weighted"

    def __init__(
        self,
        calib: TensorData,
        settings: CalibrationSettings,
        op_types: Sequence[str],
        fp32_nodes: Sequence[str],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(calib, settings, op_types, on_progress)
        self.fixed_fp32 = tuple(fp32_nodes)

    def build(self, fused: Artifact, excluded: Sequence[str], out: Path) -> Path:
        built = super().build(fused, excluded, out)
        self.records[built] = {**self.records[built], PRODUCTS_KEY: list(self.fixed_fp32), **self._own_record()}
        return built

    def _own_record(self) -> dict[str, Any]:
        return {}


class OpTypeStaticScheme(WeightedComputeStaticScheme):
    """Static Q/DQ of one compute op type alone (its nodes of no constant weight FP32 too), where the compute ops
    alone missed in a graph mixing them. swift-f0's pitch estimator (its STFT 21 MatMuls, after onnxslim each of a
    constant basis, then 18 Conv): Conv and MatMul in INT8 overall accuracy 0.9903 → 0.9012 by ONNX Runtime's own
    quantizer, Conv alone 0.9909; no graph feature told its MatMuls from a weight's (session 59)."""

    def __init__(
        self,
        calib: TensorData,
        settings: CalibrationSettings,
        op_type: str,
        fp32_nodes: Sequence[str],
        on_progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(calib, settings, [op_type], fp32_nodes, on_progress)
        self.op_type = op_type
        self.name = f"static_qdq_{op_type.lower()}_only"

    def _own_record(self) -> dict[str, Any]:
        return {ALONE_KEY: self.op_type}


def quantizes_compute_alone(scheme: str) -> bool:
    """Whether a scheme's model puts no Q/DQ between the compute nodes (only at their inputs): its miss is drift in
    the compute nodes it quantizes, not in the data movement between them."""
    narrower = scheme.startswith("static_qdq_") and scheme.endswith("_only")
    return narrower or scheme in (ComputeStaticScheme.name, WeightedComputeStaticScheme.name, DynamicScheme.name)


_PRODUCT_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose"})
# ops a weight passes through unchanged in value on its way to a compute node (a cast, a dequantized weight, a view)
_WEIGHT_PATH_OPS = frozenset({"Cast", "DequantizeLinear", "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze"})


def activation_products(model: onnx.ModelProto) -> list[str]:
    """The compute nodes (MatMul, Gemm, Conv, ConvTranspose) whose second input, where ONNX Runtime takes a weight
    per channel, is computed: not an initializer or a Constant (followed back through casts, dequantization and
    views), in graph order. Both their sides get one per-tensor scale each. swift-f0's STFT, after onnxslim folded
    its Sin/Cos bases, is 21 MatMuls of a constant basis (left) by the raw audio frames (right)."""
    constants = {t.name for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}

    def constant(tensor: str) -> bool:
        while tensor not in constants:
            node = producers.get(tensor)
            if node is None:
                return False
            if node.op_type == "Constant":
                return True
            if node.op_type not in _WEIGHT_PATH_OPS or not node.input:
                return False
            tensor = node.input[0]
        return True

    return [
        node.name
        for node in model.graph.node
        if node.op_type in _PRODUCT_OPS and len(node.input) > 1 and not constant(node.input[1])
    ]


def with_fixed_fp32(excluded: Sequence[str], scheme: StaticScheme | DynamicScheme) -> list[str]:
    """`excluded` and the nodes `scheme` keeps FP32 by design, each once."""
    return [*excluded, *(n for n in scheme.fixed_fp32 if n not in excluded)]


class SevenBitStaticScheme(StaticScheme):
    """Static Q/DQ with 7-bit weights (`reduce_range`), from the same calibrated ranges, for x86 CPUs without VNNI.

    There ONNX Runtime's u8 × s8 kernels add pairs of products in 16 bits and saturate with full-range weights
    (`optimizer.cpu_isa`); halving the weights' range keeps each pair within it. Measured on fer's emotion CNN
    (AVX2-only EPYC): top-1 agreement with FP32 0.81 with 8-bit weights, 0.9425 with 7-bit. The kernels are the
    same, so it cannot run faster than 8-bit weights: the search tries it only where those miss the budget.
    """

    name = "static_qdq_7bit"
    why = SEVEN_BIT_WHY

    def __init__(
        self, calib: TensorData, settings: CalibrationSettings, on_progress: ProgressCallback | None = None
    ) -> None:
        super().__init__(calib, dataclasses.replace(settings, reduce_range=True), on_progress)


class SmoothStaticScheme(StaticScheme):
    """Static Q/DQ of the SmoothQuant-smoothed model (smoothed once, on the calibration set).

    With a `judge` (a built INT8 model's drift margin on calibration rows) each of `alphas` is smoothed,
    quantized and judged, and the best kept; without one the last alpha is used. Search variants are cut
    against the smoothed FP32 model; the Muls smoothing inserts stay FP32.
    """

    name = "static_qdq_smooth"

    def __init__(
        self,
        calib: TensorData,
        settings: CalibrationSettings,
        work: Path,
        alphas: Sequence[float] = (SMOOTH_ALPHA,),
        on_progress: ProgressCallback | None = None,
        judge: Callable[[Path], float] | None = None,
    ) -> None:
        super().__init__(calib, settings, on_progress)
        self.work, self.alphas, self.judge = work, tuple(alphas), judge
        self.smooth_record: SmoothRecord | None = None
        self.alpha_margins: dict[float, float] = {}
        self._smoothed: Artifact | None = None
        self._trial: tuple[tuple[str, ...], Path, dict[str, Any]] | None = None  # the chosen alpha's INT8 build
        self._smooth_s = 0.0

    def smoothed(self, fused: Artifact, excluded: Sequence[str] = ()) -> Artifact:
        """The smoothed FP32 model (made on first use, the alpha chosen then, `excluded` kept FP32 in the trials)."""
        if self._smoothed is None:
            started = time.monotonic()
            judged = self.judge is not None and len(self.alphas) > 1
            options = []
            original = onnx.load(str(fused.path))
            maxima = smoothing_maxima(original, self.calib.batches(self.settings.batch_size))  # alpha-free: once
            for alpha in self.alphas if judged else self.alphas[-1:]:
                model, record = smooth_quant(original, (), alpha, maxima)
                path = self.work / f"fp32-smoothed-{alpha:g}.onnx"
                onnx_files.save(model, path)
                margin, trial = 0.0, None
                if judged and self.judge is not None:
                    static = StaticScheme(self.calib, self.settings, self.on_progress)
                    built = static.build(
                        Artifact(path, fused.manifest), [*excluded, *record.inserted_nodes], path.with_suffix(".q.onnx")
                    )
                    margin = self.alpha_margins[alpha] = self.judge(built)
                    trial = (tuple(excluded), built, static.records[built])
                options.append((margin, alpha, path, record, trial))
            _, _, path, self.smooth_record, self._trial = max(options, key=lambda option: (option[0], option[1]))
            self._smooth_s = round(time.monotonic() - started, 2)
            self._smoothed = Artifact(path, fused.manifest)
        return self._smoothed

    def build(self, fused: Artifact, excluded: Sequence[str], out: Path) -> Path:
        smoothed = self.smoothed(fused, excluded)
        if self._trial is not None and self._trial[0] == tuple(excluded):  # judging the alpha built it already
            _, built, record = self._trial
            onnx_files.copy(built, out)
            self.records[out], self._first = record, self._first or out
            return out
        inserted = self.smooth_record.inserted_nodes if self.smooth_record else []
        return super().build(smoothed, [*excluded, *inserted], out)

    def variant(self, fused: Artifact, excluded: Sequence[str], kept: Sequence[str], out: Path) -> Path:
        return super().variant(self.smoothed(fused), excluded, kept, out)

    def record(self) -> dict[str, Any] | None:
        """The smoothing record for the stage record (None until the model was smoothed)."""
        if self.smooth_record is None:
            return None
        margins = {f"{alpha:g}": round(margin, 4) for alpha, margin in self.alpha_margins.items()}
        return {**self.smooth_record.to_dict(), "smooth_s": self._smooth_s, "alpha_margins_on_calibration": margins}


Scheme = StaticScheme | DynamicScheme

"""The INT8 stage: the right scheme per model and target, chosen by measured drift and speed.

Candidates (CPU targets: embedded, onnxruntime): static Q/DQ (`CalibrateInt8`, U8 activations and S8
per-channel weights: S8 activations ran 2.5× slower on VNNI) and, where MatMul/Gemm/LSTM weights carry
the work, ONNX Runtime's dynamic INT8 (per-channel MatMul weights, activations quantized at run
time). Measured on a 6-layer sentence encoder: static kept cosine 0.36, dynamic 0.993 at 1.81×.
Transformer encoders (recognised from the graph, or `--model-type`) quantize only weight
MatMul/Gemm statically, their outputs left FP32: on all-MiniLM-L6-v2 that lifted static cosine from
0.939 to 0.988 (dynamic: 0.992). Where dynamic is a candidate, so is static Q/DQ of the SmoothQuant-
smoothed model (`optimizer.smoothquant`: activation outlier channels migrated into the weights).
For TensorRT only static Q/DQ is valid (strongly typed explicit quantization), so it always
calibrates the smoothed model. Drift is always measured against the unsmoothed FP32 outputs, and
the FP32 reference the pipeline ships is the unsmoothed model.

Each candidate's drift is measured on the held-out set against the budget, and its speed vs FP32
by ONNX Runtime's profiler in a fresh child process, on the batch and threads optimize's speed gate
times (`--timing-batch`, the target's threads; `optimizer.speed`). The fastest candidate that holds
wins. Where static Q/DQ of every op type misses the budget, static Q/DQ of the compute ops alone (from
the same ranges) is tried too. If none holds, or one that misses runs clearly faster, the mixed-precision search
(`optimizer.sensitivity`) keeps nodes FP32 on it. The whole stage — reference run, candidates, probes, steps,
profiles — spends one wall-clock budget (`SearchSettings.max_search_s`, `optimizer.search_budget`): work that
the time left cannot hold is not started, and where the time ran out before any INT8 model was verified within
the drift budget and timed, the stage refuses in one line naming the flag that raises the budget.
Graph outputs and mixed-range tensors are never quantized (`optimizer.quant_exclusions`). Whatever
comes out, the stage record says what was tried, measured and kept, so the pipeline can refuse a
model that misses the budget or is not faster with one line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import onnx_files
from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.drift import (
    BudgetExceeded,
    DriftBudget,
    DriftReport,
    evidence_refusal,
    evidence_shortfall,
    infer_output_kinds,
    measure_drift,
)
from optimizer.profile import ModelProfile, profile_model
from optimizer.quant_exclusions import (
    COMPUTE_OPS,
    DYNAMIC_ONLY_OPS,
    MIXED_RANGE_RATIO,
    activation_matmuls,
    find_exclusions,
)
from optimizer.search_budget import CANDIDATE, PROFILE, SearchBudget
from optimizer.sensitivity import (
    EXHAUSTED,
    Attempt,
    MixedPrecisionSearch,
    compute_macs,
    keep_fp32,
    quantized_nodes,
    time_saved_ms,
)
from optimizer.smoothquant import SmoothRecord, smooth_quant, smoothing_maxima
from optimizer.tensor_ranges import ProgressCallback
from optimizer.transformer import TRANSFORMER_OP_TYPES, detect_encoder, run_model
from optimizer.user_metric import MetricError, UserMetric, add_user_metric
from optimizer.verify import batch_compositions, verify_batch_size
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

CPU_TARGETS = ("embedded", "onnxruntime")
DYNAMIC_OP_TYPES = ("MatMul", "Gemm", "Attention", "LSTM")  # LSTM: ORT's DynamicQuantizeLSTM
DYNAMIC_MIN_MAC_SHARE = 0.5  # dynamic is a candidate when weight MatMul/Gemm/LSTM hold this share of the MACs
FASTER = 1.05  # a non-holding candidate this much faster than the best holding one gets a mixed search
CANDIDATES = "INT8 schemes measured"  # on_progress's `what` after each candidate scheme
# SmoothQuant's migration strength, chosen per model among these by drift on calibration rows (not the
# held-out rows the verdict uses). all-MiniLM-L6-v2 static Q/DQ cosine mean by alpha: 0.3 0.874, 0.5 0.990,
# 0.65 0.9965, 0.8 0.9969, 0.9 0.996, 1.0 0.992 (unsmoothed 0.9886); the paper uses 0.5 on most models and
# 0.75-0.85 on hard ones. One alpha (a judge-less scheme, e.g. in tests) takes the last.
SMOOTH_ALPHAS = (0.5, 0.65, 0.8)
SMOOTH_ALPHA = SMOOTH_ALPHAS[-1]


@dataclass(frozen=True)
class SearchSettings:
    """Bounds of the search: its whole wall-clock budget, probe count, sample counts, timing size."""

    # the whole stage's wall clock (reference run, candidates, probes, steps, profiles): optimize's --max-search-s
    max_search_s: float = 300.0
    # of which the mixed-precision search may spend at most this (its own cap, as before the whole was budgeted)
    max_mixed_s: float = 60.0
    max_probes: int = 12
    probe_samples: int = 32
    max_eval_samples: int = 512
    stats_samples: int = 16
    timing_batch: int = 8  # held-out rows per profiled run: optimize passes its --timing-batch
    timing_repeats: int = 3
    # 0: os.cpu_count(), the threads the serving target and optimize's speed gate use; timing the
    # candidates on one thread while the gate times on all of them chose schemes the gate refused
    threads: int = 0
    mixed_range_ratio: float = MIXED_RANGE_RATIO
    min_margin: float = 0.05  # a variant counts as holding with this much normalized slack left (DriftReport.margin)

    def __post_init__(self) -> None:
        seconds = min(self.max_search_s, self.max_mixed_s)
        if seconds <= 0 or min(self.max_probes, self.probe_samples, self.timing_batch) < 1:
            raise QuantserveError("INT8 search settings must be positive (search seconds, probes, samples, batch)")


@dataclass
class Candidate:
    """One INT8 model measured: its scheme, the nodes it keeps FP32, drift and profiled speed."""

    scheme: str
    path: Path
    excluded: list[str]
    drift: DriftReport
    profile: ModelProfile
    speedup: float
    record: dict[str, Any] = field(default_factory=dict)  # the scheme's own stage record

    def summary(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "holds": self.drift.holds,
            "margin": self.drift.margin(),
            "violations": [v.line() for v in self.drift.violations],
            "run_ms": self.profile.run_ms,
            "speedup": self.speedup,
            "kept_fp32": len(self.excluded),
        }


class StaticScheme:
    """Static Q/DQ through `CalibrateInt8` (ranges calibrated once and cached, exclusions cheap to vary).

    Search variants are cut from the first model built (`keep_fp32`); the shipped model is built again.
    """

    name = "static_qdq"

    def __init__(
        self, calib: TensorData, settings: CalibrationSettings, on_progress: ProgressCallback | None = None
    ) -> None:
        self.calib, self.settings, self.on_progress = calib, settings, on_progress
        self.records: dict[Path, dict[str, Any]] = {}
        self._first: Path | None = None
        self._graphs: tuple[onnx.ModelProto, onnx.ModelProto] | None = None  # the first build and its FP32 model

    def build(self, fused: Artifact, excluded: Sequence[str], out: Path) -> Path:
        settings = dataclasses.replace(self.settings, nodes_to_exclude=tuple(excluded))
        calibrate = CalibrateInt8(self.calib, settings, on_progress=self.on_progress)
        self.records[out] = calibrate(fused, out).manifest.stages[-1]
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
    """ONNX Runtime's dynamic INT8: per-channel S8 MatMul weights, activations quantized per run."""

    name = "dynamic"

    def __init__(self, op_types: Sequence[str] = DYNAMIC_OP_TYPES) -> None:
        self.op_types = list(op_types)
        self.records: dict[Path, dict[str, Any]] = {}

    def build(self, fused: Artifact, excluded: Sequence[str], out: Path) -> Path:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # 7-bit weights (all of them) where an LSTM is quantized: DynamicQuantizeLSTM's u8 x s8 products with
        # per-channel full-range weights saturate on AVX2 without VNNI (a 12-step LSTM's output: relative error
        # 0.12 with 8-bit weights, 0.015 with 7-bit; per-tensor 8-bit 0.015)
        graph_ops = {n.op_type for n in onnx.load(str(fused.path)).graph.node}
        reduce_range = "LSTM" in self.op_types and "LSTM" in graph_ops
        logging.disable(logging.WARNING)  # ORT's "consider pre-processing" advice, printed on every call
        try:
            quantize_dynamic(
                str(fused.path),
                str(out),
                per_channel=True,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=self.op_types,
                nodes_to_exclude=list(excluded),
                extra_options={"MatMulConstBOnly": True},
            )
        except Exception as exc:  # ORT raises plain exceptions for graphs it cannot quantize
            raise QuantserveError(f"{fused.path.name}: dynamic INT8 failed ({type(exc).__name__}: {exc})") from exc
        finally:
            logging.disable(logging.NOTSET)
        ops = [n.op_type for n in onnx.load(str(out)).graph.node]
        self.records[out] = {
            "quantize_nodes": ops.count("DynamicQuantizeLinear") + ops.count("QuantizeLinear"),
            "dequantize_nodes": ops.count("DequantizeLinear"),
            "tool": "onnxruntime.quantization.quantize_dynamic",
            "format": "QOperator (dynamic)",
            "per_channel": True,
            "reduce_range": reduce_range,
            "weight_type": "QInt8",
            "op_types_to_quantize": self.op_types,
        }
        return out

    def variant(self, fused: Artifact, excluded: Sequence[str], kept: Sequence[str], out: Path) -> Path:
        """Quantized again with `kept` excluded too (dynamic quantization is only weight work: fast)."""
        return self.build(fused, [*excluded, *kept], out)


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


class SearchInt8:
    """INT8 stage: candidate schemes measured for drift and speed, mixed precision if none holds."""

    def __init__(
        self,
        calib: TensorData,
        held_out: TensorData,
        settings: CalibrationSettings | None = None,
        target: str = "embedded",
        budget: DriftBudget | None = None,
        output_kinds: dict[str, str] | None = None,
        model_type: str | None = None,
        search: SearchSettings | None = None,
        on_step: Callable[[str], None] | None = None,
        on_progress: ProgressCallback | None = None,
        keep_failing: bool = False,
        allow_thin_evidence: bool = False,
        user_metric: UserMetric | None = None,
    ) -> None:
        self.calib, self.settings = calib, settings or CalibrationSettings()
        # --metric: judged on every candidate's held-out drift, as verification judges it (the search once stopped
        # at "budget holds" by the outputs alone, and verification then refused on the metric with nothing tried)
        self.user_metric = user_metric
        self.keep_failing = keep_failing  # where only all-FP32 holds: ship the closest INT8 model, not refuse
        self.allow_thin_evidence = allow_thin_evidence  # search on held-out rows too few to show the budget
        self.on_step = on_step  # told what the search is doing: "static_qdq candidate", "probe 3/12"…
        self.on_progress = on_progress  # (done, total, what): calibration chunks, candidates, mixed-precision groups
        self.search = search or SearchSettings()
        self.held_out = held_out.take(0, min(len(held_out), self.search.max_eval_samples))
        self.target, self.budget = target, budget or DriftBudget()
        self.output_kinds, self.model_type = dict(output_kinds or {}), model_type

    def __call__(self, fused: Artifact, out_path: Path) -> Artifact:
        started = time.monotonic()
        work = Path(out_path).parent / f".{Path(out_path).stem}-search"
        work.mkdir(parents=True, exist_ok=True)
        try:
            run = _SearchRun(self, fused, work, SearchBudget(self.search.max_search_s))
            chosen, record = run.choose()
            onnx_files.copy(chosen.path, out_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        record["search_s"] = round(time.monotonic() - started, 2)
        return fused.with_stage(Path(out_path), record, precision="int8")


class _SearchRun:
    """The state of one search: reference outputs, kinds, exclusions, FP32 profile and the candidates."""

    def __init__(self, stage: SearchInt8, fused: Artifact, work: Path, budget: SearchBudget) -> None:
        self.stage, self.fused, self.work, self.budget = stage, fused, work, budget
        self.probes_run = 0
        # the graph, its initializers' names and shapes: a large model's weights stay in their file (2+ GB here)
        self.model = onnx.load(str(fused.path), load_external_data=False)
        self.large = onnx_files.is_large(self.model)
        self.skipped: dict[str, str] = {}  # schemes not tried, and why
        self.failed: dict[str, str] = {}  # schemes that failed to build, and why
        self.encoder = f"--model-type {stage.model_type}" if stage.model_type else detect_encoder(self.model)
        held = stage.held_out
        self.labels = held.labels
        self.verify_batch = verify_batch_size(fused.path, held)  # as the verification that follows runs
        self.reference = run_model(fused.path, held.arrays, self.verify_batch)
        self.kinds = infer_output_kinds(self.reference, stage.output_kinds, labels=held.labels, inputs=held.arrays)
        short = evidence_shortfall(self.kinds, stage.budget, len(held))
        if short and not stage.allow_thin_evidence:  # known before any calibration: refused in seconds
            raise BudgetExceeded(evidence_refusal(short))
        stats = stage.calib.take(0, min(len(stage.calib), stage.search.stats_samples))
        user = stage.settings.nodes_to_exclude
        self.exclusions = find_exclusions(
            self.model, fused.path, stats.batches(8), stage.search.mixed_range_ratio, user
        )
        self.timing_batch = next(held.batches(stage.search.timing_batch))
        self.fp32_profile = self._profile(fused.path)
        self.macs = compute_macs(self.model, fused.path, next(held.batches(1)))
        self.probe = held.take(0, min(len(held), stage.search.probe_samples))
        self._calib_reference: dict[str, Any] | None = None
        self._probe_reference = {k: v[: len(self.probe)] for k, v in self.reference.items()}
        self._int8_nodes: dict[Path, list[str]] = {}  # per built model: its compute nodes that run in INT8
        self._last_run: tuple[Path, dict[str, np.ndarray]] | None = None  # `_outputs`' one model kept

    def choose(self) -> tuple[Candidate, dict[str, Any]]:
        """Measure each scheme; the fastest that holds, else the mixed-precision search on the closest."""
        if self.encoder:
            self.exclusions += activation_matmuls(self.model, {e.node for e in self.exclusions})
        base = [e.node for e in self.exclusions]
        self.schemes = {scheme.name: scheme for scheme in self._schemes()}
        tried: list[Candidate] = []
        for done, scheme in enumerate(list(self.schemes.values()), start=1):
            tried += self._timed_candidate(scheme, base)
            self._progress(done, len(self.schemes), CANDIDATES)
        fallback = self._compute_only_scheme(tried)
        if fallback is not None:
            self.schemes[fallback.name] = fallback
            tried += self._timed_candidate(fallback, base)
        if not tried and self.budget.ran_out:
            raise BudgetExceeded(self.budget.refusal())
        if not tried:
            reasons = "; ".join(f"{name}: {why}" for name, why in self.failed.items())
            raise BudgetExceeded(f"no INT8 scheme could be built ({reasons}); nothing written: deploy fp32")
        holding = [c for c in tried if self._accept(c.drift)]
        best = max(holding, key=lambda c: c.speedup) if holding else None
        # A candidate that misses the budget but runs clearly faster than the best holding one is worth a search.
        faster = [c for c in tried if c not in holding and (best is None or c.speedup > FASTER * best.speedup)]
        chosen: Candidate = best or tried[0]
        mixed: dict[str, Any] = {}
        if faster:
            start = max(faster, key=lambda c: (c.drift.margin(), c.speedup))
            mixed_candidate, mixed = self._mixed_precision(start, base)
            options = [c for c in (best, mixed_candidate) if c is not None]
            chosen = max(
                options, key=lambda c: (self._accept(c.drift), c.speedup if self._accept(c.drift) else c.drift.margin())
            )
            mixed["chosen"] = chosen is mixed_candidate
        self._refuse_unverified(chosen)
        if not self._quantizes_anything(chosen):
            chosen = self._nothing_in_int8(tried)
            if mixed:
                mixed["chosen"] = False
        else:
            self._refuse_exhausted(chosen, mixed)
        return chosen, self._record(chosen, tried, mixed)

    def _refuse_unverified(self, chosen: Candidate) -> None:
        """Where the time ran out and the best model found misses the budget, the search did not finish: refused in
        one line naming the flag that raises the budget (--keep-failing ships the closest, its misses recorded)."""
        if not self.budget.ran_out or chosen.drift.holds or self.stage.keep_failing:
            return
        worst = chosen.drift.violations[0] if chosen.drift.violations else None
        closest = "" if worst is None else f"{chosen.scheme}, {worst.line()}"
        raise BudgetExceeded(self.budget.refusal(closest))

    def _refuse_exhausted(self, chosen: Candidate, mixed: dict[str, Any]) -> None:
        """Where the mixed-precision search kept every compute group FP32 in turn and the budget still missed, what
        drifts is the Q/DQ left around the other ops (MediaPipe's hand landmarks: Clip, Add, Sigmoid), not one
        compute node: said so in one line (it went to verification's generic line, the search recorded as
        "every group kept FP32" beside an empty list kept). --keep-failing ships the closest, as elsewhere."""
        if mixed.get("stopped") != EXHAUSTED or chosen.drift.holds or self.stage.keep_failing:
            return
        worst = chosen.drift.violations[0] if chosen.drift.violations else None
        first = "" if worst is None else f" ({worst.line(chosen.drift.outputs.get(worst.output, {}).get('kind', ''))})"
        raise BudgetExceeded(
            f"no INT8 model holds the drift budget: {chosen.scheme} misses it{first}, and still missed it with every "
            "compute node kept FP32 in turn: the drift is in the quantized data movement between them; nothing "
            "written: deploy fp32 (or pass --keep-failing to ship the closest INT8 model)"
        )

    def _quantized(self, path: Path) -> list[str]:
        """The compute nodes the model at `path` runs in INT8, read once per model (the choice and the record ask)."""
        if path not in self._int8_nodes:
            self._int8_nodes[path] = quantized_nodes(self.model, onnx.load(str(path), load_external_data=False))
        return self._int8_nodes[path]

    def _quantizes_anything(self, candidate: Candidate) -> bool:
        return bool(self._quantized(candidate.path))

    def _nothing_in_int8(self, tried: list[Candidate]) -> Candidate:
        """The mixed-precision search held the budget only by keeping every compute node FP32: that is the FP32
        model with Q/DQ around data movement, not an INT8 model (basic-pitch's CQT front end broke at every
        granularity; the search ended at 0 % of MACs in INT8 and the speed gate called it "1.03× FP32"). Refused
        in one line, or with --keep-failing the closest INT8 candidate is shipped, its misses recorded."""
        int8 = [c for c in tried if self._quantizes_anything(c)]
        if not int8:  # nothing was left to quantize: every compute node excluded up front
            count = len(self.exclusions)
            raise BudgetExceeded(
                f"no INT8 model to ship: every compute node is kept FP32 ({count} node{'s' * (count != 1)} excluded: "
                "graph outputs and mixed-range tensors); nothing written: deploy fp32"
            )
        closest = max(int8, key=lambda c: c.drift.margin())
        if self.stage.keep_failing or not closest.drift.violations:
            return closest
        worst = closest.drift.violations[0]
        first = worst.line(closest.drift.outputs.get(worst.output, {}).get("kind", ""))
        raise BudgetExceeded(
            f"no INT8 model holds the drift budget: with its compute nodes in INT8, {closest.scheme} misses it "
            f"({first}); it holds only with every compute node FP32; "
            "nothing written: deploy fp32 (or pass --keep-failing to ship the closest INT8 model)"
        )

    def _schemes(self) -> list[Scheme]:
        static_settings = self.stage.settings
        if self.encoder and not static_settings.op_types_to_quantize:
            # MatMul/Gemm only, their outputs left FP32 (ORT runs them as MatMulIntegerToFloat): a per-tensor
            # scale on every MatMul output (the attention scores before Softmax among them) broke a 6-layer encoder.
            extra = {"OpTypesToExcludeOutputQuantization": list(TRANSFORMER_OP_TYPES), **static_settings.extra_options}
            static_settings = dataclasses.replace(
                static_settings, op_types_to_quantize=TRANSFORMER_OP_TYPES, extra_options=extra
            )
        calib, progress = self.stage.calib, self.stage.on_progress
        smooth = SmoothStaticScheme(calib, static_settings, self.work, SMOOTH_ALPHAS, progress, self._calib_margin)
        if self.stage.target not in CPU_TARGETS:
            return [smooth]  # TensorRT: static Q/DQ only, so outliers are smoothed away before calibrating
        schemes: list[Scheme] = [StaticScheme(calib, static_settings, progress)]
        if self.encoder or self._weight_matmul_share() >= DYNAMIC_MIN_MAC_SHARE:
            schemes.append(DynamicScheme())
            if self.large:  # measured: a 2.2 GB MLP's search was killed at 23.8 GB of 24 while smoothing it
                self.skipped[smooth.name] = (
                    "a model of 1 GiB or more: SmoothQuant's rewrite holds three copies of its weights, and each "
                    "alpha is a calibration of the whole model"
                )
            else:
                schemes.append(smooth)
        return schemes

    def _compute_only_scheme(self, tried: list[Candidate]) -> ComputeStaticScheme | None:
        """Static Q/DQ of the compute ops alone, where static Q/DQ of every op type was tried and missed, or failed
        to build (ORT's per-channel quantizer crashed on PESTO's LayerNormalization with a 2-D scale, and the search
        ended "no INT8 scheme could be built" while the compute ops alone build)."""
        everything = next((c for c in tried if c.scheme == StaticScheme.name), None)
        if (
            (everything is None and StaticScheme.name not in self.failed)
            or (everything is not None and self._accept(everything.drift))
            or self.encoder
            or self.stage.settings.op_types_to_quantize
        ):
            return None  # held, not tried (TensorRT), or its op types were already chosen (encoders, the user)
        present = sorted({n.op_type for n in self.model.graph.node} & (COMPUTE_OPS - DYNAMIC_ONLY_OPS))
        return ComputeStaticScheme(self.stage.calib, self.stage.settings, present, self.stage.on_progress)

    def _weight_matmul_share(self) -> float:
        weights = {i.name for i in self.model.graph.initializer}
        heavy = sum(
            self.macs.get(n.name, 0)
            for n in self.model.graph.node
            if n.op_type in DYNAMIC_OP_TYPES and len(n.input) > 1 and n.input[1] in weights
        )
        return heavy / max(sum(self.macs.values()), 1)

    def _timed_candidate(self, scheme: Scheme, base: Sequence[str]) -> list[Candidate]:
        """`_built_candidate` where the time left holds one more candidate (as long as the longest so far), else []
        and the scheme recorded as left undone."""
        if not self.budget.affords(CANDIDATE):
            self.budget.skip(f"the {scheme.name} candidate")
            self.skipped[scheme.name] = f"the search's time budget ({self.budget.seconds:g} s) was spent"
            return []
        with self.budget.spend(CANDIDATE):
            return self._built_candidate(scheme, base)

    def _built_candidate(self, scheme: Scheme, base: Sequence[str]) -> list[Candidate]:
        """[the scheme's candidate], or [] when it fails to build: dropped, its reason kept for the record (a
        scheme ORT cannot apply to this graph does not end the search while another scheme can)."""
        try:
            return [self._candidate(scheme, base, f"{scheme.name}.onnx")]
        except (BudgetExceeded, MetricError):  # a refusal, or the user's metric failing on any model
            raise
        except QuantserveError as exc:
            self.failed[scheme.name] = str(exc)
            self.skipped[scheme.name] = f"failed to build: {exc}"
            self._step(f"{scheme.name} candidate dropped: {exc}")
            return []

    def _candidate(self, scheme: Scheme, excluded: Sequence[str], file: str) -> Candidate:
        self._step(f"{scheme.name} candidate")
        return self._measured(scheme, scheme.build(self.fused, excluded, self.work / file), excluded)

    def _measured(
        self, scheme: Scheme, path: Path, excluded: Sequence[str], drift: DriftReport | None = None
    ) -> Candidate:
        """A built model as a candidate: drift on the held-out set (unless measured there already), speed from a
        profile in a child process."""
        profile = self._profile(path)
        return Candidate(
            scheme.name,
            path,
            list(excluded),
            drift if drift is not None else self._drift(path, independent=scheme.name != DynamicScheme.name),
            profile,
            self.fp32_profile.run_ms / max(profile.run_ms, 1e-9),
            scheme.records[path],
        )

    def _mixed_precision(self, start: Candidate, base: list[str]) -> tuple[Candidate, dict[str, Any]]:
        """Keep the nodes with the worst drift per ms saved FP32 until the budget holds (or time is up)."""
        scheme = self.schemes[start.scheme]
        nodes = self._quantized(start.path)
        op_types = {n.name: n.op_type for n in self.model.graph.node}
        saved = time_saved_ms(nodes, op_types, _node_ms(self.fp32_profile), _node_ms(start.profile))
        count = iter(range(10**6))

        def build(kept: Sequence[str]) -> Path:
            return scheme.variant(self.fused, base, kept, self.work / f"{scheme.name}-{next(count)}.onnx")

        started = time.monotonic()
        mixed_budget = self.budget.capped(self.stage.search.max_mixed_s)
        search = MixedPrecisionSearch(
            build,
            self._probe_drift,
            lambda path: self._drift(path, independent=scheme.name != DynamicScheme.name),
            mixed_budget,
            self.stage.search.max_probes,
            self._accept,
            self.stage.on_progress,
            reserve_s=self.budget.cost(PROFILE),  # the winner is still to be timed
        )
        result = search.run(Attempt([], start.path, start.drift, full=True), nodes, saved)
        self.budget.absorb(mixed_budget)
        kept = result.best.kept
        # Ship the variant the search measured (for static Q/DQ: the calibrated model with `kept` restored to FP32),
        # its held-out drift reused; one judged on the probe rows alone is measured, where the time holds that.
        best = result.best
        if not kept or (not best.full and self.budget.ran_out):
            chosen = start
        else:
            chosen = self._measured(scheme, best.path, [*base, *kept], best.drift if best.full else None)
        reasons = {n: p for p in result.probes for n in p["nodes"]}
        record = {
            "from_scheme": start.scheme,
            "result": chosen.summary(),
            "kept_fp32": [
                {
                    "node": n,
                    "op_type": op_types.get(n, "?"),
                    "ms_saved_by_int8": saved.get(n, 0.0),
                    "group_margin_gain": reasons.get(n, {}).get("margin_gain"),
                }
                for n in kept
            ],
            "probes": result.probes,
            "steps": result.steps,
            "stopped": result.stopped,
            "search_s": round(time.monotonic() - started, 2),
        }
        return chosen, record

    def _record(self, chosen: Candidate, tried: list[Candidate], mixed: dict[str, Any]) -> dict[str, Any]:
        int8 = self._quantized(chosen.path)
        total = sum(self.macs.values())
        kept = [e.node for e in self.exclusions] + [k["node"] for k in mixed.get("kept_fp32", [])]
        return {
            "stage": "calibrate",
            **chosen.record,
            "tool": chosen.record.get("tool", ""),
            "policy": "int8 search: schemes by drift and speed, mixed precision by drift per ms",
            "scheme": chosen.scheme,
            "target": self.stage.target,
            "encoder": self.encoder,
            "output_kinds": self.kinds,
            "budget": self.stage.budget.to_dict(),
            "drift": chosen.drift.to_dict(),
            "within_budget": chosen.drift.holds,
            "speed": {
                "fp32_run_ms": self.fp32_profile.run_ms,
                "int8_run_ms": chosen.profile.run_ms,
                "speedup": chosen.speedup,
                "threads": self._threads(),
                "batch": len(next(iter(self.timing_batch.values()))),
            },
            "candidates": [c.summary() for c in tried],
            "skipped": self.skipped,
            "excluded": [e.to_dict() for e in self.exclusions],
            "mixed_precision": mixed or None,
            "kept_fp32": kept,
            "int8_nodes": len(int8),
            "int8_mac_share": sum(self.macs.get(n, 0) for n in int8) / total if total else 0.0,
            "smoothquant": self._smooth_record(chosen),
            "time_budget": self.budget.record(),
        }

    def _smooth_record(self, chosen: Candidate) -> dict[str, Any] | None:
        """What smoothing did, where a smoothed candidate was tried; whether it was the one shipped."""
        smooth = next((s for s in self.schemes.values() if isinstance(s, SmoothStaticScheme)), None)
        record = smooth.record() if smooth else None
        return None if record is None else {**record, "chosen": chosen.scheme == SmoothStaticScheme.name}

    def _calib_margin(self, path: Path) -> float:
        """`path`'s drift margin on calibration rows: what SmoothQuant's alpha is chosen by (the held-out rows
        judge the result, so they do not choose it)."""
        rows = self.stage.calib.take(0, min(len(self.stage.calib), self.stage.search.probe_samples))
        if self._calib_reference is None:
            self._calib_reference = run_model(self.fused.path, rows.arrays, self.verify_batch)
        got = run_model(path, rows.arrays, self.verify_batch)
        return measure_drift(self._calib_reference, got, self.kinds, self.stage.budget, None, rows.arrays).margin()

    def _accept(self, drift: DriftReport) -> bool:
        """Holds the budget with headroom: verification reruns at another batch size, and INT8 kernels vary."""
        return drift.holds and drift.margin() >= self.stage.search.min_margin

    def _drift(self, path: Path, independent: bool = False) -> DriftReport:
        """Drift on the held-out set at the worst batch composition (as verification judges it: dynamic INT8's
        answers move with their batch neighbours). `independent`: a static scheme's rows cannot meet (fixed scales,
        rows of the FP32 model checked independent), so the rows in order are the only composition; verification
        still judges every one."""
        held = self.stage.held_out
        compositions = (
            [self._outputs(path, len(held))]
            if independent
            else [got for _, got in batch_compositions(path, held, self.verify_batch)]
        )
        reports = []
        for got in compositions:
            report = measure_drift(self.reference, got, self.kinds, self.stage.budget, self.labels, held.arrays)
            if self.stage.user_metric is not None:
                add_user_metric(report, self.stage.user_metric, self.reference, got, self.labels, self.stage.budget)
            reports.append(report)
        return min(reports, key=lambda report: (report.holds, report.margin()))

    def _outputs(self, path: Path, rows: int) -> dict[str, np.ndarray]:
        """The model's outputs over the first `rows` held-out rows in order, reused where the last model run was this
        one over as many rows or more, batched alike (a step's probe rows were the whole held-out set of a detector:
        its verification ran them again, in a new session)."""
        ran = self._last_run
        if ran is not None and ran[0] == path:
            have = len(next(iter(ran[1].values())))
            if have == rows or (have > rows and rows % self.verify_batch == 0):
                return {name: values[:rows] for name, values in ran[1].items()}
        got = run_model(path, self.stage.held_out.take(0, rows).arrays, self.verify_batch)
        self._last_run = (path, got)  # one model's outputs: a large output's rows can take hundreds of MB
        return got

    def _probe_drift(self, path: Path) -> DriftReport:
        self.probes_run += 1
        self._step(f"mixed precision: variant {self.probes_run}")
        got = self._outputs(path, len(self.probe))
        labels = None if self.labels is None else self.labels[: len(self.probe)]
        return measure_drift(self._probe_reference, got, self.kinds, self.stage.budget, labels, self.probe.arrays)

    def _profile(self, path: Path) -> ModelProfile:
        with self.budget.spend(PROFILE):
            return profile_model(path, [self.timing_batch], self._threads(), repeats=self.stage.search.timing_repeats)

    def _step(self, what: str) -> None:
        if self.stage.on_step is not None:
            self.stage.on_step(what)

    def _progress(self, done: int, total: int, what: str) -> None:
        if self.stage.on_progress is not None:
            self.stage.on_progress(done, total, what)

    def _threads(self) -> int:
        return self.stage.search.threads or os.cpu_count() or 1


def _node_ms(profile: ModelProfile) -> dict[str, float]:
    totals: dict[str, float] = {}
    for node in profile.nodes:
        key = node.onnx_node or node.name
        totals[key] = totals.get(key, 0.0) + node.ms
    return totals

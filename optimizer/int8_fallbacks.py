"""The INT8 search's second-round candidates: where dynamic INT8 missed the budget, the same with 7-bit weights;
where static Q/DQ of every op type missed it, the same with 7-bit weights, then static Q/DQ of the compute ops alone.
The 7-bit ones only on an x86 CPU without VNNI.

Each costs a quantization, a held-out run and a paired timing out of the search's time budget, so each is tried
only where it can change the outcome: 7-bit weights run the same kernels as 8-bit ones (never faster) and help
only where u8×s8 products saturate (AVX2-only EPYC: fer's emotion CNN, static Q/DQ top-1 agreement 0.81 → 0.9425;
test_int8_search's MLP, dynamic worst cosine 0.9715 → 0.9994).
"""

from __future__ import annotations

import dataclasses

from optimizer.calibrate import CalibrationSettings
from optimizer.cpu_isa import u8s8_saturates
from optimizer.int8_measure import Candidate
from optimizer.int8_schemes import (
    SEVEN_BIT_WHY,
    ComputeStaticScheme,
    DynamicScheme,
    OpTypeStaticScheme,
    SevenBitDynamicScheme,
    SevenBitStaticScheme,
    StaticScheme,
    WeightedComputeStaticScheme,
    activation_products,
)
from optimizer.int8_verdict import SearchVerdict
from optimizer.quant_exclusions import COMPUTE_OPS, DYNAMIC_ONLY_OPS

_NO_SATURATION = "this CPU's u8×s8 INT8 kernels do not saturate (VNNI, or no AVX2): 7-bit weights would only drift more"
STATIC_SCHEMES = (StaticScheme.name, SevenBitStaticScheme.name)  # static Q/DQ of every op type, 8- and 7-bit weights


class FallbackSchemes(SearchVerdict):
    """Which fallback schemes the search run tries (the run's state: `optimizer.int8_search`)."""

    failed: dict[str, str]
    static_settings: CalibrationSettings  # static Q/DQ's settings as the search chose them (encoders: MatMul only)

    def _seven_bit_dynamic_scheme(self, tried: list[Candidate]) -> SevenBitDynamicScheme | None:
        """Dynamic INT8 with 7-bit weights, where dynamic INT8 was measured and missed with 8-bit weights, on a CPU
        whose u8×s8 kernels saturate. Not tried where dynamic held or was not a candidate (TensorRT, a conv net),
        where its weights were 7-bit already (an LSTM's, on such a CPU: `DynamicScheme`), where a candidate that holds
        ran as fast, or on a VNNI CPU (an LSTM's weights 8-bit there too)."""
        dynamic = next((c for c in tried if c.scheme == DynamicScheme.name), None)
        if dynamic is None or self._accept(dynamic.drift) or dynamic.record.get("reduce_range"):
            return None
        if self._outrun(SevenBitDynamicScheme.name, dynamic, tried) or not u8s8_saturates(self.stage.cpu_flags):
            self.skipped.setdefault(SevenBitDynamicScheme.name, _NO_SATURATION)
            return None
        return SevenBitDynamicScheme()

    def _seven_bit_scheme(self, tried: list[Candidate]) -> SevenBitStaticScheme | None:
        """Static Q/DQ with 7-bit weights, where static Q/DQ of every op type was measured and missed, on a CPU whose
        u8×s8 kernels saturate (`optimizer.cpu_isa`). Not tried where that held (7-bit weights cannot run faster,
        only drift more), where a candidate that holds ran as fast (`_outrun`), on a VNNI CPU (no saturation there)
        or for TensorRT (static_qdq is not tried there)."""
        static = next((c for c in tried if c.scheme == StaticScheme.name), None)
        if static is None or self._accept(static.drift) or self.static_settings.reduce_range:
            return None
        if self._outrun(SevenBitStaticScheme.name, static, tried) or not u8s8_saturates(self.stage.cpu_flags):
            self.skipped.setdefault(SevenBitStaticScheme.name, _NO_SATURATION)
            return None
        return SevenBitStaticScheme(self.stage.calib, self.static_settings, self._checked_progress)

    def _outrun(self, name: str, eight_bit: Candidate, tried: list[Candidate]) -> bool:
        """Whether a candidate that holds already ran at least as fast as `eight_bit`, so its 7-bit twin (`name`: the
        same kernels, never faster) could not be chosen: recorded as skipped. all-MiniLM-L6-v2 (AVX2-only EPYC, busy):
        static_qdq_7bit was still calibrated, run and timed after dynamic had held at 3.18× FP32 and static_qdq had
        run 1.67× (a 242 s search; with another candidate as long, the next run spent its 300 s before it)."""
        faster = [c for c in tried if self._accept(c.drift) and c.speedup >= eight_bit.speedup]
        if faster:
            best = max(faster, key=lambda c: c.speedup)
            self.skipped[name] = (
                f"{best.scheme} holds the budget at {best.speedup:.2f}× FP32, {eight_bit.scheme} ran "
                f"{eight_bit.speedup:.2f}×: 7-bit weights run the same kernels, never faster"
            )
        return bool(faster)

    def _compute_only_scheme(self, tried: list[Candidate]) -> ComputeStaticScheme | None:
        """Static Q/DQ of the compute ops alone, where static Q/DQ of every op type was tried and missed (with 7-bit
        weights too, where tried: this takes the weights that drifted less), or failed to build (ORT's per-channel
        quantizer crashed on PESTO's LayerNormalization with a 2-D scale, and the search ended "no INT8 scheme could
        be built" while the compute ops alone build)."""
        static = [c for c in tried if c.scheme in STATIC_SCHEMES]
        if (
            (not static and StaticScheme.name not in self.failed)
            or any(self._accept(c.drift) for c in static)
            or self.encoder
            or self.stage.settings.op_types_to_quantize
        ):
            return None  # held, not tried (TensorRT), or its op types were already chosen (encoders, the user)
        closest = max(static, key=lambda c: c.drift.margin(), default=None)
        seven_bit = closest is not None and closest.scheme == SevenBitStaticScheme.name
        settings = dataclasses.replace(self.stage.settings, reduce_range=True) if seven_bit else self.stage.settings
        present = sorted({n.op_type for n in self.model.graph.node} & (COMPUTE_OPS - DYNAMIC_ONLY_OPS))
        scheme = ComputeStaticScheme(self.stage.calib, settings, present, self._checked_progress)
        scheme.why = SEVEN_BIT_WHY if seven_bit else None
        return scheme

    def _narrower_compute_schemes(self, tried: list[Candidate]) -> list[WeightedComputeStaticScheme]:
        """Where static Q/DQ of the compute ops alone was measured and missed, narrower sets of them, from the same
        calibrated ranges: those with a constant weight (the nodes whose weight side is computed kept FP32:
        `activation_products`), then each compute op type alone (most multiply-adds first), each where it leaves some
        node in INT8 and differs from the sets before it. The mixed-precision search starts from one candidate, the
        closest, and keeps groups of compute nodes FP32 on it: from static Q/DQ of every op type the Q/DQ it puts
        between them stay. swift-f0's pitch estimator (session 59): static_qdq margin −17.0 (still −17.9 with every
        compute node FP32), compute ops −18.1, and Conv alone in INT8, which holds (ONNX Runtime's own quantizer:
        overall accuracy 0.9903 → 0.9909), was never tried."""
        compute = next((c for c in tried if c.scheme == ComputeStaticScheme.name), None)
        if compute is None or self._accept(compute.drift):
            return []
        base = self.schemes[ComputeStaticScheme.name]
        assert isinstance(base, ComputeStaticScheme)
        settings, progress, excluded = base.settings, self._checked_progress, set(compute.excluded)
        products = [n for n in activation_products(self.model) if n not in excluded]
        op_of = {n.name: n.op_type for n in self.model.graph.node}
        free = [n.name for n in self.model.graph.node if n.op_type in settings.quantize_op_types]
        weighted = [n for n in free if n not in excluded and n not in products]
        options: list[WeightedComputeStaticScheme] = []
        sets = [{n for n in free if n not in excluded}]  # the compute ops' own set
        if products and weighted:
            options.append(
                WeightedComputeStaticScheme(self.stage.calib, settings, settings.quantize_op_types, products)
            )
            sets.append(set(weighted))
        by_macs = sorted(
            {op_of[n] for n in weighted}, key=lambda op: -sum(self.macs.get(n, 0) for n in weighted if op_of[n] == op)
        )
        for op_type in by_macs:
            alone = {n for n in weighted if op_of[n] == op_type}
            if alone in sets:
                continue
            kept = [n for n in products if op_of[n] == op_type]
            options.append(OpTypeStaticScheme(self.stage.calib, settings, op_type, kept))
            sets.append(alone)
        for scheme in options:
            scheme.on_progress, scheme.why = progress, base.why
        return options

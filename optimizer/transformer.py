"""Transformer (BERT-style) fuse and INT8 stages: ORT's transformer fusions and an accuracy-kept INT8 policy.

Fusion: `onnxruntime.transformers.optimizer.optimize_model(model_type="bert")` rewrites the exported
graph into `com.microsoft` ops (Attention, EmbedLayerNormalization, SkipLayerNormalization,
BiasGelu) that ONNX Runtime's CPU build runs. It must see the exporter's graph: after onnxslim
the attention pattern no longer matches (measured: 0 Attention nodes), so this stage replaces the
generic fuse stage for transformers. The output is checked against the unfused model.

INT8 policy: quantize only MatMul/Gemm (the weight-heavy parts); Softmax, LayerNorm, the
embedding lookups and the fused Attention stay FP32. Measured on the test encoder's unfused
graph: quantizing every op type quantize_static knows dropped top-1 agreement to 36%, MatMul/Gemm
only kept 99.9%; on the fused graph MatMul/Gemm keeps 100%. If the measured drift still misses
the budget, a sensitivity loop ranks the quantized nodes by the drift each causes alone and
keeps the worst in FP32 until the budget holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.export import check_onnx
from optimizer.fuse import name_nodes, op_type_counts
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from quantserve.metrics import cosine_similarity
from quantserve.runner import run_batches

MODEL_TYPES = ("bert",)
TRANSFORMER_OP_TYPES = ("MatMul", "Gemm")
FUSED_OP_TYPES = ("Attention", "EmbedLayerNormalization", "SkipLayerNormalization", "LayerNormalization", "BiasGelu")


class FuseTransformer:
    """ORT transformer fusions on an exported encoder, proven output-equal on `check_inputs`."""

    def __init__(
        self,
        num_heads: int = 0,
        hidden_size: int = 0,
        model_type: str = "bert",
        opt_level: int = 0,
        check_inputs: dict[str, np.ndarray] | None = None,
        rtol: float = 1e-3,
        atol: float = 1e-4,
    ) -> None:
        if model_type not in MODEL_TYPES:
            raise QuantserveError(f"unknown transformer model type '{model_type}'; choose one of: {MODEL_TYPES}")
        self.num_heads, self.hidden_size = num_heads, hidden_size  # 0: detected from the graph
        self.model_type = model_type
        self.opt_level = opt_level  # 0: fusions only, portable; ≥1 also bakes ORT's CPU-specific rewrites in
        self.check_inputs = check_inputs
        self.rtol, self.atol = rtol, atol

    def __call__(self, artifact: Artifact, out_path: Path) -> Artifact:
        before = onnx.load(str(artifact.path))
        fused = self._optimize(artifact.path)
        name_nodes(fused)
        onnx.save(fused, str(out_path))
        check_onnx(Path(out_path))
        feeds = self.check_inputs or _token_feeds(artifact)
        worst = max_output_difference(artifact.path, Path(out_path), feeds, self.rtol, self.atol)
        counts = op_type_counts(fused)
        record = {
            "stage": "fuse",
            "tool": "onnxruntime.transformers.optimizer",
            "model_type": self.model_type,
            "num_heads": self.num_heads,
            "hidden_size": self.hidden_size,
            "opt_level": self.opt_level,
            "nodes_before": len(before.graph.node),
            "nodes_after": len(fused.graph.node),
            "op_types_before": op_type_counts(before),
            "op_types_after": counts,
            "fused": {op: counts.get(op, 0) for op in FUSED_OP_TYPES},
            "max_abs_diff": worst,
        }
        return artifact.with_stage(out_path, record)

    def _optimize(self, path: Path) -> onnx.ModelProto:
        from onnxruntime.transformers.optimizer import optimize_model

        try:
            with _quiet_ort_transformers():
                optimized = optimize_model(
                    str(path),
                    model_type=self.model_type,
                    num_heads=self.num_heads,
                    hidden_size=self.hidden_size,
                    opt_level=self.opt_level,
                )
        except Exception as exc:  # the fusion scripts raise plain exceptions on graphs they cannot read
            raise QuantserveError(f"{path}: transformer fusion failed ({type(exc).__name__}: {exc})") from exc
        model = optimized.model
        if not any(o.domain == "com.microsoft" for o in model.opset_import):  # ORT adds it only on save
            model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
        return model


@contextlib.contextmanager
def _quiet_ort_transformers() -> Iterator[None]:
    """ORT's fusion scripts log every pattern they try; keep only errors."""
    logger = logging.getLogger("onnxruntime.transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _token_feeds(artifact: Artifact, batch: int = 4, length: int = 16) -> dict[str, np.ndarray]:
    """Valid token inputs when no data is given: ids 1..9, mask of ones, token types of zeros."""
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in artifact.manifest.inputs:
        shape = [batch, *[d if isinstance(d, int) else length for d in spec.shape[1:]]]
        if "mask" in spec.name:
            feeds[spec.name] = np.ones(shape, dtype=spec.dtype)
        elif "type" in spec.name:
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
        else:
            feeds[spec.name] = rng.integers(1, 10, size=shape).astype(spec.dtype)
    return feeds


def max_output_difference(
    reference: Path, candidate: Path, feeds: dict[str, np.ndarray], rtol: float, atol: float
) -> float:
    """Largest absolute difference over all outputs; a QuantserveError if any output leaves rtol/atol."""
    expected, got = run_model(reference, feeds), run_model(candidate, feeds)
    worst = 0.0
    for name, want in expected.items():
        diff = float(np.abs(got[name].astype(np.float64) - want).max(initial=0.0))
        worst = max(worst, diff)
        if not np.allclose(got[name], want, rtol=rtol, atol=atol):
            raise QuantserveError(
                f"transformer-fused output '{name}' differs from the unfused model by up to {diff:.3g} "
                f"(rtol={rtol}, atol={atol})"
            )
    return worst


def run_model(path: Path, feeds: dict[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
    """All outputs of an ONNX model over `feeds`, run in ONNX Runtime in batches and concatenated."""
    data = TensorData(feeds)
    with OnnxRuntimeRunner(path) as runner:
        return run_batches(runner, data.batches(batch_size))


@dataclass(frozen=True)
class DriftBudget:
    """How much INT8 may drift from FP32: top-1 agreement for classifier outputs, cosine for the rest."""

    top1_agreement: float = 0.99
    mean_cosine: float = 0.99
    classifier_outputs: tuple[str, ...] = ("logits",)

    def measure(self, expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, Any]:
        """Per-output drift: `top1_agreement` for classifier outputs, `mean/worst_cosine` for every output."""
        drift: dict[str, Any] = {}
        for name, want in expected.items():
            flat_want, flat_got = want.reshape(len(want), -1), got[name].reshape(len(want), -1)
            cosines = cosine_similarity(flat_want, flat_got)
            record = {"mean_cosine": float(cosines.mean()), "worst_cosine": float(cosines.min())}
            if name in self.classifier_outputs:
                record["top1_agreement"] = float(np.mean(flat_want.argmax(1) == flat_got.argmax(1)))
            drift[name] = record
        return drift

    def holds(self, drift: dict[str, Any]) -> bool:
        """True when every classifier output agrees enough and every other output is cosine-close enough."""
        for name, record in drift.items():
            if name in self.classifier_outputs and record["top1_agreement"] < self.top1_agreement:
                return False
            if name not in self.classifier_outputs and record["mean_cosine"] < self.mean_cosine:
                return False
        return True

    def score(self, drift: dict[str, Any]) -> float:
        """One number to rank by (higher is closer to FP32): the worst margin over the budget."""
        margins = [
            r["top1_agreement"] - self.top1_agreement if n in self.classifier_outputs else r["mean_cosine"] - 1.0
            for n, r in drift.items()
        ]
        return min(margins)


def quantizable_nodes(model: onnx.ModelProto, op_types: Sequence[str] = TRANSFORMER_OP_TYPES) -> list[str]:
    """Names of the nodes the policy would quantize, in graph order."""
    return [node.name for node in model.graph.node if node.op_type in op_types]


class CalibrateTransformerInt8:
    """INT8 for transformers: MatMul/Gemm in Q/DQ, then keep the most sensitive nodes FP32 until within budget."""

    def __init__(
        self,
        calib: TensorData,
        held_out: TensorData,
        settings: CalibrationSettings | None = None,
        budget: DriftBudget | None = None,
        max_excluded: int | None = None,
    ) -> None:
        base = settings or CalibrationSettings()
        self.settings = dataclasses.replace(
            base, op_types_to_quantize=base.op_types_to_quantize or TRANSFORMER_OP_TYPES
        )
        self.calib, self.held_out = calib, held_out
        self.budget = budget or DriftBudget()
        self.max_excluded = max_excluded

    def __call__(self, artifact: Artifact, out_path: Path) -> Artifact:
        self._reference = run_model(artifact.path, self.held_out.arrays)
        self._budget = self._budget_for(self._reference)
        excluded = list(self.settings.nodes_to_exclude)
        steps = [self._try(artifact, out_path, excluded)]
        if not steps[-1]["within_budget"]:
            for node in self._by_sensitivity(artifact, out_path, excluded):
                excluded.append(node)
                steps.append(self._try(artifact, out_path, excluded))
                if steps[-1]["within_budget"]:
                    break
        result = self._quantize(artifact, out_path, excluded)  # the chosen model ends at out_path
        policy = {
            "policy": "transformer",
            "budget": dataclasses.asdict(self._budget),
            "kept_fp32": excluded,
            "drift": steps[-1]["drift"],
            "within_budget": steps[-1]["within_budget"],
            "sensitivity_steps": steps,
        }
        result.manifest.stages[-1].update(policy)
        return result

    def _budget_for(self, reference: dict[str, np.ndarray]) -> DriftBudget:
        """The budget with its classifier outputs narrowed to outputs this model has (default: the first)."""
        named = tuple(n for n in self.budget.classifier_outputs if n in reference)
        return dataclasses.replace(self.budget, classifier_outputs=named or (next(iter(reference)),))

    def _quantize(self, artifact: Artifact, out_path: Path, excluded: Sequence[str]) -> Artifact:
        settings = dataclasses.replace(self.settings, nodes_to_exclude=tuple(excluded))
        return CalibrateInt8(self.calib, settings)(artifact, out_path)

    def _try(self, artifact: Artifact, out_path: Path, excluded: Sequence[str]) -> dict[str, Any]:
        """Quantize with `excluded` kept FP32 and measure drift on the held-out data."""
        quantized = self._quantize(artifact, out_path, excluded)
        drift = self._budget.measure(self._reference, run_model(quantized.path, self.held_out.arrays))
        return {"kept_fp32": list(excluded), "drift": drift, "within_budget": self._budget.holds(drift)}

    def _by_sensitivity(self, artifact: Artifact, out_path: Path, excluded: Sequence[str]) -> list[str]:
        """Candidate nodes, most drift-causing first: each is quantized alone and its drift scored."""
        candidates = [n for n in quantizable_nodes(onnx.load(str(artifact.path))) if n not in excluded]
        scores = {}
        for node in candidates:
            others = [*excluded, *(c for c in candidates if c != node)]
            scores[node] = self._budget.score(self._try(artifact, out_path, others)["drift"])
        ranked = sorted(candidates, key=lambda n: scores[n])
        return ranked[: self.max_excluded] if self.max_excluded is not None else ranked


@dataclass(frozen=True)
class TransformerSettings:
    """What `optimize --model-type bert` adds: the encoder's shape for fusion and the INT8 drift budget."""

    model_type: str = "bert"
    num_heads: int = 0  # 0: detected from the graph
    hidden_size: int = 0
    budget: DriftBudget = DriftBudget()

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise QuantserveError(f"unknown model type '{self.model_type}'; choose one of: {', '.join(MODEL_TYPES)}")
        if self.num_heads < 0 or self.hidden_size < 0 or (self.num_heads and self.hidden_size % self.num_heads):
            raise QuantserveError(
                f"hidden size {self.hidden_size} must be a non-negative multiple of num heads {self.num_heads}"
            )

    def fuse_stage(self, check_inputs: dict[str, np.ndarray] | None) -> FuseTransformer:
        """The fuse stage the pipeline runs instead of the generic one."""
        return FuseTransformer(self.num_heads, self.hidden_size, self.model_type, check_inputs=check_inputs)

    def int8_stage(
        self, calib: TensorData, held_out: TensorData, settings: CalibrationSettings
    ) -> CalibrateTransformerInt8:
        """The calibrate stage the pipeline runs instead of the generic one."""
        return CalibrateTransformerInt8(calib, held_out, settings, self.budget)

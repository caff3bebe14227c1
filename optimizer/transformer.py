"""Transformer (BERT-style) fuse and INT8 stages: ORT's transformer fusions and an accuracy-kept INT8 policy.

Fusion: `onnxruntime.transformers.optimizer.optimize_model(model_type="bert")` rewrites the exported
graph into `com.microsoft` ops (Attention, EmbedLayerNormalization, SkipLayerNormalization,
BiasGelu) that ONNX Runtime's CPU build runs. It must see the exporter's graph: after onnxslim
the attention pattern no longer matches (measured: 0 Attention nodes), so this stage replaces the
generic fuse stage for transformers. The output is checked against the unfused model.

INT8: encoders are recognised from the graph (`detect_encoder`; `--model-type` forces it) and go
through the INT8 search (`optimizer.int8_search`): static Q/DQ of MatMul/Gemm only (Softmax,
LayerNorm, the embedding lookups and the fused Attention stay FP32; measured on the test encoder's
unfused graph, quantizing every op type dropped top-1 agreement to 36 %, MatMul/Gemm only kept
99.9 %) beside ONNX Runtime's dynamic INT8, then mixed precision by drift per millisecond. The
former node-by-node sensitivity loop kept 17 of 18 MatMuls FP32 on a 6-layer encoder (0.94× after
3 min 50 s); the search is bounded to a minute.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from optimizer import onnx_files
from optimizer.export import defaulted_inputs
from optimizer.fuse import (
    FuseGraph,
    FusionChanged,
    check_inputs_kept,
    fused_rows,
    input_names,
    name_nodes,
    op_type_counts,
)
from optimizer.onnx_input import check_onnx
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from quantserve.runner import run_batches

MODEL_TYPES = ("bert",)
TRANSFORMER_OP_TYPES = ("MatMul", "Gemm")
ATTENTION_OP_TYPES = frozenset({"Attention", "MultiHeadAttention", "EmbedLayerNormalization", "SkipLayerNormalization"})
SCORE_OPS = frozenset({"Add", "Div", "Mul", "Where", "Sub", "Cast"})
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
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """`on_step` hears each step as it starts ("fuse: ONNX Runtime's bert fusions"; optimize's progress line), as
        the generic stage's does: on a large encoder the fusions run minutes."""
        if model_type not in MODEL_TYPES:
            raise QuantserveError(f"unknown transformer model type '{model_type}'; choose one of: {MODEL_TYPES}")
        self.num_heads, self.hidden_size = num_heads, hidden_size  # 0: detected from the graph
        self.model_type = model_type
        self.opt_level = opt_level  # 0: fusions only, portable; ≥1 also bakes ORT's CPU-specific rewrites in
        self.check_inputs = check_inputs
        self.rtol, self.atol = rtol, atol
        self.on_step = on_step

    def __call__(self, artifact: Artifact, out_path: Path) -> Artifact:
        """The transformer-fused model at `out_path`; where ORT's fusion scripts fail on the graph or their model
        answers otherwise, the generic fuse stage's (`FuseGraph`) instead, its record noting why."""
        try:
            return self._fused(artifact, out_path)
        except FusionChanged as failed:
            self._step("the transformer fusions failed: onnxslim's instead")
            generic = FuseGraph(self.check_inputs, self.rtol, self.atol, on_step=self.on_step)(artifact, out_path)
            record = generic.manifest.stages[-1]
            why = f"ONNX Runtime's transformer fusion skipped: {failed}; onnxslim's fusions only"
            skipped = record.get("unfused")  # onnxslim failed too: both said, the unfused graph goes on
            record["unfused"] = {
                "reason": f"{failed}{'; ' + skipped['reason'] if skipped else ''}",
                "note": f"{why}{' — ' + skipped['note'] if skipped else ''}",
            }
            return generic

    def _fused(self, artifact: Artifact, out_path: Path) -> Artifact:
        before = onnx.load(str(artifact.path), load_external_data=False)  # its nodes are counted, nothing more
        self._step(f"ONNX Runtime's {self.model_type} fusions")
        fused = self._optimize(artifact.path)
        folded = check_inputs_kept(input_names(before), defaulted_inputs(before), input_names(fused))
        name_nodes(fused)
        counts, nodes_after = op_type_counts(fused), len(fused.graph.node)
        onnx_files.save(fused, out_path, keep_weights=False)
        del fused
        self._step("checking the fused graph")
        check_onnx(Path(out_path))
        feeds = self.check_inputs or _token_feeds(artifact)
        self._step(f"proving outputs unchanged on {fused_rows(feeds)}")
        worst = max_output_difference(artifact.path, Path(out_path), feeds, self.rtol, self.atol)
        record = {
            "stage": "fuse",
            "tool": "onnxruntime.transformers.optimizer",
            "model_type": self.model_type,
            "num_heads": self.num_heads,
            "hidden_size": self.hidden_size,
            "opt_level": self.opt_level,
            "nodes_before": len(before.graph.node),
            "nodes_after": nodes_after,
            "op_types_before": op_type_counts(before),
            "op_types_after": counts,
            "fused": {op: counts.get(op, 0) for op in FUSED_OP_TYPES},
            "max_abs_diff": worst,
        }
        if folded:
            record["defaults_folded"] = folded
        return artifact.with_stage(out_path, record)

    def _step(self, text: str) -> None:
        if self.on_step is not None:
            self.on_step(f"fuse: {text}")

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
            raise FusionChanged(f"the fusion scripts failed on the graph ({type(exc).__name__}: {exc})") from exc
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
    """Largest absolute difference over all outputs; FusionChanged if any output leaves rtol/atol."""
    expected, got = run_model(reference, feeds), run_model(candidate, feeds)
    worst = 0.0
    for name, want in expected.items():
        diff = float(np.abs(got[name].astype(np.float64) - want).max(initial=0.0))
        worst = max(worst, diff)
        if not np.allclose(got[name], want, rtol=rtol, atol=atol):
            raise FusionChanged(
                f"transformer-fused output '{name}' differs from the unfused model by up to {diff:.3g} "
                f"(rtol={rtol}, atol={atol})"
            )
    return worst


def run_model(path: Path, feeds: dict[str, np.ndarray] | TensorData, batch_size: int = 64) -> dict[str, np.ndarray]:
    """All outputs of an ONNX model over `feeds`, run in ONNX Runtime in batches and concatenated; given as TensorData,
    an --unbatched set runs as its requests (`TensorData.request`: a whole sample where it has one axis more)."""
    data = feeds if isinstance(feeds, TensorData) else TensorData(feeds)
    with OnnxRuntimeRunner(path) as runner:
        return run_batches(runner, data.batches(batch_size), data.requests.whole)


def quantizable_nodes(model: onnx.ModelProto, op_types: Sequence[str] = TRANSFORMER_OP_TYPES) -> list[str]:
    """Names of the nodes the policy would quantize, in graph order."""
    return [node.name for node in model.graph.node if node.op_type in op_types]


def detect_encoder(model: onnx.ModelProto) -> str | None:
    """Why this graph is a transformer encoder (fused attention ops, Softmax over a MatMul of two
    activations beside layer norms, or int64 `input_ids` + `attention_mask` inputs), or None."""
    ops = {node.op_type for node in model.graph.node}
    fused = sorted(ops & ATTENTION_OP_TYPES)
    if fused:
        return f"fused transformer ops: {', '.join(fused)}"
    if _softmax_over_matmul(model) and ops & {"LayerNormalization", "ReduceMean", "SkipLayerNormalization"}:
        return "Softmax over a MatMul of two activations (attention scores) beside layer normalization"
    int64 = [i.name for i in model.graph.input if i.type.tensor_type.elem_type == onnx.TensorProto.INT64]
    if any("input_ids" in n for n in int64) and any("attention_mask" in n for n in int64):
        return "int64 inputs input_ids and attention_mask"
    return None


def unfused_encoder(model: onnx.ModelProto) -> bool:
    """A transformer encoder (`detect_encoder`) whose attention ONNX Runtime has not fused yet: `--model-type bert`
    would fuse it (rxnfp's 12-layer BERT: 882 nodes to 93, its INT8 search out of its 300 s unfused, session 61)."""
    ops = {node.op_type for node in model.graph.node}
    return not ops & ATTENTION_OP_TYPES and detect_encoder(model) is not None


def _softmax_over_matmul(model: onnx.ModelProto, steps: int = 4) -> bool:
    """A Softmax reached from a MatMul of two non-constant inputs through at most `steps` scale/mask ops."""
    constants = {i.name for i in model.graph.initializer}
    constants.update(o for n in model.graph.node if n.op_type == "Constant" for o in n.output)
    producers = {out: node for node in model.graph.node for out in node.output}
    for softmax in (n for n in model.graph.node if n.op_type == "Softmax"):
        frontier = [softmax.input[0]]
        for _ in range(steps):
            nodes = [producers[t] for t in frontier if t in producers]
            if any(n.op_type == "MatMul" and not constants.intersection(n.input) for n in nodes):
                return True
            frontier = [t for n in nodes if n.op_type in SCORE_OPS for t in n.input]
    return False


@dataclass(frozen=True)
class TransformerSettings:
    """What `optimize --model-type bert` adds: the encoder's shape for fusion (INT8 then treats it as an encoder)."""

    model_type: str = "bert"
    num_heads: int = 0  # 0: detected from the graph
    hidden_size: int = 0

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise QuantserveError(f"unknown model type '{self.model_type}'; choose one of: {', '.join(MODEL_TYPES)}")
        if self.num_heads < 0 or self.hidden_size < 0 or (self.num_heads and self.hidden_size % self.num_heads):
            raise QuantserveError(
                f"hidden size {self.hidden_size} must be a non-negative multiple of num heads {self.num_heads}"
            )

    def fuse_stage(
        self, check_inputs: dict[str, np.ndarray] | None, on_step: Callable[[str], None] | None = None
    ) -> FuseTransformer:
        """The fuse stage the pipeline runs instead of the generic one (`on_step`: its steps as they start)."""
        return FuseTransformer(
            self.num_heads, self.hidden_size, self.model_type, check_inputs=check_inputs, on_step=on_step
        )

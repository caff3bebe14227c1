"""Fuse stage: constant folding, Conv+BatchNormalization folding, Gemm/MatMul+Add and other graph fusions.

Tool: onnxslim. It rewrites the graph with standard ONNX ops only, so its output stays portable:
TensorRT's parser and `quantize_static` accept it, and the file is the same on any CPU. ONNX
Runtime's offline optimizer at EXTENDED/ALL writes `com.microsoft` fused ops (FusedConv, NCHWc
layouts) that TensorRT and the quantizer reject and that are tied to the machine that wrote them;
at BASIC it adds little over onnxslim. ORT still applies its own fusions at session creation.
The fused model is checked against the unfused one on the same inputs before it is accepted.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import onnx_files
from optimizer.export import defaulted_inputs
from optimizer.graph_walk import walk_graphs
from optimizer.nan_outputs import nan_alike_difference
from optimizer.onnx_input import check_onnx
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.artifact import Artifact, TensorSpec
from quantserve.errors import QuantserveError

CHECK_BATCH = 4
# A float16 graph's outputs move by float16 rounding (eps 9.8e-4) when fusion reorders its arithmetic.
FLOAT16_TOLERANCE = (1e-2, 1e-3)  # rtol, atol
DYNAMIC_AXIS_LENGTH = 8


class FusionChanged(QuantserveError):
    """The fused model answers otherwise than the unfused one on the same inputs."""


class FuseGraph:
    """Slim an ONNX artifact with onnxslim and prove the outputs unchanged within rtol/atol."""

    def __init__(
        self,
        check_inputs: dict[str, np.ndarray] | None = None,
        rtol: float = 1e-3,
        atol: float = 1e-4,
        unbatched: bool = False,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """`unbatched` (optimize --unbatched): the fused model's axis 0 is not required dynamic (`check_onnx`).
        `on_step` hears each step as it starts ("fuse: onnxslim"; optimize's progress line): on a 44 M-parameter
        ISNet at 1024² the stage ran 12 minutes saying only "fuse"."""
        self.check_inputs = check_inputs
        self.rtol = rtol
        self.atol = atol
        self.unbatched = unbatched
        self.on_step = on_step

    def __call__(self, artifact: Artifact, out_path: Path) -> Artifact:
        """The fused model at `out_path`; where onnxslim fails on the graph or its fused model answers otherwise
        (afis's LEADER: a heatmap moved 0.97, 39 minutiae became 30), the unfused graph instead, with a note why."""
        import onnxslim

        self._step("onnxslim")
        before = onnx.load(str(artifact.path))
        counts_before = op_type_counts(before)
        inputs_before, defaults = input_names(before), defaulted_inputs(before)
        declared = output_dim_names(before)
        try:
            fused = onnxslim.slim(before)
        except Exception as exc:  # onnxslim raises plain exceptions on graphs it cannot handle
            del before
            return self._unfused(artifact, out_path, f"onnxslim failed on the graph ({type(exc).__name__}: {exc})")
        del before  # a model's weights held once less from here on (2.2 GB for the large MLP in BENCHMARKS.md)
        try:
            folded = check_inputs_kept(inputs_before, defaults, input_names(fused))
        except FusionChanged as changed:
            del fused
            return self._unfused(artifact, out_path, f"onnxslim's {changed}")
        name_nodes(fused)
        canonical_dim_names(fused, declared)
        onnx_files.save(fused, out_path, keep_weights=False)
        del fused
        # onnxslim's graph leaves both models in reference cycles: without a collection they stayed alive through the
        # INT8 stage (2 × the weights: 0.6 GB of a 302 MB MLP, until Python's own collection came round)
        gc.collect()
        self._step("checking the fused graph")
        counts_after = op_type_counts(check_onnx(Path(out_path), batched=not self.unbatched))
        feeds = self.check_inputs or random_feeds(artifact.manifest.inputs)
        half = any(stage.get("float16_weights") for stage in artifact.manifest.stages)
        self._step(f"proving outputs unchanged on {fused_rows(feeds)}")
        try:
            worst = self._compare(artifact.path, Path(out_path), feeds, *(FLOAT16_TOLERANCE if half else ()))
        except FusionChanged as changed:
            return self._unfused(artifact, out_path, f"onnxslim's {changed}")
        record = fuse_record(counts_before, counts_after, worst)
        if folded:
            record["defaults_folded"] = folded
        return artifact.with_stage(out_path, record)

    def _step(self, text: str) -> None:
        if self.on_step is not None:
            self.on_step(f"fuse: {text}")

    def _unfused(self, artifact: Artifact, out_path: Path, reason: str) -> Artifact:
        """The exported graph as the fuse stage's result (nodes named for calibration), recorded and noted with
        `reason`: a fusion that breaks or changes the model is no reason to refuse it; ONNX Runtime still applies
        its own fusions, proven by its sessions, when it loads the model."""
        self._step("keeping the unfused graph")
        model = onnx.load(str(artifact.path))
        name_nodes(model)
        counts = op_type_counts(model)
        onnx_files.save(model, out_path, keep_weights=False)
        del model
        check_onnx(Path(out_path), batched=not self.unbatched)
        note = f"graph fusion skipped: {reason}; the unfused graph goes on (ONNX Runtime still fuses it when it loads)"
        return artifact.with_stage(
            out_path, {**fuse_record(counts, counts, 0.0), "unfused": {"reason": reason, "note": note}}
        )

    def _compare(
        self, reference: Path, fused: Path, feeds: dict[str, np.ndarray], rtol: float = 0.0, atol: float = 0.0
    ) -> float:
        """Largest absolute output difference; FusionChanged if any output leaves rtol/atol (at least the stage's
        own)."""
        rtol, atol = max(rtol, self.rtol), max(atol, self.atol)
        with OnnxRuntimeRunner(reference, "disable") as ref:  # one session at a time: each holds the weights
            expected = ref.infer(feeds)
        with OnnxRuntimeRunner(fused, "disable") as new:
            got = new.infer(feeds)
        worst = 0.0
        for name, want in expected.items():
            if not _numeric(want) or not _numeric(got[name]):  # string labels (an sklearn classifier's): equal or not
                if want.shape != got[name].shape or not np.array_equal(want, got[name]):
                    raise FusionChanged(f"fused model's output '{name}' differs from the unfused model's")
                continue
            worst = max(worst, nan_alike_difference(want, got[name]))  # a NaN in both alike (a 0/0 on silence)
            if not np.allclose(got[name], want, rtol=rtol, atol=atol, equal_nan=True):
                raise FusionChanged(
                    f"fused model's output '{name}' differs from the unfused model by up to {worst:.3g} "
                    f"(rtol={rtol}, atol={atol})"
                )
        return worst


def fuse_record(before: dict[str, int], after: dict[str, int], worst: float) -> dict[str, Any]:
    """The fuse stage's manifest record: node counts by op type before and after, the largest output difference."""
    return {
        "stage": "fuse",
        "tool": "onnxslim",
        "nodes_before": sum(before.values()),
        "nodes_after": sum(after.values()),
        "op_types_before": before,
        "op_types_after": after,
        "max_abs_diff": worst,
    }


def fused_rows(feeds: dict[str, np.ndarray]) -> str:
    """'8 rows' for feeds of 8 rows along axis 0; 'one request' for rank-0 inputs alone (an --unbatched build's)."""
    rows = max((int(np.shape(value)[0]) for value in feeds.values() if np.ndim(value)), default=0)
    return f"{rows} rows" if rows > 1 else f"{rows} row" if rows else "one request"


def _numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "biufc"


def input_names(model: onnx.ModelProto) -> list[str]:
    """Every name the graph lists as an input, defaulted ones (an initializer of the same name) included."""
    return [value.name for value in model.graph.input]


def check_inputs_kept(before: list[str], defaults: list[str], after: list[str]) -> list[str]:
    """The defaulted inputs fusion folded (recorded, and already announced by the export stage); FusionChanged
    when it dropped, added or renamed any other input: the served model must take what the manifest lists."""
    dropped = [name for name in before if name not in after and name not in defaults]
    added = [name for name in after if name not in before]
    if dropped or added:
        change = f"dropped {dropped}" if dropped else f"added {added}"
        raise FusionChanged(f"fusion changed the model's inputs ({change}; before: {before}, after: {after})")
    return [name for name in defaults if name not in after]


def name_nodes(model: onnx.ModelProto) -> None:
    """Name unnamed nodes `<OpType>_<index>` so calibration can exclude nodes by name."""
    taken = {node.name for node in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            node.name = candidate if candidate not in taken else f"{candidate}_unnamed"
            taken.add(node.name)


def output_dim_names(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Each graph output's symbolic axis names as the model declares them ('' where an axis has none)."""
    return {value.name: [dim.dim_param for dim in value.type.tensor_type.shape.dim] for value in model.graph.output}


def canonical_dim_names(model: onnx.ModelProto, declared: dict[str, list[str]]) -> None:
    """Rename, in place, the symbolic axes onnxslim named, so the same model slims to the same bytes in any process.

    onnxslim's shape inference merges axes it proves equal and names each merged group after one member, picked
    by iterating a set() of strings (`add_suggested_merge`): the pick follows PYTHONHASHSEED. Session 41: a Keras
    BERT (g2p-id-py's bert_mlm.onnx) optimized twice gave fp32.onnx files differing only in such names
    ('Reshape_159_o0__d0' against 'Reshape_163_o0__d0'), so its sha256, the build's source identity, differed and
    evaluate and report called the INT8 and FP32 builds "different models". Which axes are merged does not
    depend on the set order, only the name kept, so the names are canonicalized after the fact rather than onnxslim
    run in a child process with a fixed seed (a second load of the weights, up to 2.2 GB): the graph inputs' names
    stay (they are the served model's axes); an output axis the model declared takes its declared name back;
    every other name becomes `unk__<k>`, numbered by first appearance in the outputs, then in value_info, then in
    subgraphs. Axes equal before stay equal after and no two groups share a name, so the shapes say the same."""
    kept = {dim.dim_param for value in model.graph.input for dim in value.type.tensor_type.shape.dim if dim.dim_param}
    rename = _declared_output_names(model, declared, kept)
    taken = kept | set(rename.values())
    counter = 0
    values = [*model.graph.output, *model.graph.value_info, *_subgraph_values(model.graph)]
    for value in values:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.dim_param or dim.dim_param in kept:
                continue
            if dim.dim_param not in rename:
                while f"unk__{counter}" in taken:
                    counter += 1
                rename[dim.dim_param] = f"unk__{counter}"
                taken.add(rename[dim.dim_param])
            dim.dim_param = rename[dim.dim_param]


def _declared_output_names(model: onnx.ModelProto, declared: dict[str, list[str]], kept: set[str]) -> dict[str, str]:
    """onnxslim's name -> the name the model declared at the same output axis; first come first named, so that
    no two merged groups take one name, and no input's name is given to an axis the inputs do not have."""
    rename: dict[str, str] = {}
    for value in model.graph.output:
        for dim, name in zip(value.type.tensor_type.shape.dim, declared.get(value.name, []), strict=False):
            free = name and name not in kept and name not in rename.values()
            if free and dim.dim_param and dim.dim_param not in kept and dim.dim_param not in rename:
                rename[dim.dim_param] = name
    return rename


def _subgraph_values(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The inputs, outputs and value_info of every subgraph (If, Loop, Scan bodies), each before the ones it holds."""
    bodies = [scope.graph for scope in walk_graphs(graph) if scope.owner is not None]
    return [value for body in bodies for value in (*body.input, *body.output, *body.value_info)]


def op_type_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Node counts by op type, most frequent first."""
    return dict(Counter(node.op_type for node in model.graph.node).most_common())


def random_feeds(inputs: list[TensorSpec], seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs shaped like the specs: floats in [0, 1), integers in [0, 2) (a safe token id)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        shape = [
            CHECK_BATCH if i == 0 else (d if isinstance(d, int) else DYNAMIC_AXIS_LENGTH)
            for i, d in enumerate(spec.shape)
        ]
        dtype = np.dtype(spec.dtype)
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.random(shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
    return feeds

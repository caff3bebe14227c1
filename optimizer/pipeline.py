"""The optimize pipeline: export → fuse → (INT8) → build for a target → verify drift → time → manifest.json.

Everything is written into a hidden sibling folder and renamed into place at the end (`optimizer.atomic_output`),
so a failed run leaves no half-written output and an existing output is replaced only after success — also
when INT8 misses the drift budget or runs slower than FP32 (BudgetExceeded, exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import calib_cache, onnx_files
from optimizer.atomic_output import check_output_folder, run_atomically
from optimizer.batch_advice import UNBATCHED_ROUTE, selection_advice
from optimizer.batch_axis import (
    answered_values,
    checking_session,
    dependent_rows,
    sizes_fixed_in_graph,
    unbatched_output,
)
from optimizer.data_names import check_names_before_export
from optimizer.declared_dims import (
    declare_ranks,
    ranked_note,
    ranked_specs,
    redeclare,
    redeclared_note,
    redeclared_specs,
    shipped_specs,
    stale_axes,
    unranked,
)
from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_evidence import evidence_rows
from optimizer.early_evidence import early_evidence_refusal
from optimizer.export import ExportOnnx, refuse_quantized
from optimizer.fuse import FuseGraph
from optimizer.gated_maps import check_gates
from optimizer.gather_indices import negative_ids_refusal
from optimizer.graph_words import read_graph_words, words_record
from optimizer.holdout import check_row_sources, no_calib_note, split_holdout
from optimizer.nan_inputs import NAN_INPUTS, accepted_nan_inputs, int8_nan_refusal
from optimizer.nan_outputs import nan_refusal
from optimizer.optimize_options import OptimizeOptions
from optimizer.quant_exclusions import graph_no_compute_refusal, no_compute_refusal
from optimizer.sample_axis import graph_packed_refusal
from optimizer.source import load_source
from optimizer.state_loop import StatePair, find_state_pairs
from optimizer.targets import PRECISIONS, EngineTarget, fp16_refusal, get_target, target_mismatch
from optimizer.timing_rows import Footprint, footprint_record, start_fp32_footprint
from optimizer.token_lengths import LENGTH_INPUT, told_length
from optimizer.token_values import token_positions
from optimizer.unbatched import check_requests, request_specs
from optimizer.user_metric import UserMetric
from optimizer.value_length_int8 import lengths_vary_per_request, per_request_int8
from optimizer.verify_and_time import VerifyAndTime
from quantserve.artifact import (
    BATCHING,
    GRAPH_OUTPUTS,
    MODEL_SHA256,
    NO_BATCHING,
    REQUESTS,
    STATE_PAIRS,
    TYPED_KINDS,
    WHOLE_SAMPLES,
    Artifact,
    Manifest,
    file_sha256,
)
from quantserve.data import TensorData, check_against, load_npz
from quantserve.errors import QuantserveError
from quantserve.finite_data import NanAccepted

MODEL_FILE = "model.onnx"
REFERENCE_FILE = "fp32.onnx"


@dataclass
class OptimizeJob(VerifyAndTime):
    """One run: the options plus what was loaded and checked from them; `run` does the stages in a staging folder."""

    options: OptimizeOptions
    engine: EngineTarget
    calib: TensorData  # the calibration samples (held-out part removed)
    held_out: TensorData  # verification samples
    held_out_source: str  # where `held_out` came from, as the manifest records it
    user_metric: UserMetric | None = None
    data_files: list[tuple[str | Path, TensorData]] = field(default_factory=list)  # as loaded, checked after export
    state_pairs: list[StatePair] = field(default_factory=list)  # recurrent state, verified as a stream too
    stale_outputs: dict[str, list[int]] = field(default_factory=dict)  # declared sizes not answered (`declared_dims`)
    unranked: dict[str, int] = field(default_factory=dict)  # outputs declared rank 0 → the rank answered
    unranked_note: str = ""
    stale_note: str = ""
    nan_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # NaN the FP32 model answers (`nan_inputs`)
    lengths_vary: bool = False  # INT8 answers whose length follows the values: probed once, before fuse (keeps them)

    def run(self, staging: Path, work: Path) -> Artifact:
        """export → fuse → (calibrate) → build → verify → time; writes fp32.onnx, the model and manifest.json."""
        exported = self._export(work / "exported.onnx")
        self.options.progress("fuse")
        check_inputs = next(self.calib.batches(8))
        self.options.progress("fuse: checking axis 0 on the data")  # ONNX Runtime runs rows together and alone
        self._check_rows(exported, check_inputs)
        self._check_evidence(exported.path)
        transformer = self.options.transformer
        unbatched = self.options.unbatched
        fuse = (
            FuseGraph(check_inputs, unbatched=unbatched, on_step=self.options.progress)
            if transformer is None
            else transformer.fuse_stage(check_inputs, on_step=self.options.progress)
        )
        fused = fuse(exported, staging / REFERENCE_FILE)
        measuring = self._start_footprint(fused.path)
        self.state_pairs = find_state_pairs(fused.path, self.options.state)  # a bad --state fails before calibrating
        onnx_model = self._lower_precision(fused, work)
        self.options.progress("build")
        built = self.engine.build(onnx_model, staging)
        if built.manifest.target != self.engine.name:  # deploy lays a build out by its recorded target alone
            raise QuantserveError(target_mismatch(self.engine.name, built.manifest.target))
        built.manifest.verification = self._verify(fused.path, onnx_model.path, onnx_model.manifest.stages)
        if self.options.calib_path is None:  # said in the build's record: its rows were --eval's, for every check
            note = no_calib_note(
                built.manifest.precision or self.options.precision, self.held_out, measuring is not None
            )
            built.manifest.verification["notes"] = [*(built.manifest.verification.get("notes") or []), note]
        built.manifest.files = {"model": built.path.name, "reference": REFERENCE_FILE}
        if self.stale_outputs:  # a declared output size the model does not answer: served dynamic
            for path in {staging / REFERENCE_FILE, built.path}:
                if path.suffix == ".onnx":
                    redeclare(path, self.stale_outputs)
            built.manifest.outputs = redeclared_specs(built.manifest.outputs, self.stale_outputs)
            built.manifest.stages[0].setdefault("sizes_fixed", {}).setdefault("notes", []).append(self.stale_note)
        if self.unranked:  # outputs declared rank 0 that answer [N, …]: the build declares the rank answered
            for path in {staging / REFERENCE_FILE, built.path}:
                if path.suffix == ".onnx":
                    declare_ranks(path, self.unranked)
            built.manifest.outputs = ranked_specs(built.manifest.outputs, self.unranked)
            built.manifest.stages[0].setdefault("sizes_fixed", {}).setdefault("notes", []).append(self.unranked_note)
        shipped = built.path if built.path.suffix == ".onnx" else staging / REFERENCE_FILE  # a plan's ONNX source
        built.manifest.inputs = shipped_specs(built.manifest.inputs, shipped)  # sizes fusion resolved, fixed
        built.manifest.outputs = shipped_specs(built.manifest.outputs, shipped)
        built.manifest.extra[MODEL_SHA256] = file_sha256(built.path)  # deploy checks it
        if self.nan_inputs:  # deploy records them in the served config: the commands sending data accept their NaN
            built.manifest.extra[NAN_INPUTS] = self.nan_inputs
        if self.state_pairs:  # deploy records them in the served config: evaluate runs the model as a stream
            built.manifest.extra[STATE_PAIRS] = [{"output": p.output, "input": p.input} for p in self.state_pairs]
        # the kinds verify read off the reference graph: deploy records them, evaluate judges the served outputs alike
        built.manifest.extra[GRAPH_OUTPUTS] = words_record(read_graph_words(fused.path))
        if self.options.output_kinds:  # deploy records them too: evaluate judges those outputs as typed here
            built.manifest.extra[TYPED_KINDS] = dict(self.options.output_kinds)
        if self.options.length_input is not None:  # the user's word on the length input: named, or none
            built.manifest.extra[LENGTH_INPUT] = self.options.length_input
        if self.options.unbatched:  # deploy serves it with max_batch_size 0, dims the full request shape
            built.manifest.extra[BATCHING] = NO_BATCHING
            if self.held_out.requests.whole:  # each data[i] a request: deploy keeps axis 0 as the graph declares it
                built.manifest.extra[REQUESTS] = WHOLE_SAMPLES
            graph = onnx.load(str(staging / REFERENCE_FILE), load_external_data=False).graph
            built.manifest.inputs = request_specs(built.manifest.inputs, graph)
            built.manifest.outputs = request_specs(built.manifest.outputs, graph)
        if measuring is not None:  # kept on the fuse stage, which wrote the FP32 model measured
            fuse_record = next(s for s in built.manifest.stages if s.get("stage") == "fuse")
            fuse_record.update(footprint_record(measuring))
        built.manifest.save(staging)
        return built

    def _start_footprint(self, fp32: Path) -> Future[Footprint] | None:
        """An FP32 build served on this CPU: its session's footprint, measured beside the build for deploy to weigh
        --max-batch against (an INT8 build's timing batch measures it: `optimizer.timing_rows`)."""
        if self.options.precision != "fp32" or not self._runs_here():
            return None
        return start_fp32_footprint(fp32, self.held_out, self.options.speed.threads or os.cpu_count() or 1)

    def _check_rows(self, exported: Artifact, check_inputs: dict[str, np.ndarray]) -> None:
        """Axis 0 must be a batch Triton can split: checked on one ONNX Runtime session of the exported model,
        released on return (before calibration needs the memory). An --unbatched build has no batch to split: its
        requests are checked instead (`check_requests`)."""
        session = checking_session(exported.path, self.options.source)
        if self.options.unbatched:  # one request's answer: a declared size it does not answer is served dynamic
            check_requests(session, self.held_out, self.options.source, self.options.precision)
            request = next(self.held_out.take(0, 1).batches(1))
            values = session.run(None, request)
            names = [output.name for output in session.get_outputs()]
            self._redeclare(exported, {name: tuple(np.shape(v)) for name, v in zip(names, values, strict=True)})
            return
        answers = answered_values(session, check_inputs, self.options.source)  # run once, read three times
        shapes = [list(np.shape(value)) for value in answers]
        names = [output.name for output in session.get_outputs()]
        nan = nan_refusal(exported.path, names, answers, check_inputs, str(self.options.source))
        if nan:
            raise QuantserveError(nan)
        advice = selection_advice(exported.path)
        unbatched = unbatched_output(session, check_inputs, self.options.source, advice, answered=shapes)
        if unbatched:
            raise QuantserveError(f"{self.options.source}: {unbatched}")
        answered = {output.name: tuple(shape) for output, shape in zip(session.get_outputs(), shapes, strict=True)}
        check_gates(self.options.budget.gates, answered)  # --gate: outputs named and shaped, before calibration
        self._redeclare(exported, answered)
        fixed = sizes_fixed_in_graph(session, check_inputs)
        if fixed:  # said, not refused: traffic of the data's sizes is served right
            exported.manifest.stages[0]["sizes_fixed"] = {"notes": fixed}
        if not exported.manifest.stages[0].get("quantized_ops"):  # a dynamic-INT8 file's scale spans its batch
            dependent = dependent_rows(session, check_inputs)
            if dependent:
                raise QuantserveError(
                    f"{self.options.source}: rows along axis 0 are not independent: {dependent}, so Triton's "
                    "dynamic batching would change a request's answers with the requests batched beside it; axis 0 "
                    "must hold independent samples (a recurrent model's time steps or state belong on another axis)"
                    f"{UNBATCHED_ROUTE}"
                )

    def _redeclare(self, exported: Artifact, answered: dict[str, tuple[int, ...]]) -> None:
        """Declared output sizes the model does not answer (`answered`: each output's shape), to be served dynamic, and
        outputs declared without a rank. An --unbatched build kept them: thai2rom's decoder declares its attention
        [1, 11] and answers [1, 13]; every served request failed, FP32 or INT8 (session 62)."""
        self.stale_outputs = stale_axes(exported.manifest.outputs, answered)
        self.unranked = unranked(exported.manifest.outputs, answered)
        if self.unranked:
            self.unranked_note = ranked_note(self.unranked, answered)
        if self.stale_outputs:
            self.stale_note = redeclared_note(exported.manifest.outputs, self.stale_outputs, answered)

    def _check_evidence(self, exported: Path) -> None:
        """Held-out rows too few to show the budget: refused before fuse and calibration (`early_evidence`)."""
        options = self.options
        self.lengths_vary = lengths_vary_per_request(exported, self.held_out, options)  # per request, not by kind
        if options.precision != "int8" or options.judges_thin_evidence or self.lengths_vary:
            return
        refusal = early_evidence_refusal(exported, self.held_out, options.budget, options.output_kinds)
        if refusal:
            raise BudgetExceeded(refusal)

    def _lower_precision(self, fused: Artifact, work: Path) -> Artifact:
        if self.options.precision == "int8":
            refusal = no_compute_refusal(fused.path)  # e.g. a tree ensemble: nothing INT8 speeds up
            if refusal:
                raise BudgetExceeded(refusal)
            self.options.progress("calibrate")
            stage = per_request_int8(self.lengths_vary, self.calib, self.options) or int8_stage(self)
            return stage(fused, work / "int8.onnx")
        # a float16 model built without quantization computes in float16: recorded so (it was "fp32" in the build,
        # the served config and every load result), so nothing compares it as the FP32 reference
        half = any(stage.get("float16_weights") for stage in fused.manifest.stages)
        if self.options.precision == "fp16" or half:
            return Artifact(fused.path, Manifest.from_dict({**fused.manifest.to_dict(), "precision": "fp16"}))
        return fused

    def _export(self, path: Path) -> Artifact:
        """Export and check both data sets against the model's inputs; NaN in them is accepted where the FP32
        model answers it finitely (`optimizer.nan_inputs`), and refused for INT8."""
        self.options.progress("export")
        options = self.options
        model = load_source(options.source)
        if options.input_names or options.output_names:
            model = model.renamed(options.input_names or [], options.output_names)
        check_names_before_export(model, self.data_files)
        exported = ExportOnnx(options.opset, options.name, options.unbatched, options.precision)(model, path)
        if options.precision != "fp32":
            refuse_quantized(exported.manifest.stages[0], options.precision, str(options.source))
        anywhere = NanAccepted(frozenset(spec.name for spec in exported.manifest.inputs))  # decided just below
        for data_path, data in self.data_files:
            check_against(data_path, data, exported.manifest.inputs, anywhere)
        if refusal := negative_ids_refusal(exported.path, self.data_files):  # read from the end by Gather
            raise QuantserveError(refusal)
        self.nan_inputs = accepted_nan_inputs(exported.path, self.data_files, str(options.source))
        if self.nan_inputs and options.precision == "int8":
            raise BudgetExceeded(int8_nan_refusal(self.nan_inputs))
        return exported


def int8_stage(job: OptimizeJob) -> Callable[[Artifact, Path], Artifact]:
    """The INT8 stage for `job`: the scheme search (static Q/DQ vs dynamic, mixed precision; optimizer.int8_search).

    One replaceable callable (artifact, out path) -> artifact, so a scheme search can take its place.
    """
    from optimizer.int8_measure import SearchSettings
    from optimizer.int8_search import SearchInt8

    return SearchInt8(
        job.calib,
        job.held_out,
        job.options.calibration_settings(),
        target=job.engine.name,
        budget=job.options.budget,
        output_kinds=job.options.output_kinds,
        model_type=getattr(job.options.transformer, "model_type", None),
        # candidates timed as the gate times: the target's threads, the request batch (--timing-batch)
        search=SearchSettings(
            max_search_s=job.options.max_search_s,
            threads=job.options.speed.threads,
            timing_batch=job.options.speed.batch_size,
            timing_batch_given=job.options.speed.batch_given,
        ),
        user_metric=job.user_metric,
        on_step=lambda what: job.options.progress(f"calibrate: {what}"),
        on_progress=job.options.on_progress,
        keep_failing=job.options.keep_failing,
        allow_thin_evidence=job.options.judges_thin_evidence,
        state_pairs=job.state_pairs,  # the winner fed its own state, as verification feeds it (`int8_confirm`)
    )


def optimize(options: OptimizeOptions) -> Artifact:
    """Run every stage for the model and write out_dir/{manifest.json, model.onnx, fp32.onnx}; return the artifact.

    Refused before any work: an unknown precision or target, fp16 where the target would run FP32, INT8 of an .onnx
    with nothing to quantize (exit 1), a bad --metric.
    Refused after verification (BudgetExceeded, nothing written): drift beyond the budget, held-out rows
    too few to show it (the INT8 search refuses that before calibrating), or INT8 slower than FP32 here.
    """
    check_output_folder(Path(options.out_dir))
    if options.precision == "int8":  # a junk size read mid-search was "no INT8 scheme could be built … deploy fp32"
        calib_cache.limit_bytes()
    engine = _checked_engine(options)
    check_row_sources(options.precision, options.calib_path, options.eval_path)  # FP32 and FP16 need no --calib
    _refuse_from_graph(options)
    user_metric = UserMetric.load(options.metric) if options.metric else None
    if user_metric is not None:  # where a failing metric's labels=None came from, named
        source, no_eval = str(options.eval_path or options.calib_path), options.eval_path is None
        user_metric = replace(user_metric, labels_from=source, no_eval=no_eval)
    float_truth = user_metric is not None  # float labels are truth for the metric alone
    calib = load_npz(options.calib_path, float_truth=float_truth) if options.calib_path is not None else None
    held_out = load_npz(options.eval_path, float_truth=float_truth) if options.eval_path is not None else None
    for data in (calib, held_out):  # every stage then feeds one request at a time
        if data is not None:
            data.unbatched = options.unbatched
    wanted = evidence_rows(options.budget) if options.precision == "int8" else 0  # FP16 verifies the FP32 ONNX
    calib_set, eval_set, eval_source = split_holdout(calib, held_out, options.calib_path, options.eval_path, wanted)
    given = ((options.calib_path, calib), (options.eval_path, held_out))
    files = [(path, data) for path, data in given if path is not None and data is not None]
    job = OptimizeJob(options, engine, calib_set, eval_set, eval_source, user_metric, files)
    with told_length(options.length_input):  # real tokens are read in every stage that measures drift
        token_positions(eval_set.arrays)  # a --length-input naming no length input fails here, before any work
        return run_atomically(job, Path(options.out_dir))


def _checked_engine(options: OptimizeOptions) -> EngineTarget:
    """The target, after every check that needs no model: precision, fp16 support, the target's preflight."""
    if options.precision not in PRECISIONS:
        raise QuantserveError(f"unknown precision '{options.precision}'; choose one of: {', '.join(PRECISIONS)}")
    engine = get_target(options.target)  # validated before any expensive work
    if not options.max_search_s > 0:
        raise QuantserveError(f"--max-search-s {options.max_search_s:g}: expected a positive number of seconds")
    # FP16 is an engine build mode (TensorRT, ONNX Runtime's TensorRT accelerator); the CPU runs FP32 as is.
    supports_fp16 = getattr(engine, "supports_fp16", engine.name in ("tensorrt", "onnxruntime"))
    if options.precision == "fp16" and not supports_fp16:  # onnxruntime without its TensorRT accelerator included
        raise QuantserveError(fp16_refusal(options.target))
    engine.preflight()  # e.g. TensorRT missing: one clear line before export/calibration
    return engine


def _refuse_from_graph(options: OptimizeOptions) -> None:
    """What the user's `.onnx` graph alone refuses (read once, without its weights): before the data is read and
    any stage runs."""
    graph = onnx_files.user_graph(options.source)
    if graph is None:  # a PyTorch source, or a file the export stage refuses in one line
        return
    if options.precision == "int8" and (refusal := graph_no_compute_refusal(graph)):
        raise BudgetExceeded(refusal)
    if refusal := graph_packed_refusal(graph, options.source, options.unbatched):
        raise QuantserveError(refusal)  # the model's, not the data's: its calibration file would be blamed

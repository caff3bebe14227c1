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

Each candidate's drift is measured on the held-out set against the budget (row by row: a stateful model's rows each
fed FP32's state; the stream fed its own state, `optimizer.state_loop`, is the winner's confirmation), and its
speed vs FP32 as optimize's speed gate times it (`optimizer.speed`: the two models alternated pair by pair in one
fresh child, on `--timing-batch` rows and the target's threads; one block, the median pair ratio). ONNX Runtime's
profiler still times each model's nodes (what the mixed-precision search weighs), but a ratio of two profiles taken
minutes apart is not a speed: on MediaPipe's palm detector the FP32 profile, taken once at the start on a busy
machine, said 987 ms per batch of 8 and the search recorded 3.3× for a candidate that timed 0.85× side by side. The
fastest candidate that holds wins. Where static Q/DQ of every op type misses the budget on an x86 CPU without VNNI,
the same with 7-bit weights is tried (`SevenBitStaticScheme`: u8×s8 products saturate there, `optimizer.cpu_isa`),
and so is dynamic INT8 with 7-bit weights where dynamic misses (`SevenBitDynamicScheme`); where static's 7-bit
misses too, static Q/DQ of the compute ops alone (from the same ranges, with the weights of the two that drifted
less) is tried. If none holds, or one that misses runs clearly faster, the mixed-precision search
(`optimizer.sensitivity`) keeps nodes FP32 on it. The whole stage — reference run, candidates, probes, steps,
profiles — spends one wall-clock budget (`SearchSettings.max_search_s`, `optimizer.search_budget`): work that the
time left cannot hold is not started (the candidates that calibrate nothing run first: `_SearchRun._first_round`),
and where the time ran out before any INT8 model was verified within the drift budget and timed, the stage refuses
in one line: naming the flag that raises the budget where more time may hold it, else saying to deploy fp32
(`SearchVerdict._refuse_unverified`: the closest model far short, nothing moving it). Graph outputs and mixed-range
tensors are never quantized (`optimizer.quant_exclusions`). Candidates are judged on the first `max_eval_samples`
held-out rows; the winner is judged on all of them and fed its own state, as verification judges it, and gives way to
the next that holds there where it misses (`optimizer.int8_confirm`). Whatever comes out, the stage record says what was
tried, measured and kept, so the pipeline can refuse a model that misses the budget or is not faster with one line.

Its parts: the schemes (`optimizer.int8_schemes`), how a built model is measured (`optimizer.int8_measure`),
the refusals and the stage record (`optimizer.int8_verdict`, their words `optimizer.int8_refusal_words`), the
second-round candidates (`optimizer.int8_fallbacks`), the mixed-precision runs and their starts
(`optimizer.int8_mixed`), the winner's confirmation (`optimizer.int8_confirm`).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer import onnx_files
from optimizer.activation_outliers import STATS_BATCH
from optimizer.calibrate import MEMORY_BUDGET_BYTES, CalibrationSettings
from optimizer.compute_share import compute_macs
from optimizer.cpu_isa import cpu_flags as cpu_flags_here
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.drift_evidence import evidence_refusal, evidence_shortfall, token_value_outputs
from optimizer.graph_words import read_graph_words
from optimizer.int8_measure import Candidate, SearchSettings
from optimizer.int8_mixed import FASTER, MixedPrecisionStarts
from optimizer.int8_refusal_words import closest_candidate, search_choice
from optimizer.int8_schemes import (
    DYNAMIC_OP_TYPES,
    SMOOTH_ALPHAS,
    DynamicScheme,
    Scheme,
    SmoothStaticScheme,
    StaticScheme,
    calibrates_activations,
    with_fixed_fp32,
)
from optimizer.output_kinds import infer_output_kinds
from optimizer.profile import ModelProfile, profile_model
from optimizer.quant_exclusions import activation_matmuls, find_exclusions
from optimizer.ranked_ids import ranked_outputs
from optimizer.search_budget import CANDIDATE, PROFILE, TIMING, DeadlineReached, SearchBudget
from optimizer.speed import Block, SpeedSettings, time_pair
from optimizer.state_loop import StatePair
from optimizer.state_outputs import answers_only
from optimizer.tensor_ranges import ProgressCallback, activation_bytes_per_sample, rows_per_chunk
from optimizer.timing_rows import fit_timing_rows
from optimizer.transformer import TRANSFORMER_OP_TYPES, detect_encoder, run_model
from optimizer.user_metric import MetricError, UserMetric
from optimizer.verify import verify_batch_size
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

CPU_TARGETS = ("embedded", "onnxruntime")
DYNAMIC_MIN_MAC_SHARE = 0.5  # dynamic is a candidate when weight MatMul/Gemm/LSTM hold this share of the MACs
# a candidate's speed: one block of FP32/INT8 pairs, at least 3, filling 0.5 s (warm-up aside): palm's pair is ~0.7 s
PAIRED = SpeedSettings(seconds_per_model=0.25, repeats=3, rounds=1)
CANDIDATES = "INT8 schemes measured"  # on_progress's `what` after each candidate scheme


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
        cpu_flags: Collection[str] | None = None,
        state_pairs: Sequence[StatePair] = (),
    ) -> None:
        self.calib, self.settings = calib, settings or CalibrationSettings()
        self.cpu_flags = cpu_flags if cpu_flags is not None else cpu_flags_here()  # of the CPU that serves the model
        # --metric: judged on every candidate's held-out drift, as verification judges it (the search once stopped
        # at "budget holds" by the outputs alone, and verification then refused on the metric with nothing tried)
        self.user_metric = user_metric
        self.keep_failing = keep_failing  # where only all-FP32 holds: ship the closest INT8 model, not refuse
        self.allow_thin_evidence = allow_thin_evidence  # search on held-out rows too few to show the budget
        self.on_step = on_step  # told what the search is doing: "static_qdq candidate", "probe 3/12"…
        self.on_progress = on_progress  # (done, total, what): calibration chunks, candidates, mixed-precision groups
        self.search = search or SearchSettings()
        self.held_out = held_out.take(0, min(len(held_out), self.search.max_eval_samples))
        self.all_held_out = held_out  # verification's rows: the winner is judged on all of them (`_confirmed`)
        self.state_pairs = tuple(state_pairs)  # a stateful model's: the winner is judged fed its own state too
        self.target, self.budget = target, budget or DriftBudget()
        self.output_kinds, self.model_type = dict(output_kinds or {}), model_type

    def __call__(self, fused: Artifact, out_path: Path) -> Artifact:
        started = time.monotonic()
        work = Path(out_path).parent / f".{Path(out_path).stem}-search"
        work.mkdir(parents=True, exist_ok=True)
        try:
            run = _SearchRun(self, fused, work, SearchBudget(self.search.max_search_s))
            try:
                chosen, record = run.choose()
            except BudgetExceeded as refusal:  # a refusal says the batch its candidates were timed at, if lowered
                if run.timing_rows.lowered:
                    refusal.record.setdefault("timing_rows", run.timing_rows.to_dict())
                raise
            onnx_files.copy(chosen.path, out_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        record["search_s"] = round(time.monotonic() - started, 2)
        return fused.with_stage(Path(out_path), record, precision="int8")


class _SearchRun(MixedPrecisionStarts):
    """The state of one search: reference outputs, kinds, exclusions, FP32 profile and the candidates."""

    stage: SearchInt8

    def __init__(self, stage: SearchInt8, fused: Artifact, work: Path, budget: SearchBudget) -> None:
        self.stage, self.fused, self.work, self.budget = stage, fused, work, budget
        self.method = stage.settings.method
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
        self.reference = run_model(fused.path, held, self.verify_batch)
        # --metric on FP32's own answers first: a function that fails on them fails in seconds, not after calibration
        # and the search (81 s for a sound-effects CNN, session 55); its score is reused for every candidate
        metric = stage.user_metric
        self.fp32_metric = metric.score(self.reference, held.metric_truth) if metric is not None else None
        words = read_graph_words(self.model)  # outputs a Sigmoid makes, 2-D ones per token, a recurrent layer's state
        self.axes = words.axes
        self.kinds = infer_output_kinds(
            self.reference,
            stage.output_kinds,
            labels=held.labels,
            inputs=held.arrays,
            axes=self.axes,
            sigmoid=words.sigmoid,
            state=words.state,
        )
        per_token = token_value_outputs(self.reference, held.arrays)
        answers = answers_only(self.reference, stage.state_pairs)  # a state is judged by its effect (`state_outputs`)
        kinds = answers_only(self.kinds, stage.state_pairs)
        short = evidence_shortfall(kinds, stage.budget, len(held), held.arrays, per_token, answers)
        if short and not stage.allow_thin_evidence:  # known before any calibration: refused in seconds
            raise BudgetExceeded(evidence_refusal(short))
        stats = stage.calib.take(0, min(len(stage.calib), stage.search.stats_samples))
        # every Concat's (and, after a refusal, every compute node's) input kept for these rows at once: 8 rows of
        # YOLOv8n at 1024² were 3.7 GB of them (session 43); as many as fit calibration's chunk budget (an
        # --unbatched set runs request by request whatever it is asked)
        sample_bytes = 0 if stats.unbatched else activation_bytes_per_sample(fused.path, stats)
        self.stats_rows = rows_per_chunk(sample_bytes, MEMORY_BUDGET_BYTES, STATS_BATCH)
        user = stage.settings.nodes_to_exclude
        self.exclusions = find_exclusions(
            self.model, fused.path, stats.batches(self.stats_rows), stage.search.mixed_range_ratio, user
        )
        # the rows --timing-batch asks, fewer where FP32 and INT8 timed side by side would not fit (`timing_rows`)
        asked, given = stage.search.timing_batch, stage.search.timing_batch_given
        self.timing_rows = fit_timing_rows(fused.path, held, asked, self._threads(), given)
        if self.timing_rows.lowered:
            self._step(self.timing_rows.note())
        self.timing_batch = next(held.batches(self.timing_rows.rows))
        self.fp32_profile = self._profile(fused.path)
        self.macs = compute_macs(self.model, fused.path, next(held.batches(1)))
        self.probe = held.take(0, min(len(held), stage.search.probe_samples))
        self._calib_reference: dict[str, Any] | None = None
        self._probe_reference = {k: v[: len(self.probe)] for k, v in self.reference.items()}
        self._int8_nodes: dict[Path, list[str]] = {}  # per built model: its compute nodes that run in INT8
        self.paired: dict[Path, Block] = {}  # per built model: FP32 and it timed alternately (`_paired`)
        self.judged: list[tuple[str, DriftReport]] = []  # every built model's drift, judged before its timing
        self.every_row, self.state_pairs = stage.all_held_out, stage.state_pairs  # verification's (`_confirmed`)
        self._last_run: tuple[Path, dict[str, np.ndarray]] | None = None  # `_outputs`' one model kept
        self.ranked = ranked_outputs(self.reference)
        self._probe_scores = self._fp32_probe_scores()  # the scores behind ids, where any: they rank the probes

    def choose(self) -> tuple[Candidate, dict[str, Any]]:
        """Measure each scheme; the fastest that holds, else the mixed-precision search on the closest."""
        if self.encoder:
            self.exclusions += activation_matmuls(self.model, {e.node for e in self.exclusions})
        base = [e.node for e in self.exclusions]
        self.schemes = {scheme.name: scheme for scheme in self._schemes()}
        tried = self._first_round(base)
        # the last judges the one before it (the static schemes' weights); dynamic 7-bit first: no calibration to run
        for fallback in (self._seven_bit_dynamic_scheme, self._seven_bit_scheme, self._compute_only_scheme):
            extra = fallback(tried)
            if extra is not None:
                self.schemes[extra.name] = extra
                tried += self._timed_candidate(extra, base)
        for narrower in self._narrower_compute_schemes(tried):  # the first that holds ends them
            self.schemes[narrower.name] = narrower
            built = self._timed_candidate(narrower, base)
            tried += built
            if any(self._accept(c.drift) for c in built):
                break
        if not tried and self.budget.ran_out:
            raise BudgetExceeded(self._untimed_refusal())
        if not tried:
            reasons = "; ".join(f"{name}: {self.failed[name]}" for name in self.schemes if name in self.failed)
            raise BudgetExceeded(f"no INT8 scheme could be built ({reasons}); nothing written: deploy fp32")
        holding = [c for c in tried if self._accept(c.drift)]
        best = max(holding, key=lambda c: c.speedup) if holding else None
        # A candidate that misses the budget but runs clearly faster than the best holding one is worth a search.
        faster = [c for c in tried if c not in holding and (best is None or c.speedup > FASTER * best.speedup)]
        mixed: dict[str, Any] = {}
        mixed_candidate: Candidate | None = None
        if faster:
            start = closest_candidate(faster)
            mixed_candidate, mixed = self._mixed_precision(start, base)
            mixed_candidate, mixed = self._eight_bit_mix(faster, start, mixed_candidate, mixed, base)
            mixed_candidate, mixed = self._fastest_mix(faster, best, mixed_candidate, mixed, base)
        judged = [*tried, *([mixed_candidate] if mixed_candidate else [])]
        chosen = search_choice((best, mixed_candidate), judged, self._accept)  # else the closest, named or shipped
        if mixed:
            mixed["chosen"] = chosen is mixed_candidate
        try:
            chosen = self._confirmed(chosen, judged)
            if mixed:
                mixed["chosen"] = chosen is mixed_candidate
            self._refuse_unverified(chosen, mixed)
            self._refuse_capped(chosen, mixed, tried)
            if not self._quantizes_anything(chosen):
                chosen = self._nothing_in_int8(tried, mixed)
                if mixed:
                    mixed["chosen"] = False
            else:
                self._refuse_exhausted(chosen, mixed, tried)
        except BudgetExceeded as refusal:  # with the candidates tried, their figures and what calibration saw
            told = self._told(refusal, chosen, judged)
            if told is refusal:
                raise
            raise told from None
        return chosen, {**self._record(chosen, tried, mixed), **self._runners_up(chosen, judged)}  # refusals name them

    def _first_round(self, base: Sequence[str]) -> list[Candidate]:
        """Each planned scheme's candidate, time allowing, run those that calibrate nothing first (dynamic INT8: no
        ranges to calibrate) so the clock drops the schemes that calibrate, not the cheap one; returned in the planned
        order, which the choice's tie-breaks and the record keep. TabPFN v1 (busy 2-core EPYC, 300 s): static Q/DQ's
        calibration took 109 s, the dynamic candidate was left undone, and static shipped at 1.22× where dynamic
        holds the same budget at 2.58×."""
        planned = list(self.schemes.values())
        built: dict[str, list[Candidate]] = {}
        for done, scheme in enumerate(sorted(planned, key=lambda s: calibrates_activations(s.name)), start=1):
            built[scheme.name] = self._timed_candidate(scheme, base)
            self._progress(done, len(planned), CANDIDATES)
        return [candidate for scheme in planned for candidate in built[scheme.name]]

    def _schemes(self) -> list[Scheme]:
        static_settings = self.stage.settings
        if self.encoder and not static_settings.op_types_to_quantize:
            # MatMul/Gemm only, their outputs left FP32 (ORT runs them as MatMulIntegerToFloat): a per-tensor
            # scale on every MatMul output (the attention scores before Softmax among them) broke a 6-layer encoder.
            extra = {"OpTypesToExcludeOutputQuantization": list(TRANSFORMER_OP_TYPES), **static_settings.extra_options}
            static_settings = dataclasses.replace(
                static_settings, op_types_to_quantize=TRANSFORMER_OP_TYPES, extra_options=extra
            )
        self.static_settings = static_settings  # what the fallbacks start from
        calib, progress = self.stage.calib, self._checked_progress  # calibration stops at the deadline
        smooth = SmoothStaticScheme(calib, static_settings, self.work, SMOOTH_ALPHAS, progress, self._calib_margin)
        if self.stage.target not in CPU_TARGETS:
            return [smooth]  # TensorRT: static Q/DQ only, so outliers are smoothed away before calibrating
        schemes: list[Scheme] = [StaticScheme(calib, static_settings, progress)]
        if self.encoder or self._weight_matmul_share() >= DYNAMIC_MIN_MAC_SHARE:
            schemes.append(DynamicScheme(cpu_flags=self.stage.cpu_flags))
            if self.large:  # measured: a 2.2 GB MLP's search was killed at 23.8 GB of 24 while smoothing it
                self.skipped[smooth.name] = (
                    "a model of 1 GiB or more: SmoothQuant's rewrite holds three copies of its weights, and each "
                    "alpha is a calibration of the whole model"
                )
            else:
                schemes.append(smooth)
        return schemes

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
        and the scheme recorded as left undone; one still under way at the deadline is stopped and recorded so."""
        if not self.budget.affords(CANDIDATE):
            self.budget.skip(f"the {scheme.name} candidate")
            self.skipped[scheme.name] = f"the search's time budget ({self.budget.seconds:g} s) was spent"
            return []
        built = self.budget.attempt(
            CANDIDATE, f"the {scheme.name} candidate", lambda: self._built_candidate(scheme, base)
        )
        if built is None:
            self.skipped[scheme.name] = f"stopped at the end of the search's time budget ({self.budget.seconds:g} s)"
        for candidate in built or []:  # ranges calibrated in it are cached: the next static candidate skips that
            if candidate.record.get("cache") == "miss" and candidate.record.get("ranges_cache") == "miss":
                self.budget.spent_once(CANDIDATE, float(candidate.record.get("calibration_s") or 0.0))
        return built or []

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
        """A built model as a candidate: drift on the held-out set (unless measured there already), its nodes' times
        from a profile, its speed from FP32 and it alternated (`_paired`), each in a child process."""
        excluded = with_fixed_fp32(excluded, scheme)  # a scheme's own FP32 nodes count as kept (`_kept_fp32`)
        if drift is None:
            drift = self._drift(path, independent=not isinstance(scheme, DynamicScheme))
        self.judged.append((scheme.name, drift))  # what an out-of-time refusal says was measured (`_untimed_refusal`)
        with self.budget.spend(TIMING):  # what the mixed-precision search keeps back for its winner
            profile = self._profile(path)
            speedup = self._paired(path).ratio
        return Candidate(scheme.name, path, list(excluded), drift, profile, speedup, scheme.records[path])

    def _paired(self, path: Path) -> Block:
        """FP32 and the model at `path` run alternately on the timing batch, as the speed gate times them; in a
        stoppable unit the child is killed at its stop time (DeadlineReached: no figure)."""
        self.budget.check("the paired timing")
        self._progress(1, 2, TIMING)
        with self.budget.spend(PROFILE):
            try:
                block = time_pair(
                    self.fused.path, path, self.timing_batch, self._threads(), PAIRED, self.budget.stop_left()
                )
            except subprocess.TimeoutExpired as late:
                raise DeadlineReached("the paired timing") from late
        self.paired[path] = block
        return block

    def _profile(self, path: Path) -> ModelProfile:
        self.budget.check("the profile")  # ONNX Runtime's profiler runs whole: checked before it
        self._progress(0, 2, TIMING)  # the profile, then the paired timing
        with self.budget.spend(PROFILE):
            return profile_model(path, [self.timing_batch], self._threads(), repeats=self.stage.search.timing_repeats)

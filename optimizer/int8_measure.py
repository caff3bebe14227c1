"""What the INT8 search measures a built model by: the search's bounds, a measured candidate, and the
model's drift on the held-out rows (at the worst batch composition), on the probe rows, and on calibration
rows (SmoothQuant's alpha), as verification will judge it. Each run checks the search's time budget before every
batch, so a unit past its deadline stops there (`SearchBudget.stoppable`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from optimizer.answer_scores import MAX_SCORE_BYTES, with_scores
from optimizer.calibrate import CalibrationSettings
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import SCORES_ERROR, DriftReport
from optimizer.gate_advice import gate_advice
from optimizer.nan_outputs import nonfinite_origins
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.profile import ModelProfile
from optimizer.quant_exclusions import MIXED_RANGE_RATIO
from optimizer.search_budget import SearchBudget
from optimizer.state_loop import StatePair
from optimizer.state_outputs import answers_only
from optimizer.tensor_ranges import ProgressCallback
from optimizer.token_axes import TokenAxes
from optimizer.transformer import run_model
from optimizer.user_metric import UserMetric, add_user_metric
from optimizer.verify import verified_compositions
from optimizer.worst_composition import Composition, judge_compositions
from quantserve import metrics
from quantserve.artifact import Artifact
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from quantserve.runner import run_batches

DEFAULT_SEARCH_S = 300.0  # --max-search-s's default
ROWS_WORDS = {"the held-out drift run": "checking drift on held-out rows"}  # a run's progress, where its part is terse


@dataclass(frozen=True)
class SearchSettings:
    """Bounds of the search: its whole wall-clock budget, probe count, sample counts, timing size."""

    # the whole stage's wall clock (reference run, candidates, probes, steps, profiles): optimize's --max-search-s
    max_search_s: float = DEFAULT_SEARCH_S
    # of which the mixed-precision search may spend at most this at the default budget (its own cap, as before the
    # whole was budgeted), and every second given past the default on top (`mixed_cap_s`): deepCR's U-Net at
    # --max-search-s 1200 stopped its mixed search at 60 s, 5 of 8 steps taken, with 859 s of the budget left
    max_mixed_s: float = 60.0
    max_probes: int = 12
    probe_samples: int = 32
    max_eval_samples: int = 512
    stats_samples: int = 16
    timing_batch: int = 8  # held-out rows per profiled run: optimize passes its --timing-batch
    timing_batch_given: bool = False  # the user gave it: lowered only past half the memory free (`timing_rows`)
    timing_repeats: int = 3
    # 0: os.cpu_count(), the threads the serving target and optimize's speed gate use; timing the
    # candidates on one thread while the gate times on all of them chose schemes the gate refused
    threads: int = 0
    mixed_range_ratio: float = MIXED_RANGE_RATIO
    min_margin: float = 0.05  # a variant counts as holding with this much normalized slack left (DriftReport.margin)

    def mixed_cap_s(self) -> float:
        """The mixed-precision search's own cap: `max_mixed_s`, plus what --max-search-s gives past its default (the
        time a refusal's "give it time with --max-search-s" asks for goes where the search needs it)."""
        return self.max_mixed_s + max(0.0, self.max_search_s - DEFAULT_SEARCH_S)

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


class SearchStage(Protocol):
    """The INT8 stage's settings as the search run reads them (`optimizer.int8_search.SearchInt8`)."""

    calib: TensorData
    settings: CalibrationSettings
    held_out: TensorData
    target: str
    budget: DriftBudget
    search: SearchSettings
    on_step: Callable[[str], None] | None
    on_progress: ProgressCallback | None
    keep_failing: bool
    user_metric: UserMetric | None
    model_type: str | None  # --model-type (None: not given; the graph may still be an encoder, `detect_encoder`)
    cpu_flags: Collection[str]  # the serving CPU's /proc/cpuinfo flags (`optimizer.cpu_isa`)


class HeldOutDrift:
    """The search run's drift measurements of a built model (the run's state: `optimizer.int8_search`)."""

    stage: SearchStage
    fused: Artifact
    budget: SearchBudget
    reference: dict[str, np.ndarray]
    kinds: dict[str, str]
    axes: TokenAxes  # which 2-D outputs are per token (`optimizer.token_axes`)
    labels: np.ndarray | None
    verify_batch: int
    probe: TensorData
    probes_run: int
    _calib_reference: dict[str, Any] | None
    _probe_reference: dict[str, np.ndarray]
    _last_run: tuple[Path, dict[str, np.ndarray]] | None
    _probe_scores: dict[str, np.ndarray]  # the FP32 scores behind ids over the probe rows, by output (`answer_scores`)
    fp32_metric: tuple[float, bool] | None  # --metric on `reference`, taken before any calibration (`int8_search`)
    ranked: set[str]  # a TopK's indices beside its values (`optimizer.ranked_ids`)
    state_pairs: Sequence[StatePair] = ()  # a stateful model's (`optimizer.state_loop`)

    def _answers(self, reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`reference` less its recurrent state outputs: a state is carried, judged by its effect on the answers in
        the closed loop, never row by row (`optimizer.state_outputs`; RVM's r1o..r4o had filled the search's refusal
        line beside fgr and pha, session 68). A --metric still scores every output."""
        return answers_only(reference, self.state_pairs)

    def _calib_margin(self, path: Path) -> float:
        """`path`'s drift margin on calibration rows: what SmoothQuant's alpha is chosen by (the held-out rows
        judge the result, so they do not choose it)."""
        rows = self.stage.calib.take(0, min(len(self.stage.calib), self.stage.search.probe_samples))
        if self._calib_reference is None:
            self._calib_reference = run_model(self.fused.path, rows, self.verify_batch)
        got = self._run_checked(path, rows, "judging SmoothQuant's alpha")
        return measure_drift(
            self._answers(self._calib_reference), got, self.kinds, self.stage.budget, None, rows.arrays, self.axes
        ).margin()

    def _accept(self, drift: DriftReport) -> bool:
        """Holds the budget with headroom: verification reruns at another batch size, and INT8 kernels vary."""
        return drift.holds and drift.margin() >= self.stage.search.min_margin

    def _drift(self, path: Path, independent: bool = False) -> DriftReport:
        """Drift on the held-out set at the worst batch composition (as verification judges it: dynamic INT8's
        answers move with their batch neighbours). `independent`: a static scheme's rows cannot meet (fixed scales,
        rows of the FP32 model checked independent), so the rows in order are the only composition; verification
        still judges every one."""
        held = self.stage.held_out
        self.budget.check("the held-out drift run")  # dynamic INT8's compositions run whole: checked before them
        compositions: Iterable[Composition] = (
            [Composition(_in_order(held), self._outputs(path, len(held)), self.verify_batch)]
            if independent or held.unbatched  # --unbatched: one request at a time, checked between them
            else verified_compositions(path, held, self.verify_batch)  # one at a time: the worst's outputs kept
        )
        worst = judge_compositions(compositions, partial(self._held_out_report, held))
        report, got = worst.report, worst.outputs
        if not report.holds:  # the --gate that would hold, measured: the search's refusal names it as verification's
            report.advice = gate_advice(self._answers(self.reference), got, self.kinds, self.stage.budget, report)
        return nonfinite_origins(report, path, self.reference, got, held.arrays)  # where INT8 first makes a NaN

    def _held_out_report(self, held: TensorData, got: dict[str, np.ndarray]) -> DriftReport:
        """`got`, a model's outputs over the `held` rows, measured against FP32's (and by the user's --metric)."""
        answers = self._answers(self.reference)
        report = measure_drift(
            answers, got, self.kinds, self.stage.budget, self.labels, held.arrays, self.axes, self._measuring
        )
        if self.stage.user_metric is not None:
            metric, truth = self.stage.user_metric, held.metric_truth
            add_user_metric(report, metric, self.reference, got, truth, self.stage.budget, self.fp32_metric)
        return report

    def _outputs(self, path: Path, rows: int) -> dict[str, np.ndarray]:
        """The model's outputs over the first `rows` held-out rows in order, reused where the last model run was this
        one over as many rows or more, batched alike (a step's probe rows were the whole held-out set of a detector:
        its verification ran them again, in a new session)."""
        ran = self._last_run
        if ran is not None and ran[0] == path:
            have = len(next(iter(ran[1].values())))
            if have == rows or (have > rows and rows % self.verify_batch == 0):
                return {name: values[:rows] for name, values in ran[1].items()}
        got = self._run_checked(path, self.stage.held_out.take(0, rows), "the held-out drift run")
        self._last_run = (path, got)  # one model's outputs: a large output's rows can take hundreds of MB
        return got

    def _run_checked(self, path: Path, feeds: TensorData, part: str) -> dict[str, np.ndarray]:
        """`run_model(path, feeds, verify_batch)`, the search's budget checked before each batch: a stoppable unit
        past its deadline stops between batches (OCR's detector: 32 rows at 320², seconds a batch on a busy CPU)."""
        with OnnxRuntimeRunner(path) as runner:
            batches = self._checked(feeds.batches(self.verify_batch), part, len(feeds))
            return run_batches(runner, batches, feeds.requests.whole)

    def _checked(
        self, batches: Iterable[dict[str, np.ndarray]], part: str, rows: int
    ) -> Iterator[dict[str, np.ndarray]]:
        """`batches`, the budget checked before each and the rows run so far told (`ROWS_WORDS`): an --unbatched
        run's 200 requests once showed the calibration's last count for minutes."""
        words, done = ROWS_WORDS.get(part, f"{part}: rows"), 0
        for batch in batches:
            self.budget.check(part)
            self._progress(done, rows, words)
            yield batch
            done = min(rows, done + self.verify_batch)
        self._progress(rows, rows, words)

    def _measuring(self, done: int, total: int, name: str) -> None:
        """`measure_drift`'s `before_output`: the output about to be measured told, then the budget checked."""
        what = f"measuring drift of output '{name}'"
        self._progress(done, total, what)
        self.budget.check(what)

    def _checked_progress(self, done: int, total: int, what: str) -> None:
        """The schemes' progress callback: after each calibration chunk the budget is checked (a stoppable unit past
        its deadline stops there), then the stage's own `on_progress` hears of it."""
        self.budget.check(what)
        self._progress(done, total, what)

    def _probe_drift(self, path: Path) -> DriftReport:
        self.probes_run += 1
        self._step(f"mixed precision: variant {self.probes_run}")
        got, scores = self._probe_outputs(path)
        labels = None if self.labels is None else self.labels[: len(self.probe)]
        report = measure_drift(
            self._answers(self._probe_reference),
            got,
            self.kinds,
            self.stage.budget,
            labels,
            self.probe.arrays,
            self.axes,
        )
        for name, values in scores.items():  # the scores behind an id per sample: what ranks the probes
            report.outputs[name][SCORES_ERROR] = float(metrics.relative_error(self._probe_scores[name], values)[0])
        return report

    def _scores_outputs(self, path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """The model at `path` over the probe rows: its outputs, and the scores behind its ids of one answer per
        sample (`optimizer.answer_scores`) by output name; None where it has none."""
        answers = [
            name
            for name, kind in self.kinds.items()
            if kind == "ids" and name in self.reference and _one_answer_per_row(self.reference[name], name, self.ranked)
        ]
        copy = with_scores(path, answers, path.with_name(f"{path.stem}-scores.onnx")) if answers else None
        if copy is None:
            return None
        try:
            got = self._run_checked(copy[0], self.probe, "a mixed-precision probe")
        finally:
            if copy[0] != path:
                copy[0].unlink(missing_ok=True)
        scores = {name: got[tensor] for name, tensor in copy[1].items()}
        for tensor in set(copy[1].values()) - set(self.reference):  # the copy's own outputs, not the model's
            got.pop(tensor, None)
        return got, scores

    def _fp32_probe_scores(self) -> dict[str, np.ndarray]:
        """The FP32 model's scores behind its ids over the probe rows; none where they would take more than
        `MAX_SCORE_BYTES` (or the model has no such ids)."""
        ran = self._scores_outputs(self.fused.path)
        if ran is None or sum(values.nbytes for values in ran[1].values()) > MAX_SCORE_BYTES:
            return {}
        return ran[1]

    def _probe_outputs(self, path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The probe rows' outputs, and the scores behind ids where the FP32 model's were measured (`_probe_scores`)."""
        ran = self._scores_outputs(path) if self._probe_scores else None
        if ran is None:
            return self._outputs(path, len(self.probe)), {}
        got, scores = ran
        self._last_run = (path, got)
        return got, {name: values for name, values in scores.items() if name in self._probe_scores}

    def _step(self, what: str) -> None:
        if self.stage.on_step is not None:
            self.stage.on_step(what)

    def _progress(self, done: int, total: int, what: str) -> None:
        if self.stage.on_progress is not None:
            self.stage.on_progress(done, total, what)

    def _threads(self) -> int:
        return self.stage.search.threads or os.cpu_count() or 1


def _in_order(data: TensorData) -> str:
    """The composition of rows in order, named as `verified_compositions` names it."""
    return "one request at a time" if data.unbatched else "rows in order"


def _one_answer_per_row(ids: np.ndarray, name: str, ranked: Collection[str]) -> bool:
    """One class id per sample: (N,), (N, 1), or a TopK's indices judged by their first column. Ids many to a row (a
    per-pixel ArgMax, a tagger's per-token ids) move by one position of many: their agreement is a fine figure."""
    return ids.ndim == 1 or (ids.ndim == 2 and (ids.shape[1] == 1 or name in ranked))

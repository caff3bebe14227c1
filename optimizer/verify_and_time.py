"""What verification concludes of a built model: its drift on the held-out rows judged against the budget (refused
beyond it, unless --keep-failing; an INT8 build also refused on held-out rows too few to show the budget or one
answer everywhere), then, for INT8 where the target runs the ONNX model on this CPU, its speed against FP32 (refused
when slower, unless --allow-slower). `optimizer.pipeline` runs it as the build's last stage.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.drift_evidence import evidence_refusal, one_answer_refusal
from optimizer.image_scale import scale_words, with_fp32_scale
from optimizer.optimize_options import OptimizeOptions
from optimizer.runners_up import untried_words
from optimizer.speed import compare_speed
from optimizer.speed_verdict import drift_kept
from optimizer.state_loop import StatePair
from optimizer.targets import EngineTarget
from optimizer.timing_rows import TimingRows, fit_timing_rows, searched_rows
from optimizer.unbatched import SHAPE_PROBE_REQUESTS
from optimizer.user_metric import UserMetric
from optimizer.value_length_int8 import (
    SEARCH_SKIPPED,
    TimedRequest,
    refusal_advice,
    timed_request,
)
from optimizer.verify import VerifyAgainstReference, drift_refusal, verify_batch_size
from optimizer.verify_per_request import per_request_record, request_answers, varying_lengths
from quantserve.data import TensorData


class VerifyAndTime:
    """The optimize run's verification and speed gate (the run's state: `optimizer.pipeline.OptimizeJob`)."""

    options: OptimizeOptions
    engine: EngineTarget
    held_out: TensorData
    held_out_source: str
    user_metric: UserMetric | None
    state_pairs: list[StatePair]

    def _verify(self, reference: Path, candidate: Path, stages: list[dict[str, Any]]) -> dict[str, Any]:
        """Drift on every output (refused beyond the budget), then speed for INT8 (refused when slower). A drift
        refusal carries the calibrate stage's method advice (what its outliers say), which `optimize` prints."""
        self.options.progress("verify")
        per_request = self._verify_per_request(reference, candidate)
        if per_request is not None:  # judged request by request: timed a request whole, one of FP32's length
            record, answers = per_request
            return self._timed(reference, candidate, record, stages, answers)
        verify = VerifyAgainstReference(
            reference,
            self.held_out,
            self.held_out_source,
            batch_size=verify_batch_size(reference, self.held_out),
            budget=self.options.budget,
            output_kinds=self.options.output_kinds,
            user_metric=self.user_metric,
            state_pairs=self.state_pairs,
        )
        record = verify.measure(candidate)
        record["enforced"] = not self.options.keep_failing
        if not record["holds"]:  # an image output's PSNR miss: FP32's own under 8-bit inputs, for scale
            record = with_fp32_scale(record, reference, self.held_out, verify.batch_size)
            scale = scale_words(record)
            if scale and self.options.keep_failing:
                record["notes"] = [*(record.get("notes") or []), f"kept failing: {scale}"]
        if not record["holds"] and not self.options.keep_failing:
            refusal = drift_refusal(record, self.options.precision)
            advice: dict[str, Any] = {k: s[k] for s in stages for k in ("method_hint", "activation_outliers") if k in s}
            advice["refused_schemes"] = [s["scheme"] for s in stages if s.get("stage") == "calibrate" and "scheme" in s]
            untried, others = untried_words(record, stages)  # the search's runners-up, never judged so
            line = f"{refusal}; {untried}" if untried else refusal
            raise BudgetExceeded(line, {**getattr(refusal, "record", {}), **advice, **others})
        if self.options.precision == "int8" and not self.options.judges_thin_evidence:
            if record["evidence_short"]:
                raise BudgetExceeded(evidence_refusal(record["evidence_short"]))
            if record.get("one_answer") and self.user_metric is None:  # a --metric judges the task on its truth
                raise BudgetExceeded(one_answer_refusal(record["one_answer"]))
        return self._timed(reference, candidate, record, stages)

    def _timed(
        self,
        reference: Path,
        candidate: Path,
        record: dict[str, Any],
        stages: list[dict[str, Any]],
        answers: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        """`record` with INT8's speed against FP32 where the target runs here (refused when slower). `answers`:
        FP32's and the build's per request, as verified, where their length follows the values: the request timed is
        the first whose answers the build gives the same length (`value_length_int8.timed_request`)."""
        if self.options.precision == "int8" and self._timed_here():
            timed = None if answers is None else timed_request(*answers)
            speed = self.options.speed
            threads = speed.threads or os.cpu_count() or 1
            rows = searched_rows(stages) or fit_timing_rows(
                reference, self.held_out, speed.batch_size, threads, speed.batch_given
            )
            record["speed"] = self._speed(reference, candidate, record, drift_kept(stages), rows, timed)
        return record

    def _verify_per_request(
        self, reference: Path, candidate: Path
    ) -> tuple[dict[str, Any], tuple[list[dict[str, Any]], list[dict[str, Any]]]] | None:
        """An --unbatched build whose answers change length from request to request (a decoder's T), verified request
        by request (`optimizer.verify_per_request`; INT8 built from the default candidate alone,
        `optimizer.value_length_int8`): its record, and FP32's answers and the build's, run once for the speed gate
        too; None where every output keeps its shape past axis 0, which the stacked verification judges. An INT8
        refusal names the FP32 route (`refusal_advice`)."""
        if not self.options.unbatched:
            return None
        probe = self.held_out.take(0, min(len(self.held_out), SHAPE_PROBE_REQUESTS))  # an NMS detector's [K, 7] too
        if not varying_lengths(request_answers(reference, probe)):  # keeps its shape past axis 0: no second full pass
            return None
        expected = request_answers(reference, self.held_out)
        varying = varying_lengths(expected)
        if not varying:
            return None
        itself = Path(candidate).resolve() == Path(reference).resolve()
        budget = self.options.budget or DriftBudget()
        source = self.held_out_source
        built = None if itself else candidate
        record, got = per_request_record(expected, built, self.held_out, source, budget, varying, self.user_metric)
        record["enforced"] = not self.options.keep_failing
        if self.options.precision == "int8":
            record["notes"].append(f"INT8: {SEARCH_SKIPPED}")
        if not record["holds"] and not self.options.keep_failing:
            advice, extra = refusal_advice(record) if self.options.precision == "int8" else ([], {})
            refusal = drift_refusal({**record, "advice": advice} if advice else record, self.options.precision)
            raise BudgetExceeded(refusal, {**getattr(refusal, "record", {}), **extra})
        return record, (expected, got)

    def _timed_here(self) -> bool:
        """Speed is measured where the target runs the ONNX model on this CPU (not for TensorRT engines)."""
        return self.options.speed.enabled and self._runs_here()

    def _runs_here(self) -> bool:
        """Whether the target runs the ONNX model on this CPU (TensorRT builds an engine for a GPU)."""
        return bool(getattr(self.engine, "runs_on_cpu", self.engine.name != "tensorrt"))

    def _speed(
        self,
        fp32: Path,
        int8: Path,
        verification: dict[str, Any],
        kept_for_drift: str,
        rows: TimingRows,
        timed: TimedRequest | None = None,
    ) -> dict[str, Any]:
        """`verification`: the drift, judged first (failing only under --keep-failing, which the refusal must not
        hide); a refusal carries it, so the figures behind "its drift is within the budget" are printed with it, and
        says on how few rows it held where they are too few to show the budget (`drift_evidence.thin_evidence`).
        `kept_for_drift`: what the search kept FP32 to hold the budget (`speed_verdict.drift_kept`). `rows`: the
        batch timed, --timing-batch or fewer where that would not fit (`optimizer.timing_rows`). `timed`: the request
        timed of a build whose answer length follows the values, its note (answers of different lengths) kept."""
        self.options.progress("time")
        settings = self.options.speed
        batch = next(self.held_out.batches(rows.rows)) if timed is None else self.held_out.request(timed.index)
        samples = 1 if self.held_out.requests.whole else None
        speed = compare_speed(fp32, int8, batch, settings, samples, kept_for_drift)
        if rows.lowered:
            speed = replace(speed, batch_asked=rows.asked, batch_note=rows.note())
        if timed is not None and timed.note:  # the speed record's note, printed as the batch's is
            speed = replace(speed, batch_note="; ".join(filter(None, (speed.batch_note, timed.note))))
        if not speed.holds and not settings.allow_slower:
            line = speed.line(bool(verification["holds"]), verification.get("thin_evidence") or ())
            raise BudgetExceeded(line, {**getattr(line, "record", {}), "verification": dict(verification)})
        return {**speed.to_dict(), "enforced": not settings.allow_slower}

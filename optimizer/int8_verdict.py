"""What the INT8 search concludes: the one-line refusals where no INT8 model can ship (the time ran out, every
compute group kept FP32 and still missing, nothing left in INT8) and the stage record of what was tried,
measured and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.activation_outliers import STATS_BATCH, ActivationOutliers, activation_outliers
from optimizer.compute_share import has_subgraph_compute, int8_share_with_subgraphs
from optimizer.cpu_isa import BUILD_CPU, SATURATING_WEIGHTS, build_cpu_record, cpu_flags, saturating_weights
from optimizer.drift_budget import BudgetExceeded, Refusal
from optimizer.drift_checks import DriftReport
from optimizer.image_scale import with_fp32_scale
from optimizer.int8_confirm import SearchConfirmation
from optimizer.int8_measure import Candidate
from optimizer.int8_refusal_words import (
    all_rows_passed_over,
    capped_line,
    closest_candidate,
    closest_note,
    drift_record,
    far_from_budget,
    mixed_from,
    search_cut_words,
    thin_slack_note,
    where_drift_is,
    with_fusion_hint,
    worst_line,
)
from optimizer.int8_schemes import SmoothStaticScheme, calibrates_activations
from optimizer.profile import ModelProfile
from optimizer.refusal_figures import candidate_verification, failing_check_figures, figure_rows
from optimizer.search_budget import MIXED_OUT_OF_TIME, SearchBudget, time_cut_note
from optimizer.sensitivity import EXHAUSTED
from optimizer.speed import Block, cpu_model
from optimizer.speed_share import fp32_compute_record
from optimizer.time_drift_words import judged_record, judged_words, missed_far
from optimizer.timing_rows import TimingRows
from quantserve.artifact import Artifact
from quantserve.runner import request_rows


def timed_samples(batch: dict[str, np.ndarray], whole: bool) -> int:
    """The samples in the paired timing's batch, as verification's speed record counts them (`batch_size`): one where
    it is an --unbatched build's whole request (its axis 0 a sample's frames), else its requests' rows
    (`request_rows`: one for rank-0 inputs alone, where `batch_rows`, rows to slice, read 0)."""
    return 1 if whole else request_rows(batch)


class SearchVerdict(SearchConfirmation):
    """The search run's refusals and stage record (the run's state: `optimizer.int8_search`)."""

    budget: SearchBudget
    encoder: str | None
    macs: dict[str, int]
    fp32_profile: ModelProfile
    timing_batch: dict[str, np.ndarray]
    timing_rows: TimingRows
    stats_rows: int  # rows of the statistics rows run at once (`_SearchRun`: bounded by their activations' bytes)
    skipped: dict[str, str]
    fused: Artifact
    method: str  # the calibration method of the static schemes (`--method`)
    _outliers_seen: ActivationOutliers | None  # set by `_outliers`, once
    paired: dict[Path, Block]
    judged: list[tuple[str, DriftReport]]  # every built model's drift, judged before its timing (`_measured`)

    def _told(self, refusal: BudgetExceeded, chosen: Candidate, tried: Sequence[Candidate]) -> BudgetExceeded:
        """A refusal of the search, with what a drift one rests on: the outliers calibration saw and the method advice
        that fits them, each candidate tried and left undone with its figure on the check that failed
        (`failing_check_figures`), and the closest model's table that `optimize` prints first."""
        record = refusal.record
        line = str(refusal)
        if record.get("refused_for") == "drift":  # every candidate tried missed: each one refused
            more_time = bool(record.get("time_may_help"))  # the advice ends with deploy fp32 already
            record.update(self._outlier_record(more_time), refused_schemes=sorted({c.scheme for c in tried}))
            if record.get("violations"):
                words, figures = self._tried_figures(record["violations"][0], tried)
                line, record["candidates_on_failing_check"] = f"{line}; {words}", figures
        for key, figures in self._closest_figures(chosen, tried).items():  # the table optimize prints first
            record.setdefault(key, figures)
        return refusal if line == str(refusal) else BudgetExceeded(line, record)

    def _tried_figures(self, violation: dict[str, Any], tried: Sequence[Candidate]) -> tuple[str, dict[str, Any]]:
        """Each candidate tried and its figure on the check `violation` failed, on the search's rows and on all of
        them where judged there; the schemes left undone, with why (`failing_check_figures`)."""
        rows = [
            (f"{c.scheme}{self._kept_fp32(c)}", c.speedup, c.drift, self.all_rows.get(c.path, (c, None))[1])
            for c in tried
        ]
        undone = {name: why for name, why in self.skipped.items() if name not in {c.scheme for c in tried}}
        counts = (len(self.stage.held_out), self._rows())
        return failing_check_figures(violation, figure_rows(violation, rows), undone, counts)

    def _time_refusal(self, closest: str = "", far: str = "") -> str:
        """The search budget's out-of-time line (`SearchBudget.refusal`), naming --model-type bert where the graph is
        an encoder ONNX Runtime's fusions would shrink (`with_fusion_hint`)."""
        return with_fusion_hint(self.budget.refusal(closest, far), self.model, self.stage.model_type)

    def _untimed_refusal(self) -> str:
        """`_time_refusal` where no candidate was timed: with the drift judged of those stopped before their timing,
        and where each missed far, by how much (`optimizer.time_drift_words`)."""
        rows = (len(self.stage.held_out), self._rows())
        words = "; ".join(part for part in (judged_words(self.judged, rows), missed_far(self.judged)) if part)
        line = with_fusion_hint(self.budget.refusal(judged=words), self.model, self.stage.model_type)
        return Refusal(line, {**getattr(line, "record", {}), **judged_record(self.judged)})

    def _refuse_unverified(self, chosen: Candidate, mixed: dict[str, Any]) -> None:
        """Where the time ran out and the best model found misses the budget, the search did not finish: refused in
        one line naming the flag that raises the budget where more time may hold it, else saying to deploy fp32 and
        what might help (`_far_from_budget`). --keep-failing ships the closest, its misses recorded."""
        if not self.budget.ran_out or chosen.drift.holds or self.stage.keep_failing:
            return
        worst = worst_line(chosen)
        closest = f"{chosen.scheme}{self._kept_fp32(chosen)}, {worst}" if worst else ""
        far, shortfall, moved = far_from_budget(
            chosen, mixed, self.budget.seconds, partial(self._what_may_help, chosen)
        )
        line = self._time_refusal(closest, far)
        figures = {"shortfall_in_allowed_drift": round(shortfall, 2), "mixed_precision_moved": round(moved, 2)}
        outliers = self._outlier_record() if far else {}
        raise BudgetExceeded(
            line, {**getattr(line, "record", {}), **figures, **outliers, "candidates": [chosen.summary()]}
        )

    def _refuse_capped(self, chosen: Candidate, mixed: dict[str, Any], tried: Sequence[Candidate] = ()) -> None:
        """Where the mixed-precision search stopped at its own cap (`SearchSettings.mixed_cap_s`) with the whole
        budget not spent and the closest model still missing, refused in one line saying so and how to give that
        search more time. deepCR's U-Net at --max-search-s 1200 stopped it after 5 of 8 steps with 859 s left and
        was refused by verification's generic line (calibration advice only), as if the search had finished."""
        if mixed.get("stopped") != MIXED_OUT_OF_TIME or self.budget.ran_out or chosen.drift.holds:
            return
        if self.stage.keep_failing:
            return
        worst = worst_line(chosen)
        closest = f"; closest: {chosen.scheme}{self._kept_fp32(chosen)}, {worst}" if worst else ""
        far, shortfall, _ = self._far(chosen, mixed)
        line = capped_line(mixed, self.stage.search.mixed_cap_s(), self.budget.seconds, closest, far, tried)
        record = {**drift_record(chosen, [], mixed), "shortfall_in_allowed_drift": round(shortfall, 2)}
        raise BudgetExceeded(line, {**record, **({"time_may_help": True} if not far else {})})

    def _closest_figures(self, chosen: Candidate, tried: Sequence[Candidate]) -> dict[str, Any]:
        """The refused search's closest INT8 model's held-out figures as the verification table a shipped build
        prints (per output, the --metric's FP32 and INT8 scores), which `optimize` prints before the line: `chosen`,
        or where it runs nothing in INT8, the tried candidate nearest the budget that does (`_nothing_in_int8`'s).
        A low-light enhancer's search refusal printed nothing, its --metric held (15.50 → 15.46 dB) unheard
        (session 55). An image output's PSNR miss carries FP32's own under 8-bit inputs (`optimizer.image_scale`).
        {} where no candidate quantizes anything."""
        if not self._quantizes_anything(chosen):
            int8 = [c for c in tried if self._quantizes_anything(c)]
            if not int8:
                return {}
            chosen = closest_candidate(int8)
        data = f"the search's held-out rows, closest INT8 model: {chosen.scheme}{self._kept_fp32(chosen)}"
        held = self.stage.held_out
        verification = candidate_verification(chosen.drift, self.stage.budget, data, len(held))
        # an image output's PSNR miss: FP32's own under 8-bit inputs, for scale (FP32's answers are at hand)
        return {"verification": with_fp32_scale(verification, self.fused.path, held, self.verify_batch, self.reference)}

    def _far(self, chosen: Candidate, mixed: dict[str, Any]) -> tuple[str, float, float]:
        return far_from_budget(chosen, mixed, self.budget.seconds, partial(self._what_may_help, chosen))

    def _what_may_help(self, chosen: Candidate) -> str:
        """What may hold the budget instead of more time, as " (or …)": clipping calibration where min/max calibration
        saw outliers (not for dynamic INT8, which calibrates nothing), and the flag that loosens the worst check."""
        options = []
        static = calibrates_activations(chosen.scheme)
        outliers = self._outliers() if self.method == "minmax" and static else None
        if outliers is not None and outliers.seen:
            peak = f"'{outliers.tensor}' peaks at {outliers.ratio:.1f}× its 99.9th percentile"
            options.append(f"--method percentile or entropy, which clip the outliers calibration saw ({peak})")
        # no looser budget flag here: the miss is over FAR_SHORTFALL× the drift allowed (NSNet2's denoiser at
        # correlation 0.70 against 0.98 was broken by hand; a flag loosened that far passes anything)
        return f" (or {', or '.join(options)})" if options else ""

    def _refuse_exhausted(self, chosen: Candidate, mixed: dict[str, Any], tried: list[Candidate]) -> None:
        """Where the mixed-precision search kept every compute group FP32 in turn and the budget still missed, what
        drifts is the Q/DQ left around the other ops (MediaPipe's hand landmarks: Clip, Add, Sigmoid), not one
        compute node: said so in one line (it went to verification's generic line, the search recorded as
        "every group kept FP32" beside an empty list kept). --keep-failing ships the closest, as elsewhere."""
        if mixed.get("stopped") != EXHAUSTED or chosen.drift.holds or self.stage.keep_failing:
            return
        hints: set[str] = set()  # a hint said once (`optimizer.hints_once`)
        worst, kept = worst_line(chosen, hints), self._kept_fp32(chosen)
        where = where_drift_is(tried, hints=hints, blurred=mixed_from(mixed))
        first = f" ({worst})" if worst and not kept else ""
        # the closest build a mix: its figures stand beside it, not beside its scheme (MediaPipe's full-range face
        # detector read "static_qdq misses it (… 0.7702 …)" where static_qdq read 0.574, the mix 0.7702; session 68)
        closest = f" (closest: {chosen.scheme}{kept}, {worst})" if worst and kept else ""
        raise BudgetExceeded(
            f"no INT8 model holds the drift budget: {chosen.scheme} misses it{first}, and still missed it with every "
            f"compute node kept FP32 in turn{closest}: {where}; nothing written: deploy "
            "fp32 (or pass --keep-failing to ship the closest INT8 model)",
            drift_record(chosen, [], mixed),
        )

    def _nothing_in_int8(self, tried: list[Candidate], mixed: dict[str, Any]) -> Candidate:
        """The mixed-precision search ended by keeping every compute node FP32: that is the FP32 model with Q/DQ
        around data movement, not an INT8 model (basic-pitch's CQT front end broke at every granularity; the search
        ended at 0 % of MACs in INT8 and the speed gate called it "1.03× FP32"). Refused in one line, or with
        --keep-failing the closest INT8 candidate is shipped, its misses recorded. The line says whether that
        all-FP32 variant held: MediaPipe's palm detector was told "it holds only with every compute node FP32"
        where it still missed (worst channel correlation 0.88), the same case `_refuse_exhausted` words."""
        int8 = [c for c in tried if self._quantizes_anything(c)]
        if not int8:  # nothing was left to quantize: every compute node excluded up front
            count = len(self.exclusions)
            raise BudgetExceeded(
                f"no INT8 model to ship: every compute node is kept FP32 ({count} node{'s' * (count != 1)} excluded: "
                "graph outputs and mixed-range tensors); nothing written: deploy fp32"
            )
        closest = closest_candidate(int8)
        if self.stage.keep_failing or not closest.drift.violations:
            return closest
        hints: set[str] = set()  # a hint said once (`optimizer.hints_once`)
        first = worst_line(closest, hints)
        all_fp32 = (mixed.get("result") or {}).get("holds", True)
        cut, more_time = search_cut_words(mixed) if all_fp32 else ("", "")
        where = "" if all_fp32 else where_drift_is(tried, closest, hints, mixed_from(mixed))
        verdict = (
            f"; it holds only with every compute node FP32{cut}"
            if all_fp32
            else f", and still missed it with every compute node kept FP32 in turn: {where}"
        )
        advice = more_time or "nothing written: deploy fp32 (or pass --keep-failing to ship the closest INT8 model)"
        record = {**drift_record(closest, tried, mixed), **({"time_may_help": True} if more_time else {})}
        raise BudgetExceeded(
            f"no INT8 model holds the drift budget: with its compute nodes in INT8, {closest.scheme} misses it "
            f"({first}){verdict}; {advice}",
            record,
        )

    def _outliers(self) -> ActivationOutliers | None:
        """Calibration data's activation outliers (`optimizer.activation_outliers`), measured once, on a miss."""
        if not hasattr(self, "_outliers_seen"):
            stats = self.stage.calib.take(0, min(len(self.stage.calib), self.stage.search.stats_samples))
            at_once = None if stats.unbatched else self.stats_rows  # an --unbatched request is run whole
            self._outliers_seen = activation_outliers(self.model, self.fused.path, stats.batches(STATS_BATCH), at_once)
        return self._outliers_seen

    def _outlier_record(self, time_may_help: bool = False) -> dict[str, Any]:
        """The outliers calibration saw and, for a min/max calibration, the method advice that fits them (where the
        refusal's own advice is more time, ending with "deploy fp32" already, without its closing "deploy fp32")."""
        outliers = self._outliers()
        if outliers is None:
            return {}
        advice = outliers.method_hint()
        if time_may_help:
            advice = advice.removesuffix(": deploy fp32")
        hint = {"method_hint": advice} if self.method == "minmax" else {}
        return {"activation_outliers": outliers.to_dict(), **hint}

    def _record(self, chosen: Candidate, tried: list[Candidate], mixed: dict[str, Any]) -> dict[str, Any]:
        int8 = self._quantized(chosen.path)
        # the chosen model's own: a mix not chosen kept nothing of it, a scheme's own FP32 nodes do count
        kept = list(dict.fromkeys([*(e.node for e in self.exclusions), *chosen.excluded]))
        record: dict[str, Any] = {
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
            # the CPU this drift was measured on, the one the INT8 kernels ran on (deploy warns where serving's differ)
            BUILD_CPU: build_cpu_record(cpu_model(), cpu_flags()),
            SATURATING_WEIGHTS: saturating_weights(chosen.record),
            "speed": {  # timed alternately, FP32 beside the chosen model (`_SearchRun._paired`)
                "fp32_run_ms": self.paired[chosen.path].fp32_ms,
                "int8_run_ms": self.paired[chosen.path].int8_ms,
                "speedup": chosen.speedup,
                "pairs": self.paired[chosen.path].pairs,
                "others_share": self.paired[chosen.path].others_share,
                "threads": self._threads(),
                "batch": timed_samples(self.timing_batch, self.stage.held_out.requests.whole),
                "timing_rows": self.timing_rows.to_dict(),  # --timing-batch, and why fewer were timed
            },
            "candidates": [c.summary() for c in tried],
            "skipped": self.skipped,
            "excluded": [e.to_dict() for e in self.exclusions],
            "mixed_precision": mixed or None,
            "kept_fp32": kept,
            "int8_nodes": len(int8),
            **self._share_record(chosen.path, int8, kept),  # INT8 share of the multiply-adds, all FP32 compute
            "smoothquant": self._smooth_record(chosen),
            "time_budget": self.budget.record(),
            "all_rows": self._all_rows_record(),  # the winner judged on every held-out row (`_confirmed`)
            **({} if chosen.drift.holds else self._outlier_record()),  # what verification's refusal may cite
        }
        record["passed_over_note"] = self._passed_over_note(chosen, tried)  # optimize prints it
        return {**record, "left_undone_note": time_cut_note(record)}  # what its time cut short, as optimize says it

    def _share_record(self, path: Path, int8: list[str], kept: list[str]) -> dict[str, Any]:
        """`int8_mac_share` and the compute left FP32 (`fp32_compute_record`), with the compute inside Loop/Scan/If
        bodies (`int8_share_with_subgraphs`, the share None where it cannot be read): SLANet-plus' decoder loop, left
        FP32 by the quantizer and uncounted, read "100% of MACs in INT8" (session 67)."""
        total = sum(self.macs.values())
        share = sum(self.macs.get(n, 0) for n in int8) / total if total else None
        record = fp32_compute_record(self.model, self.macs, int8, kept) if self.macs else {}
        if not self.macs or not has_subgraph_compute(self.model):  # no compute read: the share 0, as before
            return {"int8_mac_share": share or 0.0, **record}
        built = onnx.load(str(path), load_external_data=False)
        read, compute = int8_share_with_subgraphs(self.model, built, share, record.get("fp32_compute", {}))
        return {"int8_mac_share": read, "fp32_compute_kept": 0, **record, "fp32_compute": compute}

    def _passed_over_note(self, chosen: Candidate, tried: Sequence[Candidate]) -> str:
        """Where a candidate timed faster than the chosen one met the drift budget with less slack than the search
        trusts (`SearchSettings.min_margin`, kept for held-out noise), the note that says it was passed over and why;
        "" otherwise. g2pM's masked tagger (session 57) shipped static Q/DQ over dynamic INT8, timed faster in the
        search and within budget at margin 0.023, with no word of why. And where a faster one held on the search's
        held-out rows but missed on all of them, or fed its own state (`_confirmed`), the note that says so."""
        missed = [(f"{c.scheme}{self._kept_fp32(c)}", c.speedup, d) for c, d in self.all_rows.values() if not d.holds]
        counts = (len(self.stage.held_out), self._rows())
        chosen_words = f"{chosen.scheme}{self._kept_fp32(chosen)} ({chosen.speedup:.2f}×)"
        notes = (all_rows_passed_over(missed, chosen_words, *counts), self._stream_passed_over(chosen))
        kept_failing = closest_note(chosen, tried, self._kept_fp32)  # shipped past the budget: chosen by --metric first
        return "; ".join(w for w in (*notes, self._thin(chosen, tried), kept_failing) if w)

    def _rows(self) -> int:
        """Verification's held-out rows: all of them, not the search's first `max_eval_samples`."""
        return len(self.stage.held_out if self.every_row is None else self.every_row)

    def _all_rows_record(self) -> dict[str, Any] | None:
        """Which models were judged on every held-out row, and how they fared; None where none was."""
        judged = [
            {**c.summary(), "holds": d.holds, "margin": d.margin(), "violations": [v.line() for v in d.violations]}
            for c, d in self.all_rows.values()
        ]
        return {"rows": self._rows(), "searched_rows": len(self.stage.held_out), "judged": judged} if judged else None

    def _thin(self, chosen: Candidate, tried: Sequence[Candidate]) -> str:
        rows = (len(self.stage.held_out), self.stage.search.max_eval_samples)
        return thin_slack_note(chosen, tried, self.stage.search.min_margin, rows, self._kept_fp32)

    def _smooth_record(self, chosen: Candidate) -> dict[str, Any] | None:
        """What smoothing did, where a smoothed candidate was tried; whether it was the one shipped."""
        smooth = next((s for s in self.schemes.values() if isinstance(s, SmoothStaticScheme)), None)
        record = smooth.record() if smooth else None
        return None if record is None else {**record, "chosen": chosen.scheme == SmoothStaticScheme.name}

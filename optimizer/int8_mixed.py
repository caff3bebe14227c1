"""The INT8 search's mixed-precision runs: from the candidate nearest the drift budget, the compute nodes with the
worst drift per ms saved kept FP32 until the budget holds or the time is up (`optimizer.sensitivity`), and the same
again from another start where that one ended badly: from the closest 8-bit candidate where a 7-bit start missed,
from the fastest candidate where the mix held only below the speed bar. Each run's record says where it started,
what it kept FP32 and why, and what cut it short.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from optimizer.cpu_clock import CpuClock
from optimizer.drift_checks import DriftReport
from optimizer.int8_fallbacks import FallbackSchemes
from optimizer.int8_measure import Candidate
from optimizer.int8_schemes import DynamicScheme, Scheme
from optimizer.search_budget import STEP, TIMING, mixed_view
from optimizer.sensitivity import Attempt, MixedPrecisionSearch, time_saved_ms
from optimizer.speed import SpeedSettings

FASTER = 1.05  # a non-holding candidate this much faster than the best holding one gets a mixed search
# a mix holding below this (optimize's default --min-speedup) is searched again from the fastest candidate
SLOW_MIX = SpeedSettings().min_speedup


class MixedPrecisionStarts(FallbackSchemes):
    """Which starts the search run's mixed-precision search takes, and each run (the run's state:
    `optimizer.int8_search`)."""

    work: Path  # the search's scratch folder: each variant the mixed-precision search builds is written there
    # a built model measured as a candidate: drift, profile and paired timing (`_SearchRun._measured`)
    _measured: Callable[[Scheme, Path, Sequence[str], DriftReport | None], Candidate]

    def _eight_bit_mix(
        self, faster: list[Candidate], start: Candidate, found: Candidate, record: dict[str, Any], base: list[str]
    ) -> tuple[Candidate, dict[str, Any]]:
        """Where the mixed search from a 7-bit start missed, the same from the closest 8-bit one, time allowing: fer
        with --method percentile (AVX2-only EPYC) started from 7-bit weights (closer at first), ended at top-1
        agreement 0.965 and was refused as "no INT8 model holds", while the 8-bit mix held at 0.9925."""
        eight = [c for c in faster if not c.record.get("reduce_range_why")]
        if self._accept(found.drift) or not start.record.get("reduce_range_why") or not eight or self.budget.ran_out:
            return found, record
        again, again_record = self._mixed_precision(max(eight, key=lambda c: (c.drift.margin(), c.speedup)), base)
        if self._accept(again.drift) or again.drift.margin() > found.drift.margin():
            return again, {**again_record, "seven_bit_start": {"scheme": start.scheme, "margin": found.drift.margin()}}
        return found, {**record, "eight_bit_start": {"scheme": again.scheme, "margin": again.drift.margin()}}

    def _fastest_mix(
        self, faster: list[Candidate], best: Candidate | None, found: Candidate, record: dict[str, Any], base: list[str]
    ) -> tuple[Candidate, dict[str, Any]]:
        """Where neither the mix from the candidate nearest the budget nor the best holding scheme holds at the speed
        bar (`SLOW_MIX`), the same search from the fastest candidate, time allowing. arabic-diacritizer's BiLSTM
        tagger (session 46): the mix from static Q/DQ held at 0.69× and was refused as slower, while dynamic INT8
        (2.02×, agreement 0.82) missed by one attention projection: kept FP32 by hand, 0.9989 at 1.76×."""
        fastest = max(faster, key=lambda c: c.speedup)
        held = [c.speedup for c in (found, best) if c is not None and self._accept(c.drift)]
        if fastest.scheme == record.get("from_scheme") or max(held, default=0.0) >= SLOW_MIX or self.budget.ran_out:
            return found, record
        if fastest.speedup < FASTER * max(held, default=0.0):
            return found, record
        again, again_record = self._mixed_precision(fastest, base)
        if self._accept(again.drift) and again.speedup > max(held, default=0.0):
            first = {"scheme": record.get("from_scheme"), "speedup": found.speedup, "holds": self._accept(found.drift)}
            return again, {**again_record, "nearest_start": first}
        return found, {**record, "fastest_start": {"scheme": again.scheme, "speedup": again.speedup}}

    def _mixed_precision(self, start: Candidate, base: list[str]) -> tuple[Candidate, dict[str, Any]]:
        """Keep the nodes with the worst drift per ms saved FP32 until the budget holds (or time is up)."""
        scheme = self.schemes[start.scheme]
        nodes = self._quantized(start.path)
        op_types = {n.name: n.op_type for n in self.model.graph.node}
        saved = time_saved_ms(nodes, op_types, self.fp32_profile.ms_by_node(), start.profile.ms_by_node())
        count = iter(range(10**6))

        def build(kept: Sequence[str]) -> Path:
            return scheme.variant(self.fused, base, kept, self.work / f"{scheme.name}-{next(count)}.onnx")

        started = time.monotonic()
        mixed_budget = mixed_view(self.budget, self.stage.search.mixed_cap_s())
        search = MixedPrecisionSearch(
            build,
            self._probe_drift,
            lambda path: self._drift(path, independent=not isinstance(scheme, DynamicScheme)),
            mixed_budget,
            self.stage.search.max_probes,
            self._accept,
            self.stage.on_progress,
            reserve_s=self.budget.cost(TIMING),  # the winner is still to be timed
            scores_lead=DriftReport.scores_lead,
        )
        clock = CpuClock.now()  # how busy the machine was while it searched: said where its time cuts it short
        result = search.run(Attempt([], start.path, start.drift, full=True), nodes, saved)
        others_share = clock.others_share()
        self.budget.absorb(mixed_budget)
        kept = result.best.kept
        # Ship the variant the search measured (for static Q/DQ: the calibrated model with `kept` restored to FP32),
        # its held-out drift reused; one judged on the probe rows alone is measured, where the time holds that.
        best = result.best
        chosen = start
        if kept and (best.full or not self.budget.ran_out):  # the winner's timing, stopped at the deadline: start
            work = partial(self._measured, scheme, best.path, [*base, *kept], best.drift if best.full else None)
            chosen = self.budget.attempt(TIMING, "timing the mixed-precision result", work) or start
        reasons = {n: p for p in result.probes for n in p["nodes"]}
        record = {
            "from_scheme": start.scheme,
            "start_margin": start.drift.margin(),
            "result": chosen.summary(),
            "kept_fp32": [
                {
                    "node": n,
                    "op_type": op_types.get(n, "?"),
                    "ms_saved_by_int8": saved.get(n, 0.0),
                    "group_margin_gain": reasons.get(n, {}).get("margin_gain"),
                }
                for n in kept
            ],
            "probes": result.probes,
            "steps": result.steps,
            "returned_to_int8": result.returned,
            "stopped": result.stopped,
            "ranked_by": result.ranked_by,
            "search_s": round(time.monotonic() - started, 2),
            # what cut it short, where time did: its own cap, or the whole --max-search-s (`search_cut_words`)
            "cut_by": (("max_search_s" if mixed_budget.bound_by_parent else "cap") if mixed_budget.cut else None),
            "cap_s": self.stage.search.mixed_cap_s(),
            "max_search_s": self.budget.seconds,
            "step_s": round(self.budget.cost(STEP), 2),  # the longest step so far: what one more would take
            "others_share": others_share,  # share of the cores other processes used while it searched
        }
        return chosen, record

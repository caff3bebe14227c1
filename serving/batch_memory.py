"""Whether a full batch at --max-batch fits this machine's memory, by the FP32 session's footprint optimize measured.

Session 54: `infer` of 1 024 000 rows to the demo's model deployed with `--max-batch 2000000` grew the model process to
20 GB and the kernel killed it; deploy had said nothing. Shape inference is too coarse to warn by (it summed 6.3 MiB a
sample for a model whose process grew 20 KB a row), but optimize measures the FP32 session in a child to choose its
timing batch (`optimizer.timing_rows`) and keeps the figures in the INT8 search's stage record; an FP32 build, timing
nothing, measures its session alone and keeps them in its fuse stage's record (session 56). Each instance is its
own ONNX Runtime session with its own arena, so a full batch is counted once an instance; an INT8 model's rows are
counted at FP32's cost, as the timing batch counts them. An estimate, and the serving machine may differ: a warning.
Builds without the figures (older manifests, --unbatched or TensorRT ones) are not weighed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

# Where the figures sit in a stage record: `speed.timing_rows.footprint`, as `optimizer.timing_rows.TimingRows` writes
# them, or `footprint` (an FP32 build's: `timing_rows.footprint_record`); their field names, as serving reads the
# manifest's dict, not the optimizer's types
SPEED_KEY, TIMING_ROWS_KEY, FOOTPRINT_KEY = "speed", "timing_rows", "footprint"
MEMORY_SHARE = 0.5  # a full batch may hold this much of the machine's memory before deploy warns


@dataclass(frozen=True)
class MeasuredFootprint:
    """The FP32 session as optimize measured it: its RSS once created, a row's cost, and a run's fixed workspace."""

    session_bytes: int
    row_bytes: int
    fixed_bytes: int = 0
    int8_counted: bool = True  # an INT8 build's, its rows counted at FP32's cost (an FP32 build's own: False)

    def batch_bytes(self, max_batch: int, instances: int = 1) -> int:
        """A full batch's peak: every instance its own session, arena and batch of `max_batch` rows."""
        return instances * (self.session_bytes + self.fixed_bytes + max_batch * self.row_bytes)

    def rows_within(self, allowed: int, instances: int = 1) -> int:
        """The most rows a full batch may hold within `allowed` bytes, over `instances` (0 where none fit)."""
        spare = allowed // max(instances, 1) - self.session_bytes - self.fixed_bytes
        return max(0, spare // self.row_bytes) if self.row_bytes > 0 else 0


def measured_footprint(stages: Sequence[Mapping[str, Any]]) -> MeasuredFootprint | None:
    """The footprint the build's stage records keep; None where none was measured."""
    for stage in stages:
        rows = (stage.get(SPEED_KEY) or {}).get(TIMING_ROWS_KEY) or {}
        figures = rows.get(FOOTPRINT_KEY) or stage.get(FOOTPRINT_KEY)
        if figures:
            int8 = bool(rows.get(FOOTPRINT_KEY))  # the INT8 search's timing batch measured it
            sizes = (int(figures["session_bytes"]), int(figures["row_bytes"]), int(figures["fixed_bytes"]))
            return MeasuredFootprint(*sizes, int8_counted=int8)
    return None


def batch_memory_line(
    stages: Sequence[Mapping[str, Any]], max_batch: int, instances: int, total: int | None = None
) -> str:
    """One line where a full batch of `max_batch` rows on `instances` instances would hold more than MEMORY_SHARE of
    `total` (this machine's memory); "" where it fits, nothing was measured, or the model is unbatched."""
    footprint = measured_footprint(stages)
    if footprint is None or max_batch <= 0 or footprint.row_bytes <= 0:
        return ""
    total = psutil.virtual_memory().total if total is None else total
    need = footprint.batch_bytes(max_batch, instances)
    if need <= total * MEMORY_SHARE:
        return ""
    fit = footprint.rows_within(int(total * MEMORY_SHARE), instances)
    counted = ", INT8 counted the same" if footprint.int8_counted else ""
    each = "1 instance" if instances == 1 else f"{instances} instances, each its own session"
    lower = f"--max-batch (at most ~{fit} rows fit in half the memory)" if fit else "--instances"
    return (
        f"--max-batch {max_batch} would need ~{_size(need)} of memory at a full batch ({each}; optimize measured "
        f"~{_size(footprint.row_bytes)} a row in FP32{counted}): this machine has {_size(total)}, and a "
        f"batch that large can get the model's process killed: lower {lower}"
    )


def _size(count: float) -> str:
    """Bytes in words: 20 KB, 3.1 MB, 38 GB (decimal units, as optimize's notes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{int(count)} bytes"

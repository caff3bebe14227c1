"""What INT8 covers of a timed model, and the most it can gain by it: the speed gate reads the INT8 share of the
multiply-adds whenever it times INT8, and a share too small to reach --min-speedup refuses the build whatever the
clock said. @vladmandic/human's faceres shipped static_qdq_matmul_only with 0.046 % of its multiply-adds in INT8 at
"1.104×" timed while others took 86 % of the cores (session 64): Amdahl's law caps it near 1.0005×.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.compute_share import int8_compute_share
from optimizer.speed_verdict import sliver_reason

# The per-op gain assumed for the INT8 part when asking whether a share can reach the bar at all: generous on
# purpose, so only builds no kernel could save are refused. VNNI's vpdpbusd does 4 u8×s8 multiply-adds per 32-bit
# lane where an FP32 FMA does 1; the most a whole model gained here was 3.44× (faceres, static_qdq_conv_only, its
# convolutions all INT8, timed on a busy machine).
GENEROUS_INT8_GAIN = 4.0


def amdahl_ceiling(int8_share: float, gain: float = GENEROUS_INT8_GAIN) -> float:
    """The most a model with `int8_share` of its multiply-adds in INT8 can run faster than FP32 where each INT8 op
    gains `gain`×: 1 / (1 - s + s / G) (the FP32 rest runs as before, the Q/DQ around the INT8 part costs nothing)."""
    share = min(max(int8_share, 0.0), 1.0)
    return 1.0 / (1.0 - share + share / gain)


def compute_share(
    fp32: Path, int8: Path, batch: dict[str, np.ndarray], whole: bool = False
) -> tuple[float | None, dict[str, int]]:
    """What INT8 covers of a timed model (`int8_compute_share`; `whole`: the batch is one --unbatched sample, read
    whole); (None, {}) where the graph cannot say (the speed gate then judges by the clock alone and a refusal keeps
    its general line: the figures are never a reason to fail). It costs one FP32 run of one row with its compute
    nodes' tensors read, and two graph loads: faceres (120 nodes, batch 8) took 0.2-0.4 s beside
    its minute of timing."""
    try:
        return int8_compute_share(fp32, int8, batch, whole)
    except Exception:  # any graph ONNX Runtime or shape reading balks at: the general line stays
        return None, {}


def fp32_compute_record(
    model: onnx.ModelProto, macs: Mapping[str, int], int8_nodes: Iterable[str], kept: Iterable[str]
) -> dict[str, Any]:
    """The calibrate record's `fp32_compute`, {op type: compute nodes} of `model`'s multiply-add nodes (`macs`,
    `compute_share.compute_macs`) left FP32, those with the most multiply-adds first, and `fp32_compute_kept`, how
    many of them the build `kept` FP32 (exclusions, the mixed-precision search): the rest the scheme does not
    quantize. The calibrate row had counted only the kept: faceres' "10 nodes FP32" (9 output ops, 1 MatMul) beside
    27 convolutions static_qdq_matmul_only never quantizes (session 64)."""
    int8, op_types = set(int8_nodes), {node.name: node.op_type for node in model.graph.node}
    by_op: dict[str, list[int]] = {}  # op type -> [nodes, multiply-adds]
    for name, count in macs.items():
        if name not in int8:
            entry = by_op.setdefault(op_types.get(name, "?"), [0, 0])
            entry[0], entry[1] = entry[0] + 1, entry[1] + count
    counts = {op: by_op[op][0] for op in sorted(by_op, key=lambda op: -by_op[op][1])}
    return {"fp32_compute": counts, "fp32_compute_kept": len({n for n in kept if n in macs and n not in int8})}


def noise_reason(speedup: float, int8_share: float, fp32_compute: Mapping[str, int], min_speedup: float) -> str:
    """Why a speedup the clock measured over the bar is not INT8's, e.g. "the 1.10× measured is timing noise: only
    0.046 % of multiply-adds are INT8 (Conv ×27, MatMul ×1 stay FP32), so INT8 is at most 1.00× FP32 even if every
    INT8 op ran 4× faster, below --min-speedup 1.1"."""
    ceiling = amdahl_ceiling(int8_share)
    return (
        f"the {speedup:.2f}× measured is timing noise: {sliver_reason(int8_share, fp32_compute)}, so INT8 is at most "
        f"{ceiling:.2f}× FP32 even if every INT8 op ran {GENEROUS_INT8_GAIN:g}× faster, below --min-speedup "
        f"{min_speedup:g}"
    )

"""Rows answered against rows sent: a batching model answers one row of every output per row of its request.

A served model that answered `x[0:-1] @ W` (one row short) passed silently: `infer --batch-size 1` saved 0 rows
for 64 sent and exited 0, and a load test counted every such request a success, the broken model faster than the
right one. `infer`, `evaluate` (the gRPC runner) and the Locust users check every response with this one rule.
A model with max_batch_size 0 has no batch axis, and a rank-0 output none either: neither is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def batches_requests(config: dict[str, Any]) -> bool:
    """Whether a model config (as Triton's JSON gives it) has a batch axis: max_batch_size above 0."""
    return int(config.get("max_batch_size", 0) or 0) > 0


def row_mismatch(model: str, sent: int, outputs: Iterable[tuple[str, Sequence[int]]]) -> str | None:
    """One line naming the first output (name, shape) whose axis 0 is not `sent` rows; None when all are."""
    for name, shape in outputs:
        if len(shape) and int(shape[0]) != sent:
            answered = int(shape[0])
            rows = "row" if answered == 1 else "rows"
            return f"model '{model}' answered {answered} {rows} for {sent} sent (output '{name}')"
    return None

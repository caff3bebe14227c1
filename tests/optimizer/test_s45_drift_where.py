"""Where a refusal says the drift is, once every compute node kept FP32 still missed (session 45): in the quantized
data movement, and in the compute nodes too where a scheme quantizing those alone missed as well (SSD's face
detector and WHENet's head pose net broke under conv-only INT8 too, and the line blamed the data movement alone)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from optimizer.drift_budget import BudgetExceeded
from optimizer.drift_checks import Violation
from optimizer.int8_search import _SearchRun
from optimizer.sensitivity import EXHAUSTED


def _candidate(scheme: str, value: float | None) -> SimpleNamespace:
    violations = [] if value is None else [Violation("scores", "channel_correlation_worst", value, 0.98)]
    drift = SimpleNamespace(
        holds=not violations, violations=violations, outputs={}, margin=lambda: (value or 1) - 0.98, advice=[]
    )
    return SimpleNamespace(scheme=scheme, drift=drift, summary=dict)


def _refusal(tried: list[SimpleNamespace]) -> str:
    run = SimpleNamespace(stage=SimpleNamespace(keep_failing=False), _kept_fp32=lambda _: "")  # no mix: the scheme
    with pytest.raises(BudgetExceeded) as refused:
        _SearchRun._refuse_exhausted(run, tried[0], {"stopped": EXHAUSTED}, tried)  # type: ignore[arg-type]
    return str(refused.value)


def test_a_compute_only_miss_puts_the_drift_in_the_compute_nodes_too() -> None:
    line = _refusal([_candidate("static_qdq", 0.7), _candidate("static_qdq_compute", 0.81)])
    assert (
        "the drift is in the quantized data movement between them, and in the compute nodes too: static_qdq_compute, "
        "which quantizes them alone, misses it (output 'scores': worst channel correlation 0.81 < budget 0.98); "
        "nothing written" in line
    ), line


def test_dynamic_int8_missing_counts_as_the_compute_nodes_drifting() -> None:
    line = _refusal([_candidate("static_qdq", 0.7), _candidate("dynamic", 0.9)])
    assert "and in the compute nodes too: dynamic, which quantizes them alone, misses it" in line, line


def test_a_compute_only_scheme_that_held_leaves_the_data_movement_alone_to_blame() -> None:
    for tried in (
        [_candidate("static_qdq", 0.7)],
        [_candidate("static_qdq", 0.7), _candidate("static_qdq_compute", None)],
    ):
        line = _refusal(tried)
        assert line.endswith(
            "the drift is in the quantized data movement between them; nothing written: deploy fp32 (or pass "
            "--keep-failing to ship the closest INT8 model)"
        ), line

"""Of INT8 candidates equally near the drift budget, the faster is the closest (probe T2, session 56: static Q/DQ
at 0.56× FP32 and dynamic INT8 at 2.39× tied on an MLP's top-1 agreement; --keep-failing and bench took the first
tried, the slower)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from optimizer.int8_verdict import closest_candidate


def _candidate(scheme: str, margin: float, speedup: float) -> Any:
    drift = SimpleNamespace(margin=lambda: margin, violations=[], user_metric=None)  # no --metric given
    return SimpleNamespace(scheme=scheme, speedup=speedup, drift=drift)


def test_equally_near_candidates_go_to_the_faster() -> None:
    static, dynamic = _candidate("static_qdq", -0.4, 0.56), _candidate("dynamic", -0.4, 2.39)
    assert closest_candidate([static, dynamic]).scheme == "dynamic"


def test_the_nearer_candidate_wins_over_a_faster_one() -> None:
    near, fast = _candidate("static_qdq", -0.1, 0.9), _candidate("dynamic", -0.4, 2.39)
    assert closest_candidate([near, fast]).scheme == "static_qdq"

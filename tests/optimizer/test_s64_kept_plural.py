"""The mixed-precision search's note counts its FP32 nodes in the right number (probe D, session 64: faceres's note
read "the mixed-precision search from static_qdq_matmul_only kept 1 compute nodes FP32 to hold the drift budget")."""

from __future__ import annotations

from optimizer.speed_verdict import drift_kept


def _calibrate(kept: int) -> list[dict[str, object]]:
    mixed = {"chosen": True, "from_scheme": "static_qdq_matmul_only", "kept_fp32": [{"node": "n"}] * kept}
    return [{"stage": "calibrate", "scheme": "static_qdq_matmul_only", "candidates": [], "mixed_precision": mixed}]


def test_one_kept_node_reads_in_the_singular() -> None:
    assert drift_kept(_calibrate(1)) == (
        "the mixed-precision search from static_qdq_matmul_only kept 1 compute node FP32 to hold the drift budget"
    )
    assert "kept 2 compute nodes FP32" in drift_kept(_calibrate(2))

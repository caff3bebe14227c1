"""INT8 on a sliver of the multiply-adds because the faster INT8 candidates (the ones that quantized the convolutions)
missed the drift budget says so, not "INT8 cannot be faster here" (session 63: face-api's landmark_68_tiny shipped a
MatMul-only candidate, 0.061 % of its multiply-adds INT8; its INT8 convolutions ran 1.19× FP32 and missed the budget
at a worst channel correlation of 0.7573; the refusal told its user this CPU could not speed INT8)."""

from __future__ import annotations

from typing import Any

from optimizer.speed import SpeedRecord
from optimizer.speed_verdict import drift_kept
from quantserve.cli.commands.optimize import speed_notes

CORR = "output 'landmarks': worst channel correlation 0.7573 < budget 0.98"


def _calibrate(candidates: list[dict[str, Any]], chosen: bool = False) -> list[dict[str, Any]]:
    """The probe's calibrate stage: the mixed-precision search ran and chose no mix (its probes listed)."""
    mixed = {"chosen": chosen, "from_scheme": "static_qdq_compute", "kept_fp32": [{"node": "/d.0/cs.1/Conv_1"}]}
    return [
        {"stage": "export"},
        {"stage": "calibrate", "scheme": "static_qdq_matmul_only", "candidates": candidates, "mixed_precision": mixed},
    ]


PROBE = [
    {"scheme": "static_qdq", "holds": False, "speedup": 1.0629, "violations": ["output 'landmarks': x 0.7108"]},
    {"scheme": "static_qdq_compute", "holds": False, "speedup": 1.1111, "violations": ["output 'landmarks': y"]},
    {"scheme": "static_qdq_conv_only", "holds": False, "speedup": 1.1896, "violations": [CORR, "z"]},
    {"scheme": "static_qdq_matmul_only", "holds": True, "speedup": 0.9448, "violations": []},
]
WORDS = f"the faster INT8 builds missed the drift budget (static_qdq_conv_only ran 1.19× FP32 and missed it: {CORR})"


def _sliver(kept: str = "") -> SpeedRecord:
    return SpeedRecord(
        10.4, 10.3, 1.03, 1.1, 8, 2, "a CPU", int8_mac_share=0.0006, fp32_compute={"Conv": 17}, kept_for_drift=kept
    )


def test_faster_candidates_that_missed_the_budget_are_named_as_the_cause() -> None:
    kept = drift_kept(_calibrate(PROBE))
    assert kept == WORDS
    line = str(_sliver(kept).line(True))
    assert WORDS in line and "no INT8 model that holds the budget is faster here" in line, line
    assert "INT8 cannot be faster here" not in line
    notes = speed_notes(_sliver(kept).to_dict())  # shipped under --allow-slower: its note says drift too
    assert WORDS in notes[0] and "cannot be faster" not in notes[0], notes


def test_misses_no_faster_than_the_shipped_candidate_or_than_fp32_leave_the_graph_limit() -> None:
    slower = [{**c, "speedup": 0.93} if not c["holds"] else c for c in PROBE]  # missed, and slower than what held
    assert drift_kept(_calibrate(slower)) == ""
    under_fp32 = [{**c, "speedup": 0.98} if not c["holds"] else {**c, "speedup": 0.90} for c in PROBE]
    assert drift_kept(_calibrate(under_fp32)) == ""  # faster than the shipped one, still no faster than FP32
    assert drift_kept(_calibrate([c for c in PROBE if c["holds"]])) == ""
    assert "INT8 cannot be faster here" in str(_sliver().line(True))


def test_the_mixed_precision_search_keeps_its_own_words() -> None:
    # session 43's case: the search chose a mix, kept nodes FP32; its words, not the faster-builds ones
    kept = drift_kept(_calibrate(PROBE, chosen=True))
    assert kept.startswith("the mixed-precision search from static_qdq_compute kept 1 compute node FP32"), kept


def test_one_faster_miss_reads_in_the_singular() -> None:
    one = [c for c in PROBE if c["scheme"] in ("static_qdq_conv_only", "static_qdq_matmul_only")]
    assert drift_kept(_calibrate(one)).startswith("the faster INT8 build missed the drift budget (static_qdq_conv")

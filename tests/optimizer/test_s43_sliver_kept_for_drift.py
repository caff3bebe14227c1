"""INT8 on a sliver of the multiply-adds because the mixed-precision search kept the rest FP32 to hold the drift
budget says so, not "INT8 cannot be faster here" (session 43: a captcha reader's full INT8 ran 2.01× and missed the
budget; the line told its user the model could not be faster in INT8 at all)."""

from __future__ import annotations

from typing import Any

from optimizer.speed import SpeedRecord
from optimizer.speed_verdict import drift_kept
from quantserve.cli.commands.optimize import speed_notes

STAGES: list[dict[str, Any]] = [
    {"stage": "export"},
    {
        "stage": "calibrate",
        "candidates": [
            {"scheme": "static_qdq", "holds": False, "speedup": 2.0066, "violations": ["output 'digit_1': top-1 0.94"]},
            {"scheme": "static_qdq_compute", "holds": False, "speedup": 1.33, "violations": ["output 'digit_3': x"]},
        ],
        "mixed_precision": {"chosen": True, "kept_fp32": [{"node": f"n{i}"} for i in range(9)]},
    },
]


def test_the_search_keeping_nodes_fp32_for_the_budget_is_named_with_the_fastest_miss() -> None:
    kept = drift_kept(STAGES)
    assert kept == (
        "the mixed-precision search kept 9 compute nodes FP32 to hold the drift budget (static_qdq ran 2.01× FP32 "
        "and missed it: output 'digit_1': top-1 0.94)"
    )
    sliver = SpeedRecord(10.0, 10.2, 0.98, 1.1, 8, 2, "a CPU", int8_mac_share=0.00005, fp32_compute={"Conv": 4})
    line = str(SpeedRecord(**{**sliver.__dict__, "kept_for_drift": kept}).line(True))
    assert kept in line and "no INT8 model that holds the budget is faster here" in line
    assert "INT8 cannot be faster here" not in line
    assert "INT8 cannot be faster here" in str(sliver.line(True))  # nothing kept for drift: the graph's own limit
    notes = speed_notes({**sliver.to_dict(), "kept_for_drift": kept})
    assert kept in notes[0] and "cannot be faster" not in notes[0]


def test_nothing_kept_for_drift_where_the_search_kept_nothing() -> None:
    assert drift_kept([{"stage": "calibrate", "mixed_precision": {"chosen": False, "kept_fp32": []}}]) == ""
    assert drift_kept([{"stage": "calibrate"}]) == ""


def test_the_scheme_the_mix_started_from_is_named_where_it_is_not_the_miss() -> None:
    # session 46: arabic-diacritizer's line named dynamic's miss beside a mix that began from static_qdq_smooth
    calibrate = {**STAGES[1], "mixed_precision": {**STAGES[1]["mixed_precision"], "from_scheme": "static_qdq_smooth"}}
    assert drift_kept([calibrate]).startswith("the mixed-precision search from static_qdq_smooth kept 9 compute nodes")
    same = {**STAGES[1], "mixed_precision": {**STAGES[1]["mixed_precision"], "from_scheme": "static_qdq"}}
    assert drift_kept([same]).startswith("the mixed-precision search kept 9")  # the miss it names is its start

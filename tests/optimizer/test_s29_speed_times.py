"""The ms beside a speedup never read the other way: where the pair shown misses the median, the spread shows.

A probe's encoder on a busy machine (session 29): 6 blocks' ratios 0.89-1.20×, median 1.11×; the median block's median
pair measured 9.6 → 9.97 ms, so the line `1.11× (9.6 → 9.97 ms)` read INT8 as slower by its own ms.
"""

from __future__ import annotations

from quantserve.cli.optimize_tables import _speed_row

PROBE = {  # the probe's manifest, as recorded
    "speedup": 1.106467024277181,
    "fp32_ms": 9.601338999345899,
    "int8_ms": 9.9748499924317,
    "round_speedups": [1.0867, 0.8877, 1.0606, 1.1967, 1.1532, 1.1262],
    "min_speedup": 1.0,
    "threads": 2,
    "batch_size": 8,
}


def test_a_pair_that_reads_the_other_way_is_replaced_by_the_blocks_spread() -> None:
    assert _speed_row(PROBE)[1] == "1.11× (the median of 6 blocks' ratios, 0.89-1.20×; FP32 9.6 ms)"


def test_a_pair_that_shows_the_speedup_is_shown() -> None:
    agreeing = {**PROBE, "int8_ms": 9.601338999345899 / 1.09}  # 1.09 is within 3 % of 1.11
    assert _speed_row(agreeing)[1] == "1.11× (9.6 → 8.81 ms)"


def test_an_uncertain_verdict_names_the_spread_once() -> None:
    row = _speed_row({**PROBE, "verdict": "uncertain"})[1]
    assert row.count("0.89-1.20×") == 1


def test_a_pair_within_the_slack_that_points_the_other_way_is_not_shown() -> None:
    # session 46: arabic-diacritizer's table read "1.02× (91.3 → 91.7 ms)": INT8's ms larger, the ratio above 1
    contrary = {**PROBE, "speedup": 1.02, "fp32_ms": 91.3, "int8_ms": 91.7, "round_speedups": [0.98, 1.02, 1.05]}
    assert _speed_row(contrary)[1] == "1.02× (the median of 3 blocks' ratios, 0.98-1.05×; FP32 91.3 ms)"

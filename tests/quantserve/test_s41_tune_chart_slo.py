"""tune.html's chart with an SLO far above every trial (session 41: `--slo-p99-ms 100000` scaled the y axis to
it and laid every trial's point on the x axis)."""

from __future__ import annotations

import re

from quantserve.cli.tune_report import scatter_svg

TRIALS = [
    {"throughput_rps": 900.0, "p99_ms": 44.0, "pruned": False, "config": {"max_batch": 0, "instances": 1}},
    {"throughput_rps": 1200.0, "p99_ms": 144.0, "pruned": False, "config": {"max_batch": 0, "instances": 2}},
]


def _top_tick(svg: str) -> float:
    return max(float(t) for t in re.findall(r'text-anchor="end">([0-9.e+]+)</text>', svg))


def test_a_huge_slo_is_named_not_drawn() -> None:
    svg = scatter_svg(TRIALS, {1}, 100000.0)
    assert _top_tick(svg) < 1000, "the axis is the trials' own"
    assert "SLO 100000 ms: above the chart (every trial's p99 is at most 144 ms)" in svg
    near = scatter_svg(TRIALS, {1}, 200.0)
    assert "SLO 200 ms</text>" in near and "above the chart" not in near

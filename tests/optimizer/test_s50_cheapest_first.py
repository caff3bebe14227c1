"""Groups whose probe moved neither the margin nor the error are kept FP32 cheapest first (session 50).

With only an ArgMax's ids as output, torchcrepe's probes moved by one probe row or not at all: its 38 ms conv2 (no
move) was kept FP32 before its 0.5 ms conv5 (no move), in the order the groups were probed, and the build fell from
2.96× to 1.03× FP32; by cost it kept conv5 and conv3 and shipped at 2.96×, its ids agreeing 0.9926.
"""

from __future__ import annotations

import time
from pathlib import Path

from optimizer.drift_checks import DriftReport
from optimizer.sensitivity import Attempt, MixedPrecisionSearch
from tests.optimizer.test_sensitivity import _report


def test_groups_that_move_nothing_are_kept_cheapest_first(tmp_path: Path) -> None:
    """Every probe leaves the probe rows' top-1 agreement and relative error where they were: the cheaper group is
    kept FP32 first, though it was probed second."""

    def build(kept: list[str]) -> Path:
        return tmp_path / "-".join(kept or ["none"])

    def unmoved(path: Path) -> DriftReport:
        return _report(0.96875, 0.06)

    search = MixedPrecisionSearch(build, unmoved, unmoved, time.monotonic() + 60, max_probes=3)
    start = Attempt([], tmp_path / "none", unmoved(tmp_path / "none"))
    result = search.run(start, ["costly", "cheap"], {"costly": 38.0, "cheap": 0.5})
    assert [(p["nodes"], p["margin_gain"], p["error_removed"]) for p in result.probes] == [
        (["costly"], 0.0, 0.0),
        (["cheap"], 0.0, 0.0),
    ]
    assert result.steps[0]["kept_fp32"] == ["cheap"], result.steps

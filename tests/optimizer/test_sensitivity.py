"""The mixed-precision search's order: drift margin gained per ms first, relative error removed per ms on ties.

The search takes its model builder and judges as callables; here they are a dictionary of drift reports
per kept set (what ONNX Runtime would have measured), so the test checks the ranking and stopping rules.
"""

from __future__ import annotations

import time
from pathlib import Path

from optimizer.drift_budget import DriftReport, Violation
from optimizer.sensitivity import Attempt, MixedPrecisionSearch


def _report(top1: float, relative_error: float) -> DriftReport:
    """A classification output's drift against a 0.99 top-1 budget (slack normalized as DriftBudget does)."""
    violations = [] if top1 >= 0.99 else [Violation("pitch", "top1_agreement", top1, 0.99)]
    output = {"kind": "classification", "top1_agreement": top1, "relative_error": relative_error}
    return DriftReport({"pitch": output}, violations, [(top1 - 0.99) / 0.01])


def test_groups_that_tie_on_top1_are_kept_by_relative_error_removed_per_ms(tmp_path: Path) -> None:
    # Every single group kept FP32 leaves the probe rows' top-1 agreement where it was (31 of 32 rows): only
    # the relative error tells them apart; "c" removes the most of it per ms of INT8 speed it gives up, then "a".
    probe = {
        (): _report(0.96875, 0.060),
        ("a",): _report(0.96875, 0.050),
        ("b",): _report(0.96875, 0.055),
        ("c",): _report(0.96875, 0.020),
        ("c", "a"): _report(1.0, 0.015),
    }
    full = {("c", "a"): _report(0.995, 0.015)}
    built: list[tuple[str, ...]] = []

    def build(kept: list[str]) -> Path:
        built.append(tuple(kept))
        return tmp_path / "-".join(kept or ["none"])

    def key(path: Path) -> tuple[str, ...]:
        return () if path.name == "none" else tuple(path.name.split("-"))

    search = MixedPrecisionSearch(
        build,
        lambda path: probe.get(key(path), _report(0.96875, 0.06)),
        lambda path: full[key(path)],
        time.monotonic() + 60,
        max_probes=3,
    )
    start = Attempt([], tmp_path / "none", probe[()])
    result = search.run(start, ["a", "b", "c"], {"a": 1.0, "b": 1.0, "c": 1.0})
    assert [p["margin_gain"] for p in result.probes] == [0.0, 0.0, 0.0]
    assert [s["kept_fp32"] for s in result.steps] == [["c"], ["a"]] and result.stopped == "budget holds"
    assert result.best.kept == ["c", "a"] and result.best.drift.holds

"""The mixed-precision search's order: drift margin gained per ms first, relative error removed per ms on ties.

The search takes its model builder and judges as callables; here they are a dictionary of drift reports
per kept set (what ONNX Runtime would have measured), so the test checks the ranking and stopping rules.
"""

from __future__ import annotations

import time
from pathlib import Path

from optimizer.drift_checks import DriftReport, Violation
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


def test_a_group_kept_before_the_one_that_held_goes_back_to_int8_where_the_budget_still_holds(tmp_path: Path) -> None:
    """The greedy order ranked "a" first (its probe looked better per ms, as a timing on a loaded machine can make
    it); "a" alone missed, "a" + "c" held. "c" alone holds too: "a" goes back to INT8 rather than shipping FP32 for
    nothing (with "a" and "c" every compute node, the model had been refused as all-FP32)."""
    probe = {
        (): _report(0.90, 0.06),
        ("a",): _report(0.95, 0.04),
        ("b",): _report(0.90, 0.06),
        ("c",): _report(0.94, 0.05),
        ("a", "c"): _report(1.0, 0.01),
    }
    full = {("a", "c"): _report(0.995, 0.01), ("c",): _report(0.992, 0.02)}
    probe[("c",)] = _report(1.0, 0.02)  # on the probe rows "c" alone holds; it ranked second only per ms

    def key(path: Path) -> tuple[str, ...]:
        return () if path.name == "none" else tuple(path.name.split("-"))

    search = MixedPrecisionSearch(
        lambda kept: tmp_path / "-".join(kept or ["none"]),
        lambda path: probe.get(key(path), _report(0.90, 0.06)),
        lambda path: full[key(path)],
        time.monotonic() + 60,
        max_probes=3,
    )
    start = Attempt([], tmp_path / "none", probe[()])
    result = search.run(start, ["a", "b", "c"], {"a": 0.1, "b": 1.0, "c": 1.0})
    assert [s["kept_fp32"] for s in result.steps] == [["a"], ["c"]] and result.stopped == "budget holds"
    assert result.returned == [{"int8_again": ["a"], "margin": result.best.margin, "holds": True}]
    assert result.best.kept == ["c"] and result.best.full and result.best.drift.holds
